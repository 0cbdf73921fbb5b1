"""The sandbox API: batching, per-item failures, deadlines, respawn, caps, isolation probe.

The modules here are small stand-ins for LLM-written code and run only inside the sandbox.
Attack-by-attack escape tests live in test_sandbox_hostile.py.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from resyn.sandbox import ItemResult, Sandbox, SandboxConfig, SandboxUnavailable, probe
from resyn.sandbox import isolation as isolation_module
from resyn.sandbox import session as session_module
from resyn.sandbox import worker as worker_module

HEADER = "import random\nfrom resyn import Environment\n"

ECHO = (
    HEADER
    + """
class Echo(Environment):
    name = "echo"
    max_difficulty = 2
    def generate(self, rng, difficulty):
        if difficulty == 2 and rng.random() < 0.0:
            pass
        return {"n": rng.randint(0, 10**6), "d": difficulty}
    def question(self, instance):
        if instance.get("huge"):
            return "x" * 10_000_000
        return f"Repeat {instance['n']}"
    def verify(self, instance, answer):
        if answer == "boom":
            raise ValueError("malformed")
        if answer == "hang":
            while True:
                pass
        if answer == "crash":
            import ctypes
            ctypes.string_at(0)
        if answer == "huge":
            return "x" * 10_000_000
        if answer == "bool":
            return True
        return 1.0 if answer == str(instance["n"]) else 0.0
    def solution(self, instance):
        return str(instance["n"])
"""
)

FAST = SandboxConfig(item_timeout_s=1.0, call_overhead_s=1.0, max_item_kb=1024)


@pytest.fixture(scope="module")
def echo() -> Sandbox:
    with Sandbox(ECHO, config=FAST) as sandbox:
        yield sandbox


def test_probe_picks_a_namespace_tier_with_seccomp() -> None:
    isolation = probe()
    assert isolation.sandboxed and isolation.seccomp
    assert "uid" in isolation.describe()


def test_load_reports_the_class(echo: Sandbox) -> None:
    load = echo.load()
    assert load.ok and load.name == "echo" and load.max_difficulty == 2 and load.has_solution
    assert echo.seccomp_active is True


def test_generate_is_deterministic_and_json(echo: Sandbox) -> None:
    first = echo.generate([(1, 1), (2, 1), (1, 2)])
    second = echo.generate([(1, 1), (2, 1), (1, 2)])
    assert [r.value for r in first] == [r.value for r in second]
    assert first[0].value != first[1].value and first[0].value["d"] == 1


def test_verify_per_item_errors_do_not_spoil_the_batch(echo: Sandbox) -> None:
    instance = echo.generate([(5, 1)])[0].value
    results = echo.verify([instance], [(0, str(instance["n"])), (0, "boom"), (0, "nope"), (0, "bool")])
    assert results[0].ok and results[0].value == 1.0
    assert not results[1].ok and results[1].kind == "exception" and "malformed" in (results[1].error or "")
    assert results[1].traceback and "raise ValueError" in results[1].traceback and results[1].line
    assert results[2].value == 0.0
    assert results[3].ok and results[3].value["type"] == "bool"  # reported, judged by the caller


COUNTING = (
    HEADER
    + """
CALLS = []
class Counting(Environment):
    name = "counting"
    max_difficulty = 1
    def generate(self, rng, difficulty):
        return {"n": rng.randint(0, 9)}
    def question(self, instance):
        return "Say the number."
    def verify(self, instance, answer):
        CALLS.append(answer)  # state on purpose: shows how often verify ran
        return len(CALLS) / 1000 if answer == str(instance["n"]) else 0.0
"""
)


def test_score_extracts_answers_and_parses_instances_in_the_worker() -> None:
    with Sandbox(COUNTING, config=FAST) as sandbox:
        instances: list[dict[str, object] | str] = [{"n": 4}, '{"n": 7}', "[1, 2]", "{not json"]
        texts = [
            "<answer>4</answer>",
            "Thinking... \\boxed{7}",
            "<answer>7</answer>",  # the same answer to instance 1, in other words: verified once
            "<answer>1</answer>",
            "<answer>1</answer>",
            "I have no idea.",
            "<think><answer>4</answer></think>",  # only reasoning: no answer
        ]
        items = [(0, texts[0]), (1, texts[1]), (1, texts[2]), (2, texts[3]), (3, texts[4]), (0, texts[5])]
        items.append((0, texts[6]))
        results = sandbox.score(instances, items)
    assert [(r.ok, r.value if r.ok else r.kind) for r in results] == [
        (True, 0.001),
        (True, 0.002),
        (True, 0.002),
        (False, "invalid_item"),
        (False, "invalid_item"),
        (False, "no_answer"),
        (False, "no_answer"),
    ]
    assert "not a JSON object" in (results[3].error or "") and "not JSON" in (results[4].error or "")


def test_score_values_are_bare_floats_only_for_float_scores() -> None:
    # The reward scorer's hot path: a finite float score travels (and is returned) as a bare
    # float; every other outcome stays an ItemResult, and Sandbox.score wraps them all.
    with Sandbox(COUNTING, config=FAST) as sandbox:
        instances: list[dict[str, object] | str] = [{"n": 4}, '{"n": 7}', "[1]"]
        items = [(0, "<answer>4</answer>"), (1, "<answer>8</answer>"), (2, "<answer>1</answer>"), (0, "none")]
        values = sandbox.score_values(instances, items)
        wrapped = sandbox.score(instances, items)
    assert values[:2] == [0.001, 0.0] and all(type(v) is float for v in values[:2])
    assert [(r.ok, r.kind) for r in values[2:] if isinstance(r, ItemResult)] == [
        (False, "invalid_item"),
        (False, "no_answer"),
    ]
    assert [(r.ok, r.value if r.ok else r.kind) for r in wrapped] == [
        (True, 0.003),  # the module counts its calls (two in the first call)
        (True, 0.0),
        (False, "invalid_item"),
        (False, "no_answer"),
    ]
    # A bare number is a result only in a score reply: elsewhere it is a protocol error.
    assert session_module._score_from_wire(0.5) == 0.5
    assert session_module._from_wire(0.5).kind == "protocol"
    assert session_module._score_from_wire(1).kind == "protocol"  # type: ignore[union-attr]


def test_the_workers_instance_parser_agrees_with_json_loads() -> None:
    # The worker parses instance_json with the decoder's scanner and falls back to json.loads;
    # values and errors must be json.loads's on every text.
    def outcome(parse: Any, text: str) -> str:
        try:
            return repr(("ok", parse(text)))
        except (ValueError, RecursionError) as exc:
            return repr(("error", type(exc).__name__, str(exc)))

    texts = ['{"n": 1}', ' {"n": 1}', '{"n": 1} ', '{"n": 1}x', "", " ", "\ufeff{}", "[1,2]", "NaN", "1e400"]
    texts += [
        '{"a":1}{"b":2}',
        "{",
        '{"a": 1,}',
        "[" * 100_000,
        "tru",
        '{"\\ud800": 1}',
        '{"a": "\\x"}',
        "\t{}\n",
    ]
    rng = random.Random(7)
    alphabet = [*'{}[]",:0123456789 .eE-+\\', "null", "true", "fals", '"a"', '{"n": 1}', "\n"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(20_000)]
    for text in texts:
        assert outcome(worker_module._parse_json, text) == outcome(json.loads, text), repr(text[:50])


def test_hanging_item_times_out_alone_and_worker_respawns(echo: Sandbox) -> None:
    instance = echo.generate([(6, 1)])[0].value
    gold = str(instance["n"])
    before = echo.spawned
    items = [(0, gold)] * 5 + [(0, "hang")] + [(0, gold)] * 5
    results = echo.verify([instance], items, batch_size=64)
    assert [r.ok for r in results] == [True] * 5 + [False] + [True] * 5
    assert results[5].kind == "timeout"
    assert echo.spawned > before
    assert echo.verify([instance], [(0, gold)])[0].value == 1.0


def test_crash_is_contained(echo: Sandbox) -> None:
    instance = echo.generate([(7, 1)])[0].value
    results = echo.verify([instance], [(0, "crash"), (0, str(instance["n"]))])
    assert results[0].kind == "crashed" and "SIGSEGV" in (results[0].error or "")
    assert results[1].value == 1.0


def test_oversized_result_is_refused(echo: Sandbox) -> None:
    instance = echo.generate([(8, 1)])[0].value
    results = echo.questions([{"huge": True}, instance])
    assert results[0].kind == "oversize" and results[1].value == f"Repeat {instance['n']}"


def test_repeated_worker_failures_stop_the_batch_early() -> None:
    with Sandbox(ECHO, config=FAST.model_copy(update={"worker_failures_per_call": 2})) as sandbox:
        instance = sandbox.generate([(1, 1)])[0].value
        results = sandbox.verify([instance], [(0, "hang")] * 6, batch_size=6)
    # The batch's failure and the first single retry spend the budget of 2; the rest is not run.
    assert all(r.kind == "timeout" for r in results)
    assert sum("not run" in (r.error or "") for r in results) == 5


def test_import_errors_fail_every_item_with_the_load_error() -> None:
    with Sandbox(HEADER + "raise RuntimeError('nope')\n", config=FAST) as sandbox:
        load = sandbox.load()
        assert not load.ok and "nope" in (load.error or "") and load.line == 3
        results = sandbox.generate([(0, 1), (1, 1)])
    assert all(not r.ok and "nope" in (r.error or "") for r in results)


def test_sleeping_at_import_hits_the_load_deadline() -> None:
    source = "import time\n" + ECHO + "\ntime.sleep(60)\n"
    with Sandbox(source, config=FAST.model_copy(update={"load_timeout_s": 1.0})) as sandbox:
        load = sandbox.load()
    assert not load.ok and (load.error or "").startswith("timeout")


def test_hash_seed_reaches_the_worker() -> None:
    source = (
        HEADER
        + """
class H(Environment):
    name = "h"
    def generate(self, rng, difficulty):
        return {"order": list({"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"})}
    def question(self, instance):
        return " ".join(instance["order"])
    def verify(self, instance, answer):
        return 0.0
"""
    )
    orders = set()
    for seed in (1, 2, 3, 4):
        with Sandbox(source, config=FAST, hash_seed=seed) as sandbox:
            orders.add(tuple(sandbox.generate([(0, 1)])[0].value["order"]))
    assert len(orders) > 1


def test_unsafe_mode_runs_without_namespaces() -> None:
    with Sandbox(ECHO, config=FAST.model_copy(update={"unsafe_no_sandbox": True})) as sandbox:
        assert sandbox.tier == "none"
        assert sandbox.load().ok and sandbox.generate([(0, 1)])[0].ok


def test_missing_bubblewrap_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    probe.cache_clear()
    monkeypatch.setattr(isolation_module.shutil, "which", lambda name: None)
    try:
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            probe()
    finally:
        probe.cache_clear()

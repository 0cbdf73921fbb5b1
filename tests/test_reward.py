"""The reward scoring core (``resyn.reward``): right scores, every failure a counted 0.0, the same
instance from data or from its seed, and safety under threads, coroutines, processes, pickling and
workers that die mid-batch.

Environment modules here (the fixtures and the inline ones) run only in sandbox workers.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import pickle
import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import resyn
from resyn.grading import extract_answer
from resyn.reward import REASONS, EnvSpec, RewardConfig, RewardScorer, ScoreItem, completion_text
from resyn.reward import scorer as reward_scorer_module
from resyn.sandbox import Sandbox, SandboxConfig, SandboxUnavailable, probe
from resyn.sandbox import isolation as isolation_module
from tests.conftest import FIXTURES, GOOD

HOSTILE_DIR = FIXTURES / "hostile"

QUIRKS = '''
import random
from resyn import Environment


class Quirks(Environment):
    """Repeat a number; some answers make verify misbehave on purpose."""

    name = "quirks"
    max_difficulty = 3

    def generate(self, rng, difficulty):
        if difficulty == 3:
            raise ValueError("level 3 is broken")
        n = rng.randint(0, 10**6)
        if n % 7 == 0 and difficulty == 2:
            return [n]  # not an instance
        return {"n": n, "d": difficulty}

    def question(self, instance):
        return f"Repeat {instance['n']}."

    def verify(self, instance, answer):
        if answer == "raise":
            raise ValueError("malformed answer")
        if answer == "string":
            return "1.0"
        if answer == "big":
            return 1.5
        if answer == "bool":
            return True
        if answer == "nan":
            return float("nan")
        if answer == "half":
            return 0.5
        if answer == "crash":
            import ctypes
            ctypes.string_at(0)
        if answer == "hang":
            while True:
                pass
        if answer.startswith("slow "):
            import time
            time.sleep(0.2)
            answer = answer[5:]
        return 1.0 if answer == str(instance["n"]) else 0.0

    def solution(self, instance):
        return str(instance["n"])
'''

FAST_SANDBOX = SandboxConfig(item_timeout_s=1.0, call_overhead_s=1.0, load_timeout_s=3.0)
FAST = RewardConfig(workers_per_env=1, sandbox=FAST_SANDBOX)
JUNK = "<answer>zz-not-an-answer-zz</answer>"


def answer(text: str) -> str:
    return f"Let me think about it.\n<answer>{text}</answer>"


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {reason: after[reason] - before[reason] for reason in after if after[reason] != before[reason]}


@pytest.fixture(scope="module")
def all_samples() -> dict[str, list[dict[str, Any]]]:
    """Instances of every good fixture at its lowest and highest level, drawn in the sandbox,
    with their gold answers (None for digit_constraints, whose verifier needs none)."""
    drawn: dict[str, list[dict[str, Any]]] = {}
    for path in GOOD:
        with Sandbox(path.read_text(), filename=path.name, config=FAST_SANDBOX) as sandbox:
            top = sandbox.load().max_difficulty
            keys = [(seed, level) for seed in (11, 12) for level in (1, top)]
            results = sandbox.sample(keys)
        assert all(r.ok for r in results), path.name
        drawn[path.stem] = [
            {"seed": s, "difficulty": d, "instance": r.value["instance"], "gold": r.value["solution"]}
            for (s, d), r in zip(keys, results, strict=True)
        ]
    return drawn


@pytest.fixture(scope="module")
def samples(all_samples: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The environments of :func:`all_samples` that have gold answers."""
    return {env: drawn for env, drawn in all_samples.items() if all(s["gold"] is not None for s in drawn)}


@pytest.fixture(scope="module")
def scorer() -> Iterator[RewardScorer]:
    specs = [EnvSpec.from_file(path) for path in GOOD] + [EnvSpec(env_id="quirks", code=QUIRKS)]
    with RewardScorer(specs, config=FAST) as shared:
        yield shared


def quirks_instance(scorer: RewardScorer, seed: int = 1, difficulty: int = 1) -> dict[str, Any]:
    found = scorer.instances([{"env_id": "quirks", "seed": seed, "difficulty": difficulty}])[0]
    assert found is not None
    return found


# -- scores ---------------------------------------------------------------------------------------------


def test_gold_scores_one_and_junk_zero_on_every_good_fixture(
    scorer: RewardScorer, samples: dict[str, list[dict[str, Any]]]
) -> None:
    items: list[dict[str, Any]] = []
    expected: list[float] = []
    for env_id, drawn in samples.items():
        for sample in drawn:
            text = json.dumps(sample["instance"])
            items.append({"env_id": env_id, "instance_json": text, "completion": answer(sample["gold"])})
            items.append({"env_id": env_id, "instance_json": text, "completion": JUNK})
            expected += [1.0, 0.0]
    before = scorer.metrics()
    assert scorer.score(items) == expected
    assert delta(scorer.metrics(), before) == {"ok": len(items)}
    assert len(samples) == len(GOOD) - 1


def test_instance_from_json_equals_the_regenerated_instance(
    scorer: RewardScorer, all_samples: dict[str, list[dict[str, Any]]]
) -> None:
    for env_id, drawn in all_samples.items():
        spec = scorer.environment(env_id)
        by_json = [{"env_id": env_id, "instance_json": json.dumps(s["instance"])} for s in drawn]
        by_seed = [{"env_id": env_id, "seed": s["seed"], "difficulty": s["difficulty"]} for s in drawn]
        regenerated = scorer.instances(by_seed)
        assert regenerated == scorer.instances(by_json) == [s["instance"] for s in drawn], env_id
        # ... and scores the same way, with or without the code hash pinned.
        golds = [answer(s["gold"]) if s["gold"] is not None else JUNK for s in drawn]
        completions = golds + [JUNK] * len(drawn)
        pinned = {"code_sha256": spec.code_sha256[:12]}
        a = scorer.score([{**i, "completion": c} for i, c in zip(by_json * 2, completions, strict=True)])
        b = scorer.score(
            [{**i, **pinned, "completion": c} for i, c in zip(by_seed * 2, completions, strict=True)]
        )
        expected = [1.0 if s["gold"] is not None else 0.0 for s in drawn] + [0.0] * len(drawn)
        assert a == b == expected, env_id


def test_items_as_models_dicts_and_chat_messages_agree(scorer: RewardScorer) -> None:
    instance = quirks_instance(scorer, seed=3)
    gold = str(instance["n"])
    chat = [{"role": "user", "content": "Repeat"}, {"role": "assistant", "content": answer(gold)}]
    parts = [{"role": "assistant", "content": [{"type": "text", "text": answer(gold)}]}]
    items: list[Any] = [
        ScoreItem(env_id="quirks", instance=instance, completion=answer(gold)),
        {"env_id": "quirks", "instance": instance, "completion": answer(gold)},
        {"env_id": "quirks", "seed": "3", "difficulty": 1.0, "completion": answer(gold)},  # coerced
        {"env_id": "quirks", "seed": 3, "difficulty": 1, "completion": chat},
        {"env_id": "quirks", "seed": 3, "difficulty": 1, "completion": parts},
        {"env_id": "quirks", "seed": 3, "difficulty": 1, "completion": answer("half"), "extra": [1]},
    ]
    assert scorer.score(items) == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5]
    assert completion_text([{"role": "assistant", "content": [{"type": "image"}]}]) is None


def test_every_failure_scores_zero_and_is_counted(scorer: RewardScorer) -> None:
    instance = quirks_instance(scorer)
    text = json.dumps(instance)
    base = {"env_id": "quirks", "instance_json": text}
    # Level 3 always raises; at level 2, one seed in ~7 makes generate return a list.
    not_instance = next(
        s
        for s in range(200)
        if scorer.instances([{"env_id": "quirks", "seed": s, "difficulty": 2}])[0] is None
    )
    cases: list[tuple[str, Any]] = [
        ("invalid_item", {"completion": answer("1")}),  # no env id
        ("invalid_item", {"env_id": "quirks", "completion": answer("1")}),  # no instance
        ("invalid_item", {"env_id": "quirks", "instance_json": "{not json", "completion": answer("1")}),
        ("invalid_item", {"env_id": "quirks", "instance_json": "[1, 2]", "completion": answer("1")}),
        ("invalid_item", {"env_id": "quirks", "seed": 1, "difficulty": 4, "completion": answer("1")}),
        ("invalid_item", {"env_id": "quirks", "seed": 1, "difficulty": 0, "completion": answer("1")}),
        ("invalid_item", {"env_id": "quirks", "seed": "x", "difficulty": 1, "completion": answer("1")}),
        ("invalid_item", 42),
        ("unknown_env", {**base, "env_id": "nope", "completion": answer("1")}),
        ("code_mismatch", {**base, "code_sha256": "0" * 64, "completion": answer("1")}),
        ("code_mismatch", {**base, "code_sha256": "abc", "completion": answer("1")}),
        ("not_text", {**base, "completion": None}),
        ("not_text", {**base, "completion": 12}),
        ("not_text", {**base, "completion": b"<answer>1</answer>"}),
        ("empty", {**base, "completion": ""}),
        ("empty", {**base, "completion": " \n\t "}),
        ("too_long", {**base, "completion": "x" * 70_000 + answer(str(instance["n"]))}),
        ("no_answer", {**base, "completion": "I think it is 42."}),
        ("no_answer", {**base, "completion": "<think>the answer is <answer>1</answer>"}),
        ("verify_error", {**base, "completion": answer("raise")}),
        ("invalid_score", {**base, "completion": answer("string")}),
        ("invalid_score", {**base, "completion": answer("big")}),
        ("invalid_score", {**base, "completion": answer("bool")}),
        ("invalid_score", {**base, "completion": answer("nan")}),
        ("generate_error", {"env_id": "quirks", "seed": 1, "difficulty": 3, "completion": answer("1")}),
        (
            "generate_error",
            {"env_id": "quirks", "seed": not_instance, "difficulty": 2, "completion": answer("1")},
        ),
    ]
    before = scorer.metrics()
    results = scorer.score_detailed([case for _, case in cases])
    assert [(r.score, r.reason) for r in results] == [(0.0, reason) for reason, _ in cases]
    assert all(r.detail for r in results)
    expected: dict[str, int] = {}
    for reason, _ in cases:
        expected[reason] = expected.get(reason, 0) + 1
    assert delta(scorer.metrics(), before) == expected
    assert "level 3 is broken" in (results[-2].detail or "")
    # A non-iterable argument scores nothing rather than raising.
    assert scorer.score(None) == []  # type: ignore[arg-type]


def test_an_item_scores_the_same_in_a_batch_as_alone(scorer: RewardScorer) -> None:
    # In a call, items of an environment already seen take an inline path (plain dicts with
    # instance_json and a str completion); the first one, and any other shape, the general one.
    # Alone, every item takes the general path: both must give the same result and detail.
    instance = quirks_instance(scorer)
    text = json.dumps(instance)
    gold = answer(str(instance["n"]))
    code = scorer.environment("quirks").code_sha256
    base = {"env_id": "quirks", "instance_json": text}
    items: list[Any] = [
        {**base, "completion": gold},
        {**base, "completion": gold, "extra": [1]},
        {**base, "completion": answer("half")},
        {**base, "completion": answer("nan")},
        {**base, "completion": "no answer at all"},
        {**base, "completion": ""},
        {**base, "completion": " \n "},
        {**base, "completion": "x" * 70_000 + gold},
        {**base, "completion": [{"role": "assistant", "content": gold}]},
        {**base, "completion": gold, "seed": 3, "difficulty": 2},
        {**base, "completion": gold, "seed": "x"},
        {**base, "completion": gold, "seed": True},
        {**base, "completion": gold, "difficulty": 1.0},
        {**base, "completion": gold, "code_sha256": code[:12]},
        {**base, "completion": gold, "code_sha256": "0" * 12},
        {**base, "completion": gold, "instance": {"n": -1}},
        {**base, "completion": gold, "instance_json": None, "seed": 1, "difficulty": 1},
        {**base, "completion": gold, "instance_json": "[1]"},
        {**base, "completion": gold, "instance_json": json.dumps({**instance, "pad": "y" * 4_000_000})},
        {**base, "completion": gold, "env_id": "nope"},
        {**base, "completion": gold, "env_id": 7},
        ScoreItem(**base, completion=gold),
        {**base, "completion": gold},
    ]
    before = scorer.metrics()
    together = scorer.score_detailed(items)
    counted = delta(scorer.metrics(), before)
    alone = [scorer.score_detailed([item])[0] for item in items]
    assert together == alone
    assert {"ok", "invalid_item", "empty", "too_long", "no_answer", "code_mismatch"} <= set(counted)
    expected: dict[str, int] = {}
    for result in together:
        expected[result.reason] = expected.get(result.reason, 0) + 1
    assert counted == expected and sum(counted.values()) == len(items)


def test_answers_are_extracted_as_resyn_grading_does(scorer: RewardScorer) -> None:
    # The worker extracts the answers; the expected scores come from extract_answer run here.
    instance = quirks_instance(scorer, seed=5)
    gold = str(instance["n"])
    completions = [
        answer(gold),
        f"<think>maybe <answer>0</answer></think> so <answer> {gold} </answer>",
        f"<answer>0</answer> no wait <answer>{gold}</answer>",
        f"The result is \\boxed{{{gold}}}.",
        f"<answer>\\boxed{{{gold}}}</answer>",
        f"**Final Answer:** {gold}.",
        f"Final answer:\n\n{gold}",
        f"<think>{gold}</think>",
        f"<think>unfinished <answer>{gold}</answer>",
        f"</think><answer>{gold}</answer>",
        f"<ANSWER>{gold}",
        "x" * 60_000 + answer(gold),  # long, within max_completion_chars
        answer("1" + gold),
        "<answer></answer>",
    ]
    expected = []
    for text in completions:
        extracted = extract_answer(text)
        expected.append((0.0, "no_answer") if extracted is None else (float(extracted == gold), "ok"))
    assert {score for score, _ in expected} == {0.0, 1.0} and ("no_answer" in {r for _, r in expected})
    items = [{"env_id": "quirks", "instance": instance, "completion": text} for text in completions]
    assert [(r.score, r.reason) for r in scorer.score_detailed(items)] == expected


def test_item_defects_keep_their_reason_when_the_environment_fails() -> None:
    # The worker checks instances and extracts answers; when it cannot (the module does not
    # load), an item with no answer or an instance that is not an object still counts as such.
    broken = "raise ImportError('broken on purpose')\n" + QUIRKS
    with RewardScorer([EnvSpec(env_id="broken", code=broken)], config=FAST) as scorer:
        items = [
            {"env_id": "broken", "instance": {"n": 1}, "completion": answer("1")},
            {"env_id": "broken", "instance": {"n": 1}, "completion": "no answer here"},
            {"env_id": "broken", "instance_json": "[1]", "completion": answer("1")},
            {"env_id": "broken", "instance_json": "{oops", "completion": answer("1")},
        ]
        results = scorer.score_detailed(items)
        assert [(r.score, r.reason) for r in results] == [
            (0.0, "load_error"),
            (0.0, "no_answer"),
            (0.0, "invalid_item"),
            (0.0, "invalid_item"),
        ]
        assert "broken on purpose" in (results[0].detail or "")
        assert scorer.metrics()["no_answer"] == 1 and scorer.metrics()["invalid_item"] == 2


def test_timeouts_and_crashes_cost_only_their_own_items(scorer: RewardScorer) -> None:
    # Distinct instances, so that every item is its own verify call (equal pairs are scored once).
    instances = [{"n": n, "d": 1} for n in range(13)]
    completions = (
        [answer(str(n)) for n in range(4)] + [answer("hang")] + [answer(str(n)) for n in range(5, 9)]
    )
    completions += [answer("crash")] + [JUNK] * 3
    before = scorer.metrics()
    results = scorer.score_detailed(
        [
            {"env_id": "quirks", "instance": i, "completion": c}
            for i, c in zip(instances, completions, strict=True)
        ]
    )
    assert [r.score for r in results] == [1.0] * 4 + [0.0] + [1.0] * 4 + [0.0] * 4
    assert results[4].reason == "timeout" and results[9].reason == "crashed"
    assert "SIGSEGV" in (results[9].detail or "")
    assert delta(scorer.metrics(), before) == {"ok": 11, "timeout": 1, "crashed": 1}
    # The respawned worker scores as before.
    assert scorer.score([{"env_id": "quirks", "instance": instances[0], "completion": answer("0")}]) == [1.0]


def test_a_module_that_keeps_killing_workers_is_cut_short_then_quarantined() -> None:
    sandbox = SandboxConfig(item_timeout_s=0.3, call_overhead_s=0.3)
    config = FAST.model_copy(
        update={"batch_size": 4, "failures_per_call": 2, "quarantine_s": 2.0, "sandbox": sandbox}
    )
    with RewardScorer([EnvSpec(env_id="quirks", code=QUIRKS)], config=config) as scorer:
        items = [{"env_id": "quirks", "instance": {"n": n}, "completion": answer("hang")} for n in range(40)]
        results = scorer.score_detailed(items)
        assert all(r.reason == "timeout" for r in results)
        # Two items were found to hang (failures_per_call); the call's other 38 never ran.
        assert sum("not run" in (r.detail or "") for r in results) == 38
        # For quarantine_s, even good items fail at once; then the environment is used again.
        good = {"env_id": "quirks", "instance": {"n": 1}, "completion": answer("1")}
        quarantined = scorer.score_detailed([good])[0]
        assert quarantined.reason == "timeout" and "quarantined" in (quarantined.detail or "")
        time.sleep(2.0)
        assert scorer.score([good]) == [1.0]


# -- hostile modules ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile() -> Iterator[RewardScorer]:
    names = ["cpu_loop_verify", "keepalive_frames", "output_flood", "segfault", "sleep_import", "kill_parent"]
    specs = [EnvSpec.from_file(HOSTILE_DIR / f"{name}.py") for name in names]
    config = RewardConfig(
        workers_per_env=1,
        sandbox=SandboxConfig(item_timeout_s=2.0, call_overhead_s=0.5, load_timeout_s=2.0),
    )
    with RewardScorer(specs, config=config) as scorer:
        yield scorer


def test_hostile_modules_score_zero_with_their_reason(hostile: RewardScorer) -> None:
    def item(env_id: str, text: str, **where: Any) -> dict[str, Any]:
        return {"env_id": env_id, "completion": answer(text), **(where or {"instance": {"q": 1}})}

    cases = [
        (item("cpu_loop_verify", "2"), 0.0, "timeout"),  # a C loop that ignores every signal
        (item("keepalive_frames", "2"), 0.0, "timeout"),  # empty progress frames never reset the deadline
        # Floods stdout/stderr (harmless) and writes forged frames into its own reply pipe, which
        # the parent refuses: the worker is killed, the item is a worker_error.
        (item("output_flood", "2"), 0.0, "worker_error"),
        (item("segfault", "2"), 1.0, "ok"),  # its verify is fine ...
        (item("segfault", "2", seed=1, difficulty=1), 0.0, "crashed"),  # ... its generate segfaults
        (item("sleep_import", "2"), 0.0, "load_error"),  # never finishes importing
        (item("kill_parent", "2", seed=1, difficulty=1), 1.0, "ok"),  # tries to kill us while generating
    ]
    before = hostile.metrics()
    results = hostile.score_detailed([case for case, _, _ in cases])
    assert [(r.score, r.reason) for r in results] == [(score, reason) for _, score, reason in cases]
    assert sum(delta(hostile.metrics(), before).values()) == len(cases)
    assert "timeout" in (results[5].detail or "") and "SIGSEGV" in (results[4].detail or "")
    # warmup reports which environments load.
    warm = hostile.warmup(["sleep_import", "segfault"])
    assert warm["segfault"] is None and "timeout" in (warm["sleep_import"] or "")


# -- concurrency -------------------------------------------------------------------------------------


def mixed_items(samples: dict[str, list[dict[str, Any]]], count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    envs = sorted(samples)
    items = []
    for _ in range(count):
        env_id = rng.choice(envs)
        sample = rng.choice(samples[env_id])
        kind = rng.random()
        if kind < 0.4:
            items.append(
                {
                    "env_id": env_id,
                    "instance_json": json.dumps(sample["instance"]),
                    "completion": answer(sample["gold"]),
                }
            )
        elif kind < 0.7:
            items.append(
                {
                    "env_id": env_id,
                    "seed": sample["seed"],
                    "difficulty": sample["difficulty"],
                    "completion": answer(sample["gold"]),
                }
            )
        elif kind < 0.9:
            items.append({"env_id": env_id, "instance": sample["instance"], "completion": JUNK})
        else:
            items.append({"env_id": env_id, "instance": sample["instance"], "completion": "no answer"})
    return items


def test_many_threads_at_once_lose_no_results(samples: dict[str, list[dict[str, Any]]]) -> None:
    envs = sorted(samples)[:4]
    chosen = {e: samples[e] for e in envs}
    specs = [EnvSpec.from_file(FIXTURES / "good" / f"{e}.py") for e in envs]
    batches = [mixed_items(chosen, 1 + (k * 37) % 90, seed=k) for k in range(48)]
    with RewardScorer(specs, config=FAST.model_copy(update={"workers_per_env": 2})) as scorer:
        sequential = [scorer.score_detailed(batch) for batch in batches]
        before = scorer.metrics()
        with ThreadPoolExecutor(16) as pool:
            concurrent = list(pool.map(scorer.score_detailed, batches))
        # ... and one item per call from many threads (verl's reward loop): merged into batches.
        singles = [item for batch in batches[:6] for item in batch]
        with ThreadPoolExecutor(16) as pool:
            one_by_one = list(pool.map(lambda item: scorer.score([item])[0], singles))
        after = scorer.metrics()
    assert concurrent == sequential
    assert one_by_one == [r.score for batch in sequential[:6] for r in batch]
    assert sum(delta(after, before).values()) == sum(map(len, batches)) + len(singles)
    assert {r.reason for batch in sequential for r in batch} == {"ok", "no_answer"}


def test_coroutines_score_like_the_sync_entry_point(samples: dict[str, list[dict[str, Any]]]) -> None:
    envs = sorted(samples)[:3]
    specs = [EnvSpec.from_file(FIXTURES / "good" / f"{e}.py") for e in envs]
    batches = [mixed_items({e: samples[e] for e in envs}, n, seed=n) for n in (1, 5, 70, 200)]

    async def main(scorer: RewardScorer) -> list[list[float]]:
        return list(await asyncio.gather(*(scorer.ascore(batch) for batch in batches)))

    with RewardScorer(specs, config=FAST) as scorer:
        expected = [scorer.score(batch) for batch in batches]
        assert asyncio.run(main(scorer)) == expected


# -- processes and pickling -----------------------------------------------------------------------------


def score_in_child(
    scorer: RewardScorer, items: list[dict[str, Any]]
) -> tuple[int, list[float], dict[str, int]]:
    """Runs in another process (spawned: a fresh interpreter that unpickles the scorer)."""
    with scorer:
        return os.getpid(), scorer.score(items), scorer.metrics()


def test_pickle_round_trip_carries_configuration_not_workers(
    samples: dict[str, list[dict[str, Any]]],
) -> None:
    env_id = "count_divisible"
    items = mixed_items({env_id: samples[env_id]}, 20, seed=1)
    config = FAST.model_copy(update={"batch_size": 7})
    with RewardScorer([EnvSpec.from_file(FIXTURES / "good" / f"{env_id}.py")], config=config) as scorer:
        expected = scorer.score(items)
        assert scorer.worker_pids()[env_id]
        copy = pickle.loads(pickle.dumps(scorer))
        with copy:
            assert copy.config == config and copy.env_ids == [env_id]
            assert copy.worker_pids() == {} and copy.metrics()["ok"] == 0
            assert copy.score(items) == expected
            assert set(copy.worker_pids()[env_id]).isdisjoint(scorer.worker_pids()[env_id])
        assert scorer.score(items) == expected  # the original is untouched by the copy's close


def test_two_spawned_processes_score_at_once(samples: dict[str, list[dict[str, Any]]]) -> None:
    envs = sorted(samples)[:2]
    specs = [EnvSpec.from_file(FIXTURES / "good" / f"{e}.py") for e in envs]
    items = mixed_items({e: samples[e] for e in envs}, 120, seed=7)
    with RewardScorer(specs, config=FAST) as scorer:
        expected = scorer.score(items)
        context = multiprocessing.get_context("spawn")
        with context.Pool(2) as pool:
            outcomes = pool.starmap_async(score_in_child, [(scorer, items), (scorer, items)]).get(timeout=120)
        assert scorer.score(items) == expected
    assert len({pid for pid, _, _ in outcomes} | {os.getpid()}) == 3
    for _pid, scores, metrics in outcomes:
        assert scores == expected
        assert sum(metrics.values()) == len(items)


def score_in_forked_child(scorer: RewardScorer, items: list[dict[str, Any]], out: Any) -> None:
    """Runs in a forked child that inherited ``scorer`` (with the parent's live pools) as is."""
    out.put((os.getpid(), scorer.score(items), scorer.worker_pids()))
    scorer.close()


def test_a_forked_child_starts_its_own_workers(samples: dict[str, list[dict[str, Any]]]) -> None:
    env_id = "sort_numbers"
    items = mixed_items({env_id: samples[env_id]}, 30, seed=3)
    with RewardScorer([EnvSpec.from_file(FIXTURES / "good" / f"{env_id}.py")], config=FAST) as scorer:
        expected = scorer.score(items)
        parent_pids = scorer.worker_pids()[env_id]
        context = multiprocessing.get_context("fork")
        out = context.Queue()
        child = context.Process(target=score_in_forked_child, args=(scorer, items, out), daemon=True)
        child.start()
        try:
            child_pid, scores, child_pids = out.get(timeout=60)
        finally:
            child.join(30)
            if child.is_alive():  # it hung: inherited pools without drivers would do that
                child.kill()
        assert child_pid != os.getpid() and scores == expected
        assert child_pids[env_id] and set(child_pids[env_id]).isdisjoint(parent_pids)
        # The child neither used nor stopped (on close) the parent's workers.
        assert scorer.worker_pids()[env_id] == parent_pids
        assert scorer.score(items) == expected


# -- workers dying under the scorer ---------------------------------------------------------------------


def test_the_trainer_survives_a_worker_killed_mid_batch() -> None:
    with RewardScorer([EnvSpec(env_id="quirks", code=QUIRKS)], config=FAST) as scorer:
        items = [
            {"env_id": "quirks", "instance": {"n": n}, "completion": answer(f"slow {n}")} for n in range(15)
        ]
        assert scorer.warmup() == {"quirks": None}
        (first,) = scorer.worker_pids()["quirks"]
        results: list[Any] = []
        caller = threading.Thread(target=lambda: results.extend(scorer.score_detailed(items)))
        caller.start()
        time.sleep(0.5)  # 15 items of 0.2 s each: the batch is in flight
        killed_mid_call = caller.is_alive()
        os.killpg(first, signal.SIGKILL)
        caller.join()
        assert killed_mid_call
        # The item in flight was retried in a fresh worker; nothing was lost.
        assert [(r.score, r.reason) for r in results] == [(1.0, "ok")] * 15
        (second,) = scorer.worker_pids()["quirks"]
        assert second != first


def test_close_stops_workers_and_later_calls_score_zero() -> None:
    scorer = RewardScorer([EnvSpec(env_id="quirks", code=QUIRKS)], config=FAST)
    instance = quirks_instance(scorer)
    item = {"env_id": "quirks", "instance": instance, "completion": answer(str(instance["n"]))}
    assert scorer.score([item]) == [1.0]
    pids = scorer.worker_pids()["quirks"]
    with scorer:
        pass
    scorer.close()  # idempotent
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    assert scorer.score_detailed([item]) == [(0.0, "closed", "the scorer was closed")]
    assert asyncio.run(scorer.ascore([item])) == [0.0]
    assert scorer.metrics()["closed"] == 2 and "closed" in repr(scorer)


def test_close_during_a_call_finishes_the_batch_in_flight_and_fails_the_rest() -> None:
    config = FAST.model_copy(update={"batch_size": 3})
    scorer = RewardScorer([EnvSpec(env_id="quirks", code=QUIRKS)], config=config)
    assert scorer.warmup() == {"quirks": None}
    items = [{"env_id": "quirks", "instance": {"n": n}, "completion": answer(f"slow {n}")} for n in range(15)]
    results: list[Any] = []
    caller = threading.Thread(target=lambda: results.extend(scorer.score_detailed(items)))
    caller.start()
    time.sleep(0.3)  # the first batch of 3 (0.6 s) is in flight, the other 4 are queued
    closed_mid_call = caller.is_alive()
    scorer.close()
    caller.join()
    assert closed_mid_call
    reasons = [r.reason for r in results]
    assert set(reasons) == {"ok", "closed"} and reasons.count("ok") % 3 == 0
    assert all(r.score == 1.0 for r in results if r.reason == "ok")


def test_idle_environments_are_evicted_beyond_the_limit(samples: dict[str, list[dict[str, Any]]]) -> None:
    envs = sorted(samples)[:3]
    specs = [EnvSpec.from_file(FIXTURES / "good" / f"{e}.py") for e in envs]
    with RewardScorer(specs, config=FAST.model_copy(update={"max_live_envs": 1})) as scorer:
        for _round in range(2):
            for env_id in envs:
                items = [
                    {"env_id": env_id, "instance": s["instance"], "completion": completion}
                    for s in samples[env_id]
                    for completion in (answer(s["gold"]), JUNK)
                ]
                assert scorer.score(items) == [1.0, 0.0] * len(samples[env_id])
                assert list(scorer.worker_pids()) == [env_id]


# -- construction ---------------------------------------------------------------------------------------


def test_from_catalog_reads_the_catalog_once(
    tmp_path: Path, samples: dict[str, list[dict[str, Any]]]
) -> None:
    from tests.test_catalog import build_small_catalog

    path = tmp_path / "catalog.duckdb"
    code = (FIXTURES / "good" / "count_divisible.py").read_text()
    ids = build_small_catalog(path, code_for={"graph coloring": ("count_divisible", code)})
    scorer = RewardScorer.from_catalog(path, [ids["coloring"]], config=FAST)
    path.unlink()  # scoring never needs the catalog again (nor is blocked by its writer)
    sample = samples["count_divisible"][0]
    with scorer:
        spec = scorer.environment(ids["coloring"])
        assert spec.filename == f"{spec.env_id}.py" and spec.max_difficulty == 5
        item = {"env_id": ids["coloring"], "instance": sample["instance"], "code_sha256": spec.code_sha256}
        assert scorer.score(
            [{**item, "completion": answer(sample["gold"])}, {**item, "completion": JUNK}]
        ) == [1.0, 0.0]


def test_without_a_sandbox_construction_refuses_and_an_unpickled_copy_scores_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scorer = RewardScorer([EnvSpec(env_id="quirks", code=QUIRKS)], config=FAST)
    data = pickle.dumps(scorer)
    scorer.close()
    probe.cache_clear()
    monkeypatch.setattr(isolation_module.shutil, "which", lambda name: None)
    try:
        with pytest.raises(SandboxUnavailable, match="bubblewrap"):
            RewardScorer([EnvSpec(env_id="quirks", code=QUIRKS)])
        with pickle.loads(data) as copy:  # unpickling never probes; the first call does
            result = copy.score_detailed(
                [{"env_id": "quirks", "instance": {"n": 1}, "completion": answer("1")}]
            )
    finally:
        probe.cache_clear()
    assert [(r.score, r.reason) for r in result] == [(0.0, "sandbox_unavailable")]
    assert "apt-get install bubblewrap" in (result[0].detail or "")


def test_an_internal_error_scores_zero_instead_of_raising(
    scorer: RewardScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = reward_scorer_module.completion_text

    def broken(completion: object) -> str | None:
        if "boom" in str(completion):
            raise RuntimeError("a bug in reading completions")
        return real(completion)

    monkeypatch.setattr(reward_scorer_module, "completion_text", broken)
    before = scorer.metrics_by_env().get("quirks", dict.fromkeys(REASONS, 0))
    items = [{"env_id": "quirks", "instance": {"n": 1}, "completion": answer(text)} for text in ("boom", "1")]
    results = scorer.score_detailed(items)
    assert [(r.score, r.reason) for r in results] == [(0.0, "internal_error"), (1.0, "ok")]
    assert "a bug in reading completions" in (results[0].detail or "")
    assert delta(scorer.metrics_by_env()["quirks"], before) == {"internal_error": 1, "ok": 1}


def test_bad_environments_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="given twice"):
        RewardScorer([EnvSpec(env_id="a", code=QUIRKS), EnvSpec(env_id="a", code=QUIRKS)])
    with pytest.raises(ValueError, match="does not match its code"):
        EnvSpec(env_id="a", code=QUIRKS, code_sha256="0" * 64)


def test_the_public_api() -> None:
    assert resyn.RewardScorer is RewardScorer
    assert "RewardScorer" in resyn.__all__
    assert REASONS[0] == "ok" and len(set(REASONS)) == len(REASONS)

"""Reward scoring under load (issue 5, "Evidence"): sixteen threads of this process and two spawned
processes score at once against one scorer whose environments include hostile modules (a verify
that never returns, a generate that segfaults, a module that never finishes importing, one that
forges protocol frames, a fork bomb, a memory bomb, one that tries to kill its parent).

Every call must get exactly one result per item, in order; the good environments' scores must be
exactly the expected ones, computed here without running their code (gold answers score 1, a
known-wrong answer 0, and an inline module whose score is a known function of the answer, unique
per item, so that any mix-up of items or calls shows); hostile items score 0 with a counted
reason; the metrics count every item once; and this process survives. No wall-clock thresholds.

Environment modules run only in sandbox workers, never in this process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from resyn.reward import EnvSpec, RewardConfig, RewardScorer, ScoreResult
from resyn.sandbox import Sandbox, SandboxConfig
from tests.conftest import FIXTURES

#: Scores ``(int(answer) % 997) / 996``: every item of a call gets its own expected score.
ECHO = '''
from resyn import Environment


class Echo(Environment):
    """Say a number; its score is the number modulo 997, over 996."""

    name = "echo"
    max_difficulty = 2

    def generate(self, rng, difficulty):
        return {"salt": rng.randint(0, 10**6), "d": difficulty}

    def question(self, instance):
        return "Say a whole number."

    def verify(self, instance, answer):
        try:
            return (int(answer) % 997) / 996
        except ValueError:
            return 0.0
'''

GOOD_ENVS = ("count_divisible", "sort_numbers")
HOSTILE_ENVS = (
    "cpu_loop_verify",
    "segfault",
    "sleep_import",
    "output_flood",
    "fork_bomb",
    "memory_bomb",
    "kill_parent",
)
CONFIG = RewardConfig(
    workers_per_env=2,
    batch_size=16,  # small batches: many messages, merged across callers
    sandbox=SandboxConfig(item_timeout_s=1.5, call_overhead_s=1.0, load_timeout_s=5.0),
)
THREADS = 16
CALLS_PER_THREAD = 5
JUNK = "<answer>zz-not-an-answer-zz</answer>"

Expected = tuple[float | None, frozenset[str]]
"""An item's expected score (None: any score in [0, 1]) and the reasons it may have."""


def answer(text: str) -> str:
    return f"Some reasoning first.\n<answer>{text}</answer>"


def ok(score: float) -> Expected:
    return score, frozenset({"ok"})


@pytest.fixture(scope="module")
def golds() -> dict[str, list[tuple[dict[str, Any], str]]]:
    """Instances of the good fixtures with their gold answers, drawn in the sandbox."""
    drawn: dict[str, list[tuple[dict[str, Any], str]]] = {}
    for env_id in GOOD_ENVS:
        path = FIXTURES / "good" / f"{env_id}.py"
        with Sandbox(path.read_text(), filename=path.name, config=CONFIG.sandbox) as sandbox:
            top = sandbox.load().max_difficulty
            results = sandbox.sample([(seed, 1 + seed % top) for seed in range(12)])
        assert all(r.ok and r.value["solution"] for r in results), env_id
        drawn[env_id] = [(r.value["instance"], r.value["solution"]) for r in results]
    return drawn


def make_call(
    golds: dict[str, list[tuple[dict[str, Any], str]]], seed: int, size: int, hostile: list[str]
) -> tuple[list[dict[str, Any]], list[Expected]]:
    """One scoring call: ``size`` good items in a seeded random mix, plus one item of each
    environment in ``hostile`` at random places; with each item's expectation."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    expected: list[Expected] = []
    for position in range(size):
        kind = rng.random()
        if kind < 0.35:
            k = seed * 1000 + position  # unique per item of the whole test
            where: dict[str, Any] = (
                {"instance_json": json.dumps({"salt": k})}
                if rng.random() < 0.5
                else {"seed": k % 50, "difficulty": 1 + k % 2}
            )
            items.append({"env_id": "echo", **where, "completion": answer(str(k))})
            expected.append(ok((k % 997) / 996))
            continue
        env_id = rng.choice(GOOD_ENVS)
        instance, gold = rng.choice(golds[env_id])
        text = json.dumps(instance)
        if kind < 0.65:
            items.append({"env_id": env_id, "instance_json": text, "completion": answer(gold)})
            expected.append(ok(1.0))
        elif kind < 0.85:
            items.append({"env_id": env_id, "instance": instance, "completion": JUNK})
            expected.append(ok(0.0))
        elif kind < 0.93:
            items.append({"env_id": env_id, "instance_json": text, "completion": "I will not say."})
            expected.append((0.0, frozenset({"no_answer"})))
        else:
            items.append({"env_id": env_id, "instance_json": "[1, 2]", "completion": answer(gold)})
            expected.append((0.0, frozenset({"invalid_item"})))
    for env_id in hostile:
        item, outcome = hostile_item(env_id, rng)
        place = rng.randint(0, len(items))
        items.insert(place, item)
        expected.insert(place, outcome)
    return items, expected


def hostile_item(env_id: str, rng: random.Random) -> tuple[dict[str, Any], Expected]:
    """An item of a hostile module and what it must come to. The modules' verify accepts "2";
    they are sent a wrong answer, so an attack that the sandbox contains still scores 0."""
    given = {"instance": {"q": rng.randint(0, 10**6)}}
    regenerate = {"seed": rng.randint(0, 10**6), "difficulty": 1}
    wrong = answer("3")
    if env_id == "cpu_loop_verify":  # verify is one C call that never returns
        return {"env_id": env_id, **given, "completion": wrong}, (0.0, frozenset({"timeout"}))
    if env_id == "segfault":  # generate segfaults
        return {"env_id": env_id, **regenerate, "completion": wrong}, (0.0, frozenset({"crashed"}))
    if env_id == "sleep_import":  # never finishes importing
        return {"env_id": env_id, **given, "completion": wrong}, (0.0, frozenset({"load_error"}))
    if env_id == "output_flood":  # writes forged frames into its reply pipe
        return {"env_id": env_id, **given, "completion": wrong}, (0.0, frozenset({"worker_error"}))
    # The fork bomb and the parent killer are contained (seccomp, namespaces): their verify runs
    # and rejects the wrong answer. The memory bomb is either stopped by its limit in time or
    # misses its deadline, depending on how busy the machine is.
    reasons = {"fork_bomb": {"ok"}, "kill_parent": {"ok"}, "memory_bomb": {"ok", "timeout", "crashed"}}
    return {"env_id": env_id, **regenerate, "completion": wrong}, (0.0, frozenset(reasons[env_id]))


def check(results: list[ScoreResult], expected: list[Expected], where: str) -> Counter[str]:
    """Exactly one result per item, each as expected; returns the reasons seen."""
    assert len(results) == len(expected), where
    for position, (result, (score, reasons)) in enumerate(zip(results, expected, strict=True)):
        assert result.reason in reasons, (where, position, result, reasons)
        if score is not None:
            assert result.score == score, (where, position, result, score)
        assert 0.0 <= result.score <= 1.0
    return Counter(result.reason for result in results)


def specs() -> list[EnvSpec]:
    return (
        [EnvSpec(env_id="echo", code=ECHO)]
        + [EnvSpec.from_file(FIXTURES / "good" / f"{e}.py") for e in GOOD_ENVS]
        + [EnvSpec.from_file(FIXTURES / "hostile" / f"{e}.py") for e in HOSTILE_ENVS]
    )


def child_calls(
    golds: dict[str, list[tuple[dict[str, Any], str]]], process: int
) -> list[tuple[list[dict[str, Any]], list[Expected]]]:
    """The calls of a spawned process: fewer, with the cheaper hostile modules."""
    hostile = ["segfault", "fork_bomb", "sleep_import", "kill_parent"]
    return [
        make_call(golds, 9000 + 100 * process + k, 20 + 7 * k, [hostile[k % len(hostile)]]) for k in range(4)
    ]


def score_in_child(
    scorer: RewardScorer, calls: list[tuple[list[dict[str, Any]], list[Expected]]]
) -> tuple[int, list[list[ScoreResult]], dict[str, int]]:
    """Runs in a spawned process: two threads there score the calls at once."""
    out: list[list[ScoreResult]] = [[] for _ in calls]

    def run(first: int) -> None:
        for k in range(first, len(calls), 2):
            out[k] = scorer.score_detailed(calls[k][0])

    with scorer:
        threads = [threading.Thread(target=run, args=(first,)) for first in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return os.getpid(), out, scorer.metrics()


@pytest.fixture
def scorer() -> Iterator[RewardScorer]:
    with RewardScorer(specs(), config=CONFIG) as shared:
        yield shared


def test_threads_and_processes_scoring_at_once_lose_nothing(
    scorer: RewardScorer, golds: dict[str, list[tuple[dict[str, Any], str]]]
) -> None:
    # Each thread's calls; worker-killing items are few (each costs one or two deadlines), and
    # never two of one environment in one call (that would quarantine the environment).
    plan: list[list[tuple[list[dict[str, Any]], list[Expected]]]] = []
    for thread in range(THREADS):
        calls = []
        for k in range(CALLS_PER_THREAD):
            hostile: list[str] = []
            if k == 0:
                hostile = [HOSTILE_ENVS[thread % len(HOSTILE_ENVS)]]
                if thread in (0, 7):  # the costly ones: two hangs in all
                    hostile = ["cpu_loop_verify"]
                elif thread == 14:
                    hostile = ["fork_bomb", "kill_parent"]
            elif k == 2 and thread % 3 == 0:
                hostile = ["segfault", "sleep_import", "fork_bomb"]
            size = 1 + (thread * 13 + k * 29) % 60 if k != 3 else 1  # some one-item calls (verl)
            calls.append(make_call(golds, thread * 10 + k, size, hostile))
        plan.append(calls)

    context = multiprocessing.get_context("spawn")
    before = scorer.metrics()
    results: list[list[list[ScoreResult]]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            results[thread] = [scorer.score_detailed(items) for items, _ in plan[thread]]
        except BaseException as exc:  # score_detailed must never raise; record it if it does
            errors.append(exc)

    with context.Pool(2) as pool:
        children = pool.starmap_async(
            score_in_child, [(scorer, child_calls(golds, 0)), (scorer, child_calls(golds, 1))]
        )
        threads = [threading.Thread(target=run, args=(thread,)) for thread in range(THREADS)]
        for runner in threads:
            runner.start()
        for runner in threads:
            runner.join()
        outcomes = children.get(timeout=300)
    after = scorer.metrics()

    assert errors == []
    seen: Counter[str] = Counter()
    for thread in range(THREADS):
        assert len(results[thread]) == CALLS_PER_THREAD
        for k, ((_items, expected), got) in enumerate(zip(plan[thread], results[thread], strict=True)):
            seen += check(got, expected, f"thread {thread} call {k}")
    # Every item is counted once, under the reason it was given.
    assert {
        reason: after[reason] - before[reason] for reason in after if after[reason] != before[reason]
    } == dict(seen)
    # Every failure kind the hostile modules cause was met and counted.
    assert {"timeout", "crashed", "load_error", "worker_error", "no_answer", "invalid_item"} <= set(seen)

    # The spawned processes: their own workers, the same guarantees.
    assert len({pid for pid, _, _ in outcomes} | {os.getpid()}) == 3
    for process, (_pid, got_calls, metrics) in enumerate(outcomes):
        counted: Counter[str] = Counter()
        for k, ((_items, expected), got) in enumerate(
            zip(child_calls(golds, process), got_calls, strict=True)
        ):
            counted += check(got, expected, f"process {process} call {k}")
        assert {reason: count for reason, count in metrics.items() if count} == dict(counted)

    # The trainer process is alive (this line runs), and the scorer still scores correctly.
    items, expected = make_call(golds, 424242, 40, [])
    check(scorer.score_detailed(items), expected, "after the storm")


def test_workers_of_hostile_modules_are_gone_after_close(
    golds: dict[str, list[tuple[dict[str, Any], str]]],
) -> None:
    scorer = RewardScorer(specs(), config=CONFIG)
    items, expected = make_call(golds, 77, 10, ["fork_bomb", "kill_parent", "segfault"])
    check(scorer.score_detailed(items), expected, "one call")
    pids = [pid for group in scorer.worker_pids().values() for pid in group]
    assert pids
    scorer.close()
    for pid in pids:  # each worker's whole process group (bwrap and what it started) is gone
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)

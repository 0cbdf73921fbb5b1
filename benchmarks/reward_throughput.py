"""Reward scoring throughput through ``resyn.reward.RewardScorer`` against the same verifier called
in-process.

Usage: .venv/bin/python benchmarks/reward_throughput.py [--quick] [--workers N] [--env PATH ...]

For each environment (benchmarks/envs/*.py, then tests/fixtures/envs/good/*.py), instances are
generated in the sandbox and completions are built from their gold answers (``0`` where an
environment has none) in two shapes:

- ``grpo``: 8 completions per instance, as a GRPO group is scored: the gold answer and 7
  variants of it (two of its characters swapped throughout, e.g. a relabelled sudoku grid), so
  that every ``(instance, answer)`` pair is distinct and the scorer's de-duplication of repeated
  pairs gains nothing;
- ``distinct``: every completion has its own instance (the worst case for the parent process,
  which parses and sends one instance per item).

Figures are calls per second, best of 3:

- ``direct``: the same ``verify`` on the same instances and extracted answers, in a plain loop
  inside a sandbox worker (``Sandbox.time_verify``, as ``resyn bench`` does): the in-process cost
  of the verifier alone. Untrusted code never runs in this process.
- ``scorer``: ``RewardScorer.score`` on ``ScoreItem`` objects carrying ``instance_json`` and the
  whole completion (data checks here; parsing the instance and extracting the answer in the
  workers; batching over ``--workers`` workers per environment), and ``scorer_dicts`` the same
  from plain dicts.
- ``sandbox_1w``: ``Sandbox.verify`` on the extracted answers with one worker at batch 128 (the
  layer below the scorer).
- ``regen``: items carrying ``(seed, difficulty)`` instead of the instance, already in the
  scorer's instance cache (a later epoch).
- ``threads_1``: 8 threads each scoring one item per call (verl's reward loop shape), which the
  scorer merges into batches.

CPU per item of the best ``scorer`` run is reported too, because these machines are shared and a
wall-clock rate says little on a loaded one: ``scorer_parent_us`` (``getrusage`` of this process)
and ``scorer_workers_us`` (all its descendant processes, bubblewrap included, from ``/proc``).
On 2 cores the parent and the workers share the CPU, so both bound the rate.

Targets (issue 5, 2 cores, batched): ``scorer`` ≥ 50 % of ``direct`` for verifiers of ≥ 50 µs,
and ≥ 100k calls/s for trivial ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from machine import describe

from resyn.reward import EnvSpec, RewardConfig, RewardScorer, ScoreItem
from resyn.sandbox import Sandbox

ROOT = Path(__file__).parents[1]
BENCH_ENVS = sorted((ROOT / "benchmarks/envs").glob("*.py"))
GOOD_ENVS = sorted((ROOT / "tests/fixtures/envs/good").glob("*.py"))
#: Calls per measurement: about a second of work at the expected rate.
CALLS = {"trivial": 100_000, "sudoku": 10_000, "latin": 20_000}
DEFAULT_CALLS = 5_000
GROUP = 8


def best_rate(fn: Callable[[], object], calls: int, repeats: int = 3) -> float:
    return best_run(fn, calls, repeats)[0]


def best_run(fn: Callable[[], object], calls: int, repeats: int = 3) -> tuple[float, float, float]:
    """The best rate of ``repeats`` runs, with that run's CPU µs per call in this process and in
    its descendants (the sandbox workers)."""
    best = (0.0, 0.0, 0.0)
    for _ in range(repeats):
        workers = descendants_cpu_s()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        parent = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
        workers = descendants_cpu_s() - workers
        if calls / elapsed > best[0]:
            best = (calls / elapsed, 1e6 * parent / calls, 1e6 * workers / calls)
    return best


def descendants_cpu_s() -> float:
    """CPU seconds used so far by the live descendants of this process (Linux /proc; 0 elsewhere)."""
    parents: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc/self/stat").exists() else []:
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [os.getpid()]
    while todo:
        for child in parents.get(todo.pop(), []):
            total += cpu.get(child, 0.0)
            todo.append(child)
    return total


def variants(gold: str, count: int) -> list[str]:
    """``gold`` and ``count - 1`` distinct variants: the k-th swaps the k-th pair of its distinct
    characters throughout (keeping its format, so verifiers do comparable work)."""
    chars = sorted(set(gold) - set(" \n\t"))
    pairs = [(a, b) for i, a in enumerate(chars) for b in chars[i + 1 :]]
    out = [gold]
    for a, b in pairs:
        if len(out) == count:
            break
        swapped = gold.translate(str.maketrans({a: b, b: a}))
        if swapped not in out:
            out.append(swapped)
    while len(out) < count:
        out.append(f"{gold} {'x' * len(out)}")
    return out


def draw(path: Path, instances: int) -> tuple[list[dict[str, Any]], list[str], list[tuple[int, int]], int]:
    """Instances with their gold answers, generated in a sandbox worker."""
    with Sandbox(path.read_text(), filename=path.name) as sandbox:
        load = sandbox.load()
        levels = load.max_difficulty if type(load.max_difficulty) is int else 1
        keys = [(seed, 1 + seed % levels) for seed in range(instances)]
        drawn = sandbox.sample(keys, batch_size=256)
    found, golds, kept = [], [], []
    for key, result in zip(keys, drawn, strict=True):
        if result.ok:
            found.append(result.value["instance"])
            solution = result.value["solution"]
            golds.append(solution.strip() if isinstance(solution, str) and solution.strip() else "0")
            kept.append(key)
    return found, golds, kept, levels


def measure_shape(path: Path, calls: int, workers: int, group: int) -> dict[str, Any]:
    instances, golds, keys, levels = draw(path, max(1, calls // group))
    pairs = [(i, answer) for i, gold in enumerate(golds) for answer in variants(gold, group)]
    calls = len(pairs)
    with Sandbox(path.read_text(), filename=path.name) as sandbox:
        sandbox.load()
        direct = max(calls / sandbox.time_verify(instances, pairs) for _ in range(3))
        sandbox.verify(instances, pairs[:1000])
        raw = best_rate(lambda: sandbox.verify(instances, pairs, batch_size=128), calls)

    env_id = path.stem
    texts = [json.dumps(instance) for instance in instances]
    completions = [f"Let me work it out.\n<answer>{answer}</answer>" for _, answer in pairs]
    dicts = [
        {"env_id": env_id, "instance_json": texts[i], "completion": completion}
        for (i, _), completion in zip(pairs, completions, strict=True)
    ]
    models = [ScoreItem(**item) for item in dicts]
    regen = [
        ScoreItem(env_id=env_id, seed=keys[i][0], difficulty=keys[i][1], completion=completion)
        for (i, _), completion in zip(pairs, completions, strict=True)
    ]
    config = RewardConfig(workers_per_env=workers, instance_cache_size=len(instances))
    spec = EnvSpec(env_id=env_id, code=path.read_text(), filename=path.name, max_difficulty=levels)
    with RewardScorer([spec], config=config) as scorer:
        scorer.warmup()
        first = scorer.score(models)
        rate, parent_us, workers_us = best_run(lambda: scorer.score(models), calls)
        rate_dicts = best_rate(lambda: scorer.score(dicts), calls, repeats=2)
        scorer.score(regen)  # fills the instance cache
        rate_regen = best_rate(lambda: scorer.score(regen), calls, repeats=2)
        single = models[: min(calls, 2_000)]
        rate_threads = best_rate(lambda: threaded_single(scorer, single, 8), len(single), repeats=1)
        reasons = {reason: count for reason, count in scorer.metrics().items() if count}
    return {
        "calls": calls,
        "direct_us_per_call": round(1e6 / direct, 2),
        "direct": round(direct),
        "scorer": round(rate),
        "scorer_vs_direct": round(rate / direct, 3),
        "scorer_parent_us": round(parent_us, 2),
        "scorer_workers_us": round(workers_us, 2),
        "scorer_dicts": round(rate_dicts),
        "sandbox_1w": round(raw),
        "regen": round(rate_regen),
        "threads_1": round(rate_threads),
        "gold_scored_1": sum(
            1 for (i, answer), s in zip(pairs, first, strict=True) if answer == golds[i] and s == 1.0
        ),
        "golds": len(golds),
        "reasons": reasons,
    }


def threaded_single(scorer: RewardScorer, items: list[ScoreItem], threads: int) -> None:
    def run(part: list[ScoreItem]) -> None:
        for item in part:
            scorer.score([item])

    runners = [threading.Thread(target=run, args=(items[k::threads],)) for k in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the calls (a smoke run)")
    parser.add_argument("--workers", type=int, default=2, help="workers per environment (default 2)")
    parser.add_argument("--env", action="append", type=Path, help="only these modules (repeatable)")
    args = parser.parse_args()
    machine = describe()  # load average at the start; the end's is added below
    cases = []
    for path in args.env or [*BENCH_ENVS, *GOOD_ENVS]:
        calls = CALLS.get(path.stem, DEFAULT_CALLS) // (10 if args.quick else 1)
        cases.append(
            {
                "env": path.stem,
                "grpo": measure_shape(path, calls, args.workers, GROUP),
                "distinct": measure_shape(path, calls, args.workers, 1),
            }
        )
    machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    result = {
        "machine": machine,
        "workers_per_env": args.workers,
        "cases": cases,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

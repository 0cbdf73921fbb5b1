"""Reward scoring through ``resyn.reward`` against reasoning-gym's own in-process ``score_answer``.

Usage: .venv/bin/python benchmarks/reward_vs_reasoning_gym.py [--quick] [--workers N] [--task T ...]

For each reasoning-gym task, instances are generated in the sandbox by resyn's adapter
(:mod:`resyn.adapters.reasoning_gym`, difficulty 1) and scored as a GRPO group is (8 completions
per instance: the gold answer and 7 variants of it, see ``reward_throughput.variants``):

- ``rg_inprocess``: ``reasoning_gym.create_dataset(task, ...).score_answer(answer, entry)`` in a
  plain loop in this process, on the same entries (question, answer, metadata) and the same
  answers, already extracted: what a trainer calling reasoning-gym directly pays (no sandbox, no
  answer extraction, no timeout, nothing isolated).
- ``resyn_rg``: ``RewardScorer.score`` on the adapter module, from items carrying
  ``instance_json`` and whole completions (``<answer>…</answer>``), sandboxed and batched over
  ``--workers`` workers.
- ``resyn_rg_direct``: the adapter's ``verify`` in a loop inside a worker (``Sandbox.time_verify``):
  the adapter's own overhead over ``score_answer`` (a fresh copy of the entry per call, from a
  marshal snapshot cached per instance content; ``rg_us_per_call`` and ``resyn_rg_direct_us``
  put the two side by side).

and for a resyn environment doing comparable work (a fixture or benchmark module):
``resyn_env`` (``RewardScorer.score``) and ``resyn_env_direct`` (its verify in a loop in a worker).

Ratios: ``resyn_rg / rg_inprocess`` (the price of sandboxed, batched scoring of the same task) and
``resyn_env / rg_inprocess``. reasoning-gym is a library installed here, not generated code: it runs
in this process only for the ``rg_inprocess`` baseline; resyn environments run only in workers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import reasoning_gym
from machine import describe
from reward_throughput import best_rate, draw, variants

from resyn.adapters.reasoning_gym import adapter_source, reasoning_gym_version
from resyn.reward import EnvSpec, RewardConfig, RewardScorer
from resyn.sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).parents[1]
#: reasoning-gym task -> a resyn module doing comparable work.
PAIRS = {
    "chain_sum": ROOT / "tests/fixtures/envs/good/arithmetic_expression.py",
    "number_sorting": ROOT / "tests/fixtures/envs/good/sort_numbers.py",
    "caesar_cipher": ROOT / "tests/fixtures/envs/good/caesar_cipher.py",
    "sudoku": ROOT / "benchmarks/envs/sudoku.py",
}
GROUP = 8
#: Importing reasoning-gym in a fresh worker takes 3-8 s (docs/benchmarks.md, worker cold start).
SANDBOX = SandboxConfig(load_timeout_s=60.0, item_timeout_s=2.0, call_overhead_s=1.0)


def rg_draw(task: str, instances: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Adapter instances (difficulty 1) with their gold answers, generated in a worker."""
    with Sandbox(adapter_source(task), filename=f"rg_{task}.py", config=SANDBOX) as sandbox:
        load = sandbox.load()
        if not load.ok:
            raise SystemExit(f"rg:{task} does not load: {load.error}")
        drawn = sandbox.sample([(seed, 1) for seed in range(instances)], batch_size=64)
    found, golds = [], []
    for result in drawn:
        if result.ok and isinstance(result.value["solution"], str):
            found.append(result.value["instance"])
            golds.append(result.value["solution"])
    return found, golds


def rg_inprocess(task: str, instances: list[dict[str, Any]], pairs: list[tuple[int, str]]) -> float:
    """reasoning-gym's score_answer in this process, on the same entries and answers."""
    config = dict(instances[0].get("rg_config") or {})
    config.pop("seed", None)
    config.pop("size", None)
    try:
        dataset = reasoning_gym.create_dataset(task, seed=0, size=1, **config)
    except Exception:  # a configuration the constructor does not take back: the defaults
        dataset = reasoning_gym.create_dataset(task, seed=0, size=1)
    entries = [
        {"question": i["question"], "answer": i["answer"], "metadata": i.get("metadata", {})}
        for i in instances
    ]
    calls = [(answer, entries[index]) for index, answer in pairs]
    score = dataset.score_answer

    def run() -> None:
        for answer, entry in calls:
            score(answer, entry)

    return best_rate(run, len(calls))


def scorer_rate(
    spec: EnvSpec, instances: list[dict[str, Any]], pairs: list[tuple[int, str]], workers: int
) -> tuple[float, float, dict[str, int]]:
    """``RewardScorer.score`` calls/s, the verifier's direct calls/s in a worker, and the reasons."""
    with Sandbox(spec.code, filename=spec.filename, config=SANDBOX) as sandbox:
        sandbox.load()
        direct = max(len(pairs) / sandbox.time_verify(instances, pairs) for _ in range(3))
    texts = [json.dumps(instance) for instance in instances]
    items = [
        {
            "env_id": spec.env_id,
            "instance_json": texts[index],
            "completion": f"Let me see.\n<answer>{answer}</answer>",
        }
        for index, answer in pairs
    ]
    config = RewardConfig(workers_per_env=workers, sandbox=SANDBOX)
    with RewardScorer([spec], config=config) as scorer:
        scorer.warmup()
        scorer.score(items[: min(len(items), 500)])
        rate = best_rate(lambda: scorer.score(items), len(items))
        reasons = {reason: count for reason, count in scorer.metrics().items() if count}
    return rate, direct, reasons


def measure(task: str, instances_wanted: int, workers: int) -> dict[str, Any]:
    instances, golds = rg_draw(task, instances_wanted)
    pairs = [(i, answer) for i, gold in enumerate(golds) for answer in variants(gold, GROUP)]
    baseline = rg_inprocess(task, instances, pairs)
    rg_spec = EnvSpec(env_id=f"rg_{task}", code=adapter_source(task), filename=f"rg_{task}.py")
    resyn_rg, resyn_rg_direct, rg_reasons = scorer_rate(rg_spec, instances, pairs, workers)

    path = PAIRS[task]
    env_instances, env_golds, _keys, _levels = draw(path, len(instances))
    env_pairs = [(i, answer) for i, gold in enumerate(env_golds) for answer in variants(gold, GROUP)]
    env_spec = EnvSpec.from_file(path)
    resyn_env, resyn_env_direct, env_reasons = scorer_rate(env_spec, env_instances, env_pairs, workers)
    return {
        "task": task,
        "calls": len(pairs),
        "rg_inprocess": round(baseline),
        "rg_us_per_call": round(1e6 / baseline, 1),
        "resyn_rg": round(resyn_rg),
        "resyn_rg_direct": round(resyn_rg_direct),
        "resyn_rg_direct_us": round(1e6 / resyn_rg_direct, 1),
        "resyn_rg_vs_inprocess": round(resyn_rg / baseline, 3),
        "resyn_env": path.stem,
        "resyn_env_rate": round(resyn_env),
        "resyn_env_direct": round(resyn_env_direct),
        "resyn_env_vs_rg_inprocess": round(resyn_env / baseline, 3),
        "reasons": {"rg": rg_reasons, "env": env_reasons},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the instances (a smoke run)")
    parser.add_argument("--workers", type=int, default=2, help="workers per environment (default 2)")
    parser.add_argument("--task", action="append", choices=sorted(PAIRS), help="only these tasks")
    args = parser.parse_args()
    instances = 100 if args.quick else 500
    machine = describe(reasoning_gym=reasoning_gym_version())
    began = time.monotonic()
    cases = [measure(task, instances, args.workers) for task in args.task or list(PAIRS)]
    print(
        json.dumps(
            {
                "machine": machine,
                "workers_per_env": args.workers,
                "seconds": round(time.monotonic() - began),
                "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
                "cases": cases,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

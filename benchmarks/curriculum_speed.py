"""Curriculum speed: rendered items per second from ``Curriculum.next_batch``, and the cost of
``update`` and ``state_dict`` per item.

Usage: .venv/bin/python benchmarks/curriculum_speed.py [--batch N] [--steps S] [--envs all|few]
Prints one JSON document. Every good fixture environment (or three of them) is rendered in the
sandbox; the rewards fed back are a deterministic coin, so levels move as in training.

* ``build_s``: constructing the curriculum (one sandbox worker per environment loads its module).
* ``next_batch``: items/s over ``--steps`` batches (median and min of the per-batch rates) after
  one warm-up batch, and the share of that time spent choosing draws (no sandbox) versus
  rendering them.
* ``update_us_per_item``, ``state_dict_ms``: the bookkeeping a trainer step adds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

from resyn.curriculum import Curriculum, CurriculumItem, CurriculumSettings
from resyn.reward import EnvSpec

ROOT = Path(__file__).parents[1]
GOOD = sorted((ROOT / "tests/fixtures/envs/good").glob("*.py"))
FEW = ("count_divisible", "arithmetic_expression", "sort_numbers")


def coin(item: CurriculumItem) -> float:
    return float(hashlib.sha256(item.question.encode()).digest()[0] < 160)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--envs", choices=("all", "few"), default="all")
    args = parser.parse_args()
    paths = GOOD if args.envs == "all" else [p for p in GOOD if p.stem in FEW]
    specs = [EnvSpec.from_file(p) for p in paths]

    start = time.perf_counter()
    curriculum = Curriculum(specs, seed=0, settings=CurriculumSettings(window=32, min_samples=16))
    build_s = time.perf_counter() - start
    with curriculum:
        warm = curriculum.next_batch(args.batch)
        curriculum.update(warm, [coin(i) for i in warm])
        rates, update_s, draw_s, total_s = [], 0.0, 0.0, 0.0
        for _ in range(args.steps):
            state = curriculum.state_dict()
            with curriculum._lock:  # the draw alone (no rendering), then the state restored
                t0 = time.perf_counter()
                curriculum._draw(args.batch)
                draw_s += time.perf_counter() - t0
                curriculum.load_state_dict(state)
            t1 = time.perf_counter()
            batch = curriculum.next_batch(args.batch)
            t2 = time.perf_counter()
            curriculum.update(batch, [coin(i) for i in batch])
            t3 = time.perf_counter()
            rates.append(args.batch / (t2 - t1))
            total_s += t2 - t1
            update_s += t3 - t2
        t0 = time.perf_counter()
        for _ in range(10):
            json.dumps(curriculum.state_dict())
        state_ms = (time.perf_counter() - t0) / 10 * 1000
        stats = curriculum.stats()
    print(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "environments": len(specs),
                "dropped": sorted(stats["envs"][e]["dropped"] is not None for e in stats["envs"]).count(True),
                "batch": args.batch,
                "steps": args.steps,
                "build_s": round(build_s, 3),
                "next_batch": {
                    "items_per_s_median": round(statistics.median(rates)),
                    "items_per_s_min": round(min(rates)),
                    "draw_share": round(draw_s / total_s, 4),
                },
                "update_us_per_item": round(update_s / (args.steps * args.batch) * 1e6, 2),
                "state_dict_ms": round(state_ms, 2),
                "levels": {e: s["level"] for e, s in stats["envs"].items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Sandboxed verify throughput against direct calls, and worker cold start.

Usage: .venv/bin/python benchmarks/verify_throughput.py [--json]
Targets (issue 2, 2 cores): ≥ 100k calls/s batched for a trivial verifier; within 2× of direct
calls for a ~50 µs verifier. "Direct" is the same verify on the same instances and answers called
in a plain loop inside the worker (untrusted code never runs outside the sandbox).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

from resyn.sandbox import Sandbox

ROOT = Path(__file__).parents[1]
CASES = [
    ("trivial", ROOT / "benchmarks/envs/trivial.py", 200_000),
    ("sudoku_9x9", ROOT / "benchmarks/envs/sudoku.py", 20_000),
    ("latin_5x5", ROOT / "benchmarks/envs/latin.py", 50_000),
]
BATCHES = (1, 16, 64, 128, 256, 1024)


def best_rate(fn, calls: int, repeats: int = 3) -> float:
    best = 0.0
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        best = max(best, calls / (time.perf_counter() - began))
    return best


def throughput(name: str, path: Path, calls: int) -> dict[str, object]:
    with Sandbox(path.read_text(), filename=path.name) as sandbox:
        sandbox.load()
        drawn = sandbox.sample([(seed, 1 + seed % 3) for seed in range(64)])
        instances = [r.value["instance"] for r in drawn]
        answers = [r.value["solution"] for r in drawn]
        items = [(i % 64, answers[i % 64]) for i in range(calls)]
        direct = max(calls / sandbox.time_verify(instances, items) for _ in range(3))
        rates = {}
        for batch in BATCHES:
            n = calls if batch > 1 else min(calls, 5_000)
            rates[batch] = best_rate(
                lambda b=batch, k=n: sandbox.verify(instances, items[:k], batch_size=b), n
            )
        assert all(r.value == 1.0 for r in sandbox.verify(instances, items[:1000]))
    with Sandbox(path.read_text(), filename=path.name, workers=2) as sandbox:
        sandbox.load()
        sandbox.verify(instances, items[:1000])  # start both workers
        two = best_rate(lambda: sandbox.verify(instances, items, batch_size=128), calls)
    return {
        "verifier": name,
        "direct_us_per_call": round(1e6 / direct, 2),
        "direct_calls_per_s": round(direct),
        **{f"batch_{b}_calls_per_s": round(r) for b, r in rates.items()},
        "two_workers_batch_128_calls_per_s": round(two),
        "best_batched_vs_direct": round(max(rates.values()) / direct, 3),
    }


def cold_start(source: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        with Sandbox(source) as sandbox:
            assert sandbox.load().ok
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    plain = (ROOT / "benchmarks/envs/trivial.py").read_text()
    with_sympy = plain.replace("import random\n", "import random\n\nimport sympy\n", 1)
    result = {
        "machine": f"{platform.platform()}, {platform.machine()}, python {platform.python_version()}",
        "cases": [throughput(*case) for case in CASES],
        "cold_start_s": round(cold_start(plain), 4),
        "cold_start_with_sympy_s": round(cold_start(with_sympy), 4),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Throughput of the synthesis loop when the model is the bottleneck it should be.

Usage: .venv/bin/python benchmarks/synthesis_throughput.py [--latency 20] [--concurrency 1,8,32]
       [--seeds N] [--check-workers W] [--keywords-per-slot 2]
Quick smoke run: --latency 2 (about a minute).

``resyn.synth.run.synthesize`` (the API the CLI calls) runs N = 2×C keywords at concurrency C against
a loopback fake OpenAI server (``benchmarks/fake_provider.py``) that answers every call after a
fixed latency L: a good module per keyword (every check passes, for real, in the sandbox), then an
accepting verdict, so each keyword takes exactly two calls. With the model as the only cost, the
wall time would be the ideal ``2 × L × ceil(N / C)``; the ratio wall / ideal (target ≤ 1.15 at
C = 32) is what the rest of the loop costs on top: check suites, judge samples, catalog writes.

To explain a ratio above target, the run is instrumented from outside (resyn is not changed, its
functions are wrapped): time of each check-suite run and judge-sample draw and how long each waited
for a thread of the check pool; catalog transactions and reads on the event-loop thread (which
block every task in flight); CPU of the event-loop thread, of this process, of the sandbox workers
and of the whole machine. Prints one JSON document; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from fake_provider import FakeProvider, write_answer
from machine import describe

import resyn.synth.loop as loop_module
from resyn.catalog import Catalog
from resyn.checks import CheckConfig, run_checks
from resyn.sandbox import Sandbox, SandboxConfig
from resyn.synth.extract import extract_module
from resyn.synth.judge import judge_samples
from resyn.synth.loop import SynthesisSettings, Synthesizer
from resyn.synth.run import synthesize

CALLS_PER_KEYWORD = 2  # one write, one judge
_TICK = os.sysconf("SC_CLK_TCK")


# -- CPU accounting -----------------------------------------------------------------------------------
def machine_cpu() -> tuple[float, float, float]:
    """(busy, steal, total) seconds summed over all cores since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / _TICK, steal / _TICK, sum(fields[:8]) / _TICK


def thread_cpu(tid: int) -> float:
    """utime + stime of one thread of this process, in seconds."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / _TICK


def rusage_cpu(who: int) -> float:
    """User + system CPU seconds of this process (``RUSAGE_SELF``: all its threads)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class TreeCpu:
    """CPU seconds of this process's descendants (the sandbox workers), sampled from /proc every
    ``interval``: a worker's last ``interval`` before it exits is missed, so this is a slight
    undercount. (``RUSAGE_CHILDREN`` misses them entirely: they run in PID namespaces and are
    SIGKILLed as process groups, so their time is never handed up to this process.)"""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.seen: dict[tuple[int, int], float] = {}
        """(pid, start time) → utime + stime at the last sample."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-cpu", daemon=True)

    def __enter__(self) -> TreeCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._scan()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._scan()

    def _scan(self) -> None:
        frontier, found = [os.getpid()], []
        while frontier:
            pid = frontier.pop()
            with contextlib.suppress(OSError):
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with contextlib.suppress(OSError):
                        children = [
                            int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
                        ]
                        frontier.extend(children)
                        found.extend(children)
        for pid in found:
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                self.seen[(pid, int(stat[19]))] = (int(stat[11]) + int(stat[12])) / _TICK


# -- instrumentation ----------------------------------------------------------------------------------
class Probe:
    """Wraps the loop's pool work and the catalog's locked sections to time them, without changing
    what they do."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checks: list[dict[str, float]] = []
        self.samples: list[dict[str, float]] = []
        self.check_waits: list[float] = []
        """Seconds each check-suite run waited for a thread of the check pool."""
        self.sample_waits: list[float] = []
        """Seconds each judge-sample draw waited for a thread of the check pool."""
        self.catalog_main: list[float] = []
        """Durations of catalog transactions and reads made on the event-loop (main) thread."""
        self.catalog_other: list[float] = []
        self._undo: list[Callable[[], None]] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[Probe]:
        self._wrap_pool_function("run_checks", self.checks)
        self._wrap_pool_function("judge_samples", self.samples)
        self._wrap_in_pool()
        self._wrap_catalog("_transaction")
        self._wrap_catalog("_reading")
        try:
            yield self
        finally:
            for undo in reversed(self._undo):
                undo()
            self._undo.clear()

    def _wrap_pool_function(self, name: str, into: list[dict[str, float]]) -> None:
        original = getattr(loop_module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                with self.lock:
                    into.append({"start": began, "end": time.monotonic()})

        setattr(loop_module, name, timed)
        self._undo.append(lambda: setattr(loop_module, name, original))

    def _wrap_in_pool(self) -> None:
        original = Synthesizer._in_pool
        probe = self

        async def in_pool(synth: Synthesizer, fn: Callable[[], Any]) -> Any:
            submitted = time.monotonic()
            # The loop submits checks as functools.partial(self._check, ...), samples as a lambda.
            waits = probe.check_waits if isinstance(fn, functools.partial) else probe.sample_waits

            def run() -> Any:
                with probe.lock:
                    waits.append(time.monotonic() - submitted)
                return fn()

            return await asyncio.get_running_loop().run_in_executor(synth._pool, run)

        Synthesizer._in_pool = in_pool  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(Synthesizer, "_in_pool", original))

    def _wrap_catalog(self, name: str) -> None:
        original = getattr(Catalog, name)
        probe = self

        @contextlib.contextmanager
        def timed(catalog: Catalog) -> Iterator[Any]:
            began = time.perf_counter()
            try:
                with original(catalog) as conn:
                    yield conn
            finally:
                took = time.perf_counter() - began
                main = threading.current_thread() is threading.main_thread()
                with probe.lock:
                    (probe.catalog_main if main else probe.catalog_other).append(took)

        setattr(Catalog, name, timed)
        self._undo.append(lambda: setattr(Catalog, name, original))


def _stats(values: list[float], digits: int = 3) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(values),
        "sum_s": round(sum(values), digits),
        "mean_s": round(statistics.fmean(values), digits),
        "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], digits),
        "max_s": round(ordered[-1], digits),
    }


# -- one concurrency level ------------------------------------------------------------------------------
def run_level(
    concurrency: int, *, latency: float, per_slot: int, seeds: int | None, check_workers: int | None
) -> dict[str, Any]:
    keywords = [f"kw{i:03d}" for i in range(per_slot * concurrency)]
    fields: dict[str, Any] = {
        "model": "openai/bench",
        "judge_model": "openai/bench",
        "concurrency": concurrency,
        "checks": CheckConfig() if seeds is None else CheckConfig(seeds_per_level=seeds),
    }
    if check_workers is not None:
        fields["check_workers"] = check_workers
    with tempfile.TemporaryDirectory(prefix="resyn-bench-") as tmp, FakeProvider(latency_s=latency) as fake:
        settings = SynthesisSettings.model_validate(
            fields | {"base_url": fake.base_url, "judge_base_url": fake.base_url}
        )
        probe_ = Probe()
        tree = TreeCpu(interval=0.02)
        with Catalog.open(Path(tmp) / "catalog.duckdb") as catalog, probe_.installed(), tree:
            cpu0, steal0, _ = machine_cpu()
            main0 = thread_cpu(threading.main_thread().native_id or os.getpid())
            self0 = rusage_cpu(resource.RUSAGE_SELF)
            began = time.monotonic()
            summary = synthesize(
                keywords, catalog=catalog, run_id=f"bench-c{concurrency}", settings=settings, resumed=False
            )
            wall = time.monotonic() - began
            cpu1, steal1, _ = machine_cpu()
            main1 = thread_cpu(threading.main_thread().native_id or os.getpid())
            self1 = rusage_cpu(resource.RUSAGE_SELF)
            report_seconds = [
                row[0] for row in catalog.sql("SELECT seconds FROM check_reports", limit=100_000).rows
            ]
            call_latency = [
                row[0]
                for row in catalog.sql(
                    "SELECT latency_s FROM llm_calls WHERE error IS NULL", limit=100_000
                ).rows
            ]
        requests = list(fake.requests)
        max_in_flight = fake.max_in_flight

    n = len(keywords)
    waves = math.ceil(n / concurrency)
    ideal = CALLS_PER_KEYWORD * latency * waves
    accepted = sum(1 for t in summary.tasks if t.status == "accepted")
    cores = os.cpu_count() or 1
    busy = cpu1 - cpu0
    own_process, workers = self1 - self0, tree.seconds
    ours = own_process + workers
    floor = max(ideal, CALLS_PER_KEYWORD * latency + ours / cores)
    # What a keyword spends besides its two calls: from its write request's arrival to its judge
    # request's arrival, minus the write's latency (= checks, judge samples, pool waits, catalog).
    arrivals: dict[tuple[str, str], float] = {}
    for r in requests:
        arrivals.setdefault((r.kind, r.keyword), r.arrived)
    between = [
        arrivals[("judge", k)] - arrivals[("write", k)] - latency
        for k in keywords
        if ("judge", k) in arrivals and ("write", k) in arrivals
    ]
    return {
        "concurrency": concurrency,
        "keywords": n,
        "accepted": accepted,
        "status": summary.status,
        "wall_s": round(wall, 2),
        "ideal_s": round(ideal, 2),
        "ratio": round(wall / ideal, 3),
        "keywords_per_min": round(60 * n / wall, 2),
        "calls": len(requests),
        "calls_expected": CALLS_PER_KEYWORD * n,
        "max_calls_in_flight": max_in_flight,
        "client_call_latency_s": _stats(call_latency),
        "check_runs": {
            **_stats([c["end"] - c["start"] for c in probe_.checks], 2),
            "report_seconds_sum": round(sum(report_seconds), 2),
        },
        "judge_samples": _stats([s["end"] - s["start"] for s in probe_.samples], 2),
        "pool_wait_checks": _stats(probe_.check_waits, 2),
        "pool_wait_judge_samples": _stats(probe_.sample_waits, 2),
        "between_write_answer_and_judge_request": _stats(between, 2),
        "catalog_on_event_loop": _stats(probe_.catalog_main, 4),
        "catalog_other_threads": _stats(probe_.catalog_other, 4),
        "cpu": {
            "cores": cores,
            "machine_busy_core_s": round(busy, 1),
            "machine_utilization": round(busy / (wall * cores), 3),
            "steal_core_s": round(steal1 - steal0, 1),
            "event_loop_thread_s": round(main1 - main0, 1),
            "this_process_s": round(own_process, 1),
            "sandbox_workers_s": round(workers, 1),
            "core_s_per_keyword": round(ours / n, 2),
            # Busy time of the machine that is not this benchmark's: other jobs (when large, this
            # run's figures are not trustworthy) plus the workers' unsampled last moments.
            "foreign_core_s": round(busy - ours, 1),
        },
        # With this CPU cost per keyword, no schedule beats: the first check cannot start before the
        # first write is answered (L), the last keyword still needs its judge call (L) after its own
        # checks, and the CPU work in between needs (our core seconds) / cores at best.
        "cpu_floor_s": round(floor, 1),
        "cpu_floor_ratio": round(floor / ideal, 3),
        "cpu_ceiling_keywords_per_min": round(60 * cores * n / ours, 1) if ours else None,
        "check_workers": settings.check_workers,
    }


def step_cpu(checks: CheckConfig, repeats: int = 3) -> dict[str, float]:
    """CPU of one keyword's work measured alone, before the runs (CPU time, unlike wall time,
    hardly depends on what else the machine is doing): a check-suite run, a judge-sample draw
    and, for reference, one sandbox worker's cold start with the module loaded."""
    code = extract_module(write_answer("cpu-probe"), "stop").code
    assert code is not None
    config = SandboxConfig()
    run_checks(code, filename="warm_up.py")  # imports and first-call costs out of the figures

    def measure(step: Callable[[], object]) -> tuple[float, float]:
        own = rusage_cpu(resource.RUSAGE_SELF)
        with TreeCpu(interval=0.01) as tree:
            for _ in range(repeats):
                step()
        return (rusage_cpu(resource.RUSAGE_SELF) - own) / repeats, tree.seconds / repeats

    def cold_start() -> None:
        with Sandbox(code, config=config) as sandbox:
            sandbox.load()

    check_parent, check_workers = measure(lambda: run_checks(code, filename="probe.py", config=checks))
    samples_parent, samples_workers = measure(lambda: judge_samples(code, 5, config))
    _, cold_workers = measure(cold_start)
    return {
        "check_run_parent_s": round(check_parent, 2),
        "check_run_workers_s": round(check_workers, 2),
        "judge_samples_parent_s": round(samples_parent, 2),
        "judge_samples_workers_s": round(samples_workers, 2),
        "worker_cold_start_s": round(cold_workers, 2),
        "per_keyword_s": round(check_parent + check_workers + samples_parent + samples_workers, 2),
    }


def machine() -> dict[str, Any]:
    return describe()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=20.0, help="seconds per model call (default 20)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels (default 1,8,32)")
    parser.add_argument("--keywords-per-slot", type=int, default=2, help="N = this × C (default 2)")
    parser.add_argument("--seeds", type=int, default=None, help="instances per level in the checks")
    parser.add_argument("--check-workers", type=int, default=None, help="check pool size (default: cores)")
    args = parser.parse_args()
    os.environ["RESYN_LLM_OFFLINE"] = "1"  # loopback only, whatever the environment says
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        os.environ.pop(name, None)
    levels = [int(c) for c in args.concurrency.split(",")]
    document: dict[str, Any] = {
        "benchmark": "synthesis_throughput",
        "machine": machine(),
        "latency_s": args.latency,
        "calls_per_keyword": CALLS_PER_KEYWORD,
        "seeds_per_level": args.seeds or CheckConfig().seeds_per_level,
        "levels": [],
    }
    print("CPU of one keyword's steps, measured alone …", file=sys.stderr)
    steps = step_cpu(CheckConfig() if args.seeds is None else CheckConfig(seeds_per_level=args.seeds))
    document["cpu_per_keyword_alone"] = steps
    for concurrency in levels:
        print(
            f"concurrency {concurrency}: {args.keywords_per_slot * concurrency} keywords …", file=sys.stderr
        )
        row = run_level(
            concurrency,
            latency=args.latency,
            per_slot=args.keywords_per_slot,
            seeds=args.seeds,
            check_workers=args.check_workers,
        )
        alone = (
            CALLS_PER_KEYWORD * args.latency + row["keywords"] * steps["per_keyword_s"] / row["cpu"]["cores"]
        )
        row["cpu_floor_from_alone_s"] = round(max(row["ideal_s"], alone), 1)
        row["cpu_floor_from_alone_ratio"] = round(max(row["ideal_s"], alone) / row["ideal_s"], 3)
        print(
            f"  wall {row['wall_s']} s, ideal {row['ideal_s']} s, ratio {row['ratio']}, "
            f"{row['keywords_per_min']} keywords/min",
            file=sys.stderr,
        )
        document["levels"].append(row)
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()

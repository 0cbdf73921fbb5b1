"""Reward server throughput (``resyn serve``) under a local load generator, against
``RewardScorer.score`` in-process on the same items.

Usage: .venv/bin/python benchmarks/server_throughput.py [--quick] [--env PATH ...] [--out FILE.json]

A catalog is built in a temporary directory from the environment modules (default:
benchmarks/envs/trivial.py, the cheapest verifier, where the HTTP layer's cost shows most, and
tests/fixtures/envs/good/count_divisible.py, a verifier of typical cost). ``resyn serve`` runs as a
subprocess on 127.0.0.1 (port 0, 2 workers per environment), as a trainer on another host would
reach it. The load generator is pure Python in this process: ``C`` threads, each with one
keep-alive HTTP/1.1 connection (``http.client``), send requests of ``B`` items back to back.

Per (environment, B, C): scored items per second over the whole run, and request latency p50/p95
(ms). ``/score`` carries ``{"items": [...]}`` with ``instance_json``; one row per environment uses
OpenRLHF's ``/get_reward`` shape (queries, prompts, labels). ``inproc`` is the same items through
``RewardScorer.score`` in this process, ``C`` threads calling with ``B`` items each: what the HTTP
layer costs is the gap. Every response is checked (gold answers must score 1).

On a 2-core machine the load generator, the server and its 2 workers per environment share the
cores, so these are lower bounds of what a server on its own host serves.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reward_throughput import draw  # noqa: E402

from resyn.reward import RewardConfig, RewardScorer  # noqa: E402
from resyn.serve import label_for  # noqa: E402
from tests.test_serve import build_catalog  # noqa: E402

DEFAULT_ENVS = [ROOT / "benchmarks/envs/trivial.py", ROOT / "tests/fixtures/envs/good/count_divisible.py"]
SHAPES = [(1, 1), (1, 16), (16, 1), (16, 8), (256, 1), (256, 4)]  # (batch size, connections)
PROMPT = "<|im_start|>user\nSolve it.<|im_end|>\n<|im_start|>assistant\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_clients(
    connections: int, requests: list[bytes], path: str, port: int, check: Callable[[Any], int]
) -> dict[str, Any]:
    """Send ``requests`` over ``connections`` keep-alive connections; returns rate and latencies."""
    latencies: list[float] = []
    scored = [0]
    lock = threading.Lock()
    failures: list[str] = []

    def client(part: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        mine: list[float] = []
        ok = 0
        for body in part:
            began = time.perf_counter()
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            mine.append(time.perf_counter() - began)
            if response.status != 200:
                failures.append(f"{response.status}: {data[:200]!r}")
                continue
            ok += check(json.loads(data))
        conn.close()
        with lock:
            latencies.extend(mine)
            scored[0] += ok

    elapsed = in_threads(client, [requests[k::connections] for k in range(connections)])
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return {**summary(scored[0], elapsed, latencies), "requests": len(requests)}


def in_threads(target: Callable[[Any], None], parts: list[Any]) -> float:
    """Run ``target`` on each part in a thread of its own; returns the seconds until all end."""
    threads = [threading.Thread(target=target, args=(part,)) for part in parts]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def summary(items: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "items_per_s": round(items / elapsed),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p95_ms": round(1000 * percentile(latencies, 0.95), 2),
    }


def inprocess(scorer: RewardScorer, batches: list[list[dict[str, Any]]], connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()

    def caller(part: list[list[dict[str, Any]]]) -> None:
        mine = []
        for batch in part:
            began = time.perf_counter()
            scores = scorer.score(batch)
            mine.append(time.perf_counter() - began)
            assert scores == [1.0] * len(batch), scores
        with lock:
            latencies.extend(mine)

    elapsed = in_threads(caller, [batches[k::connections] for k in range(connections)])
    return summary(sum(len(b) for b in batches), elapsed, latencies)


def start_server(catalog: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "resyn", "serve", "--catalog", str(catalog), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on http://127.0.0.1:" not in line:
        proc.kill()
        raise SystemExit(f"resyn serve did not start: {line!r}")
    return proc, int(line.split("http://127.0.0.1:")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the items (a smoke run)")
    parser.add_argument("--env", action="append", type=Path, help="only these modules (repeatable)")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args()
    modules = args.env or DEFAULT_ENVS
    items_per_shape = 1024 if args.quick else 4096

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.duckdb"
        ids = build_catalog(catalog, {path.stem: path for path in modules})
        proc, port = start_server(catalog)
        scorer = RewardScorer.from_catalog(catalog, config=RewardConfig(workers_per_env=2))
        cases: list[dict[str, Any]] = []
        try:
            scorer.warmup()
            for path in modules:
                env_id = ids[path.stem]
                sha = scorer.environment(env_id).code_sha256
                instances, golds, _, _ = draw(path, 512)
                items = [
                    {
                        "env_id": env_id,
                        "instance_json": json.dumps(instance),
                        "completion": f"Let me work it out.\n<answer>{gold}</answer>",
                    }
                    for instance, gold in zip(instances, golds, strict=True)
                ]

                def all_ones(body: Any) -> int:
                    scores = body.get("scores", [])
                    assert scores == [1.0] * len(scores), body
                    return len(scores)

                # Warm the server's workers for this environment, then measure each shape.
                warm = json.dumps({"items": items[:64]}).encode()
                run_clients(2, [warm, warm], "/score", port, all_ones)
                for batch, connections in SHAPES:
                    count = max(batch * connections * 4, items_per_shape // (4 if batch == 1 else 1))
                    batches = [
                        [items[(k * batch + j) % len(items)] for j in range(batch)]
                        for k in range(count // batch)
                    ]
                    bodies = [json.dumps({"items": b}).encode() for b in batches]
                    http_result = run_clients(connections, bodies, "/score", port, all_ones)
                    cases.append(
                        {
                            "env": path.stem,
                            "endpoint": "/score",
                            "batch": batch,
                            "connections": connections,
                            "http": http_result,
                            "inproc": inprocess(scorer, batches, connections),
                        }
                    )
                    print(json.dumps(cases[-1]), file=sys.stderr)
                # OpenRLHF's shape: full query texts, prompts and labels.
                batch, connections = 256, 4
                rows = [items[k % len(items)] for k in range(max(items_per_shape, batch * connections * 4))]
                bodies = []
                for start in range(0, len(rows), batch):
                    chunk = rows[start : start + batch]
                    bodies.append(
                        json.dumps(
                            {
                                "query": [PROMPT + row["completion"] for row in chunk],
                                "prompts": [PROMPT] * len(chunk),
                                "labels": [
                                    label_for(env_id, sha, instance_json=row["instance_json"])
                                    for row in chunk
                                ],
                            }
                        ).encode()
                    )

                def rewards_all_ones(body: Any) -> int:
                    assert body["rewards"] == [1.0] * len(body["rewards"]), body
                    return len(body["rewards"])

                cases.append(
                    {
                        "env": path.stem,
                        "endpoint": "/get_reward",
                        "batch": batch,
                        "connections": connections,
                        "http": run_clients(connections, bodies, "/get_reward", port, rewards_all_ones),
                    }
                )
                print(json.dumps(cases[-1]), file=sys.stderr)
        finally:
            scorer.close()
            proc.terminate()
            proc.wait(60)
    load = os.getloadavg()
    result = {
        "machine": f"{platform.platform()}, {platform.machine()}, python {platform.python_version()}, "
        f"{os.cpu_count()} cpus, load average at the end {load[0]:.1f}",
        "server": "resyn serve, 2 workers per environment, subprocess on 127.0.0.1",
        "cases": cases,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

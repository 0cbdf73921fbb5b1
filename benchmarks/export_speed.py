"""Export speed: instances per second from a catalog into each format's files.

Usage: .venv/bin/python benchmarks/export_speed.py [--n-per-env N] [--formats parquet,jsonl,...]

The catalog holds the 13 fixture environments of tests/fixtures/envs/good (recorded as accepted,
as the synthesis loop records them). For each format, ``resyn.export.exporter.export`` makes an
export with a 95/5 train/test split; the figure is rows written per second of wall time, end to end
(opening the catalog, starting one sandboxed worker per environment, rendering, de-duplication,
writing data and entry point, hashing files). Rendering alone is measured separately on a warm
:class:`~resyn.export.render.Renderer`, so the cost of the format's writer is the difference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import describe  # noqa: E402

from resyn.export.exporter import ExportSettings, export  # noqa: E402
from resyn.export.render import Draw, Renderer  # noqa: E402
from resyn.reward import EnvSpec  # noqa: E402
from tests.export_helpers import GOOD, catalog_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-per-env", type=int, default=2000)
    parser.add_argument("--formats", default="parquet,jsonl,trl,verl,openrlhf")
    args = parser.parse_args()
    modules = sorted(GOOD.glob("*.py"))
    results: dict[str, object] = {
        "machine": describe(),
        "environments": len(modules),
        "n_per_env": args.n_per_env,
    }
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.duckdb"
        catalog_of(catalog, modules)
        specs = [EnvSpec.from_file(path) for path in modules]
        draws = [Draw(spec.env_id, seed, 1 + seed % 4) for spec in specs for seed in range(args.n_per_env)]
        with Renderer(specs) as renderer:
            renderer.render(draws[:: args.n_per_env])  # start the workers
            began = time.perf_counter()
            rendered = renderer.render(draws)
            render_s = time.perf_counter() - began
        assert all(item.error is None for item in rendered)
        results["render_warm_rows_per_s"] = round(len(draws) / render_s)
        for name in args.formats.split(","):
            settings = ExportSettings.build(
                format=name, out=Path(tmp) / name, n_per_env=args.n_per_env, split="train=0.95,test=0.05"
            )
            began = time.perf_counter()
            manifest = export(settings, catalog)
            seconds = time.perf_counter() - began
            rows = sum(split.rows for split in manifest.splits.values())
            size = sum(p.stat().st_size for p in (Path(tmp) / name).rglob("*") if p.is_file())
            results[name] = {
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds),
                "megabytes": round(size / 1e6, 2),
            }
            print(name, results[name], flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

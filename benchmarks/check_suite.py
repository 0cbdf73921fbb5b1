"""Wall time of the whole check suite per environment module (fixture set + examples).

Usage: .venv/bin/python benchmarks/check_suite.py [--json]
Target (issue 2): median ≤ 3 s per environment on 2 cores.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

from resyn.checks import run_checks

ROOT = Path(__file__).parents[1]
MODULES = (
    sorted((ROOT / "tests/fixtures/envs/good").glob("*.py"))
    + sorted((ROOT / "tests/fixtures/envs/bad").glob("*.py"))
    + sorted((ROOT / "resyn/examples").glob("*.py"))
)


def main() -> None:
    rows = []
    for path in MODULES:
        began = time.perf_counter()
        report = run_checks(path.read_text(), filename=path.name)
        rows.append(
            {
                "module": f"{path.parent.name}/{path.name}",
                "accepted": report.accepted,
                "seconds": round(time.perf_counter() - began, 3),
            }
        )
    seconds = [r["seconds"] for r in rows]
    summary = {
        "machine": f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}",
        "modules": len(rows),
        "median_s": round(statistics.median(seconds), 3),
        "p90_s": round(sorted(seconds)[int(0.9 * len(seconds))], 3),
        "max_s": round(max(seconds), 3),
        "rows": rows,
    }
    if "--json" in sys.argv:
        print(json.dumps(summary, indent=2))
        return
    for row in rows:
        print(f"{row['seconds']:7.2f} s  {'accepted' if row['accepted'] else 'rejected'}  {row['module']}")
    print(
        f"median {summary['median_s']} s, p90 {summary['p90_s']} s, max {summary['max_s']} s "
        f"over {len(rows)} modules"
    )


if __name__ == "__main__":
    main()

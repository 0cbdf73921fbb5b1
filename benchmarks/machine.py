"""The machine description every benchmark records beside its figures (docs/benchmarks.md): these
machines are shared, so the load at the start of a run is part of the result."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def describe(**extra: Any) -> dict[str, Any]:
    """CPU model, cores, memory, platform, Python, sandbox tier and load average, plus ``extra``."""
    from resyn.sandbox import probe

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sandbox": probe().describe(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        **extra,
    }

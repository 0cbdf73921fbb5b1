"""Copying a reward entry point into an export directory.

The entry points are real modules in :mod:`resyn.export.templates` (linted and type-checked with
the rest of resyn), copied verbatim as ``<out>/reward.py``: they locate their export directory
from ``__file__``, so the directory can be moved or copied to another machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["TEMPLATES", "write_entry_point"]

TEMPLATES = Path(__file__).parent / "templates"


def write_entry_point(out: Path, kind: str, *, name: str = "reward.py", function: str | None = None) -> str:
    """Copy ``templates/<kind>_reward.py`` to ``out/<name>``; returns ``"<name>:<function>"``
    (the function defaults to the template's ``ENTRY`` marker convention: ``score``)."""
    source = TEMPLATES / f"{kind}_reward.py"
    shutil.copyfile(source, out / name)
    return f"{name}:{function or 'score'}"

"""The export formats: one module per trainer, each a :class:`Format` in :data:`FORMATS`.

A format gets an :class:`ExportContext` — the rendered rows per split, the environments (whose
modules are already in ``<out>/envs/``) and the output directory — writes its data files and its
reward entry point there, and returns how a trainer reaches that entry point. The exporter then
hashes every file into the manifest; formats never write the manifest themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resyn.export.model import SYSTEM_PROMPT, ExportedEnv, ExportRow

__all__ = ["FORMATS", "ExportContext", "Format", "get_format"]


@dataclass(frozen=True)
class ExportContext:
    out: Path
    rows: dict[str, list[ExportRow]]
    """Rows per split name, in split order (``train`` first)."""
    environments: list[ExportedEnv]
    system_prompt: str = SYSTEM_PROMPT
    options: dict[str, Any] = field(default_factory=dict)
    """Format-specific options (``resyn export … --option key=value``)."""


@dataclass(frozen=True)
class Format:
    name: str
    summary: str
    write: Callable[[ExportContext], str | None]
    """Writes the format's files; returns the entry point (``"reward.py:reward_func"``) or None."""
    options: dict[str, str] = field(default_factory=dict)
    """Options the format understands, with what each does."""


# name -> module defining FORMAT; imported on demand so `resyn export jsonl` does not import the
# code of every trainer format.
_MODULES = {
    "jsonl": "resyn.export.formats.generic",
    "parquet": "resyn.export.formats.generic",
    "trl": "resyn.export.formats.trl",
    "verl": "resyn.export.formats.verl",
    "openrlhf": "resyn.export.formats.openrlhf",
    "verifiers": "resyn.export.formats.verifiers",
    "reasoning-gym": "resyn.export.formats.reasoning_gym",
}
FORMATS: tuple[str, ...] = tuple(_MODULES)


def get_format(name: str) -> Format:
    """The format called ``name``; ``KeyError`` for an unknown one."""
    module = importlib.import_module(_MODULES[name])
    found: Format = module.FORMATS[name] if hasattr(module, "FORMATS") else module.FORMAT
    return found

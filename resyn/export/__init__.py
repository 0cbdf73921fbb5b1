"""Exporting catalog environments into trainers: rendered instances, their environment modules, a
manifest and a reward entry point per trainer format (see :mod:`resyn.export.formats`).

>>> from resyn.export import ExportSettings, export                          # doctest: +SKIP
>>> export(ExportSettings.build(format="trl", out="exports/trl"), "runs/catalog.duckdb")

Names load on first use (PEP 562): an export's reward entry point imports
:mod:`resyn.export.runtime` inside a trainer, which must not pay for the exporter's imports
(the catalog, DuckDB).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "ExportError": "resyn.export.errors",
    "ExportManifest": "resyn.export.model",
    "ExportRow": "resyn.export.model",
    "ExportSettings": "resyn.export.exporter",
    "Mix": "resyn.export.mix",
    "MixEntry": "resyn.export.mix",
    "export": "resyn.export.exporter",
    "load_mix": "resyn.export.mix",
}

__all__ = [
    "ExportError",
    "ExportManifest",
    "ExportRow",
    "ExportSettings",
    "Mix",
    "MixEntry",
    "export",
    "load_mix",
]

if TYPE_CHECKING:
    from resyn.export.errors import ExportError
    from resyn.export.exporter import ExportSettings, export
    from resyn.export.mix import Mix, MixEntry, load_mix
    from resyn.export.model import ExportManifest, ExportRow


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resyn.export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

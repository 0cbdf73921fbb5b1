"""Sandboxed execution of untrusted environment modules.

:class:`Sandbox` is the API the rest of resyn uses; :func:`probe` tells which isolation tier this
machine offers. See :mod:`resyn.sandbox.isolation` for what each tier guarantees.
"""

from resyn.sandbox.config import SandboxConfig
from resyn.sandbox.isolation import Isolation, SandboxUnavailable, probe
from resyn.sandbox.process import WorkerFailure
from resyn.sandbox.session import ItemResult, LoadResult, Sandbox

__all__ = [
    "Isolation",
    "ItemResult",
    "LoadResult",
    "Sandbox",
    "SandboxConfig",
    "SandboxUnavailable",
    "WorkerFailure",
    "probe",
]

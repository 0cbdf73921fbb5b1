"""resyn: synthesize verifiable RL reasoning environments, check them in a sandbox, export them.

The public API. Only ``Environment`` is imported eagerly: environment modules import it inside the
sandbox worker, where start-up time matters. Everything else, ``grading`` included, is loaded on
first use (PEP 562), so ``from resyn import Environment`` pulls in neither pydantic nor sympy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from resyn.env import Environment, instance_rng

__version__ = "0.1.0"

_LAZY = {
    "CheckConfig": "resyn.checks.config",
    "CheckReport": "resyn.checks.report",
    "run_checks": "resyn.checks.runner",
    "Sandbox": "resyn.sandbox.session",
    "SandboxConfig": "resyn.sandbox.config",
    "load_source": "resyn.sources",
    "Catalog": "resyn.catalog.store",
    "SynthesisSettings": "resyn.synth.loop",
    "synthesize": "resyn.synth.run",
    "get_model": "resyn.llm.registry",
    "RewardScorer": "resyn.reward.scorer",
    "Curriculum": "resyn.curriculum",
}

__all__ = [
    "Catalog",
    "CheckConfig",
    "CheckReport",
    "Curriculum",
    "Environment",
    "RewardScorer",
    "Sandbox",
    "SandboxConfig",
    "SynthesisSettings",
    "__version__",
    "get_model",
    "grading",
    "instance_rng",
    "load_source",
    "run_checks",
    "synthesize",
]

if TYPE_CHECKING:
    from resyn import grading
    from resyn.catalog.store import Catalog
    from resyn.checks.config import CheckConfig
    from resyn.checks.report import CheckReport
    from resyn.checks.runner import run_checks
    from resyn.curriculum import Curriculum
    from resyn.llm.registry import get_model
    from resyn.reward.scorer import RewardScorer
    from resyn.sandbox.config import SandboxConfig
    from resyn.sandbox.session import Sandbox
    from resyn.sources import load_source
    from resyn.synth.loop import SynthesisSettings
    from resyn.synth.run import synthesize


def __getattr__(name: str) -> Any:
    if name == "grading":
        return importlib.import_module("resyn.grading")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resyn' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

"""The real-trainer tests need the ``trainers`` extra (torch, transformers, trl, datasets,
accelerate, verl, verifiers, reasoning-gym, hatchling): ``bash scripts/test_trainers.sh`` installs
it into ``.venv-trainers`` and runs them.

Without those packages the tests here are not collected, so the default suite stays light. With
``RESYN_REQUIRE_TRAINERS=1`` (set by the script, i.e. in their CI step) a missing package is an
error instead: that step must run them, never skip them.

Nothing here reaches the network: models and tokenizers are built from configs, and the Hugging
Face libraries run offline.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRED = (
    "torch",
    "transformers",
    "tokenizers",
    "trl",
    "datasets",
    "accelerate",
    "verl",
    "verifiers",
    "reasoning_gym",
    "hatchling",
)
MISSING = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
REQUIRE = os.environ.get("RESYN_REQUIRE_TRAINERS") == "1"

if MISSING and REQUIRE:
    raise pytest.UsageError(
        f"RESYN_REQUIRE_TRAINERS=1 but {', '.join(MISSING)} not installed: "
        "run bash scripts/test_trainers.sh (it installs the trainers extra into .venv-trainers)"
    )

collect_ignore_glob = ["test_*.py"] if MISSING else []

for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[variable] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

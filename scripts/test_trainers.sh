#!/usr/bin/env bash
# Real-trainer tests of the export formats (tests/trainers, `pytest -m trainers`): TRL's
# GRPOTrainer trains two steps on a trl export, verl loads a verl export with its own dataset and
# reward managers, verifiers installs and loads a verifiers export, reasoning-gym registers and
# scores a reasoning-gym export. Offline: tiny models and tokenizers are built from configs.
#
# The trainer stack (torch, transformers, trl, verl, verifiers, ~2 GB) goes into its own venv,
# .venv-trainers, not .venv: verl pins transformers below 5.11 and brings ray, and the main suite
# should keep testing resyn against its own dependency resolution. Run scripts/install.sh first
# (bubblewrap for the sandbox). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${RESYN_TRAINERS_VENV:-.venv-trainers}"
PYTHON="${PYTHON:-python3}"
if ! command -v bwrap >/dev/null 2>&1; then
  echo "error: bubblewrap is missing: run bash scripts/install.sh first" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  echo '*' > "$VENV/.gitignore"   # keep git (and tools that read untracked files) out of it
fi
start=$(date +%s)
# torch==2.13.0 is the CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "torch==2.13.0" -e ".[dev,reasoning-gym,trainers]"
echo "trainers extra installed in $VENV in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
export RESYN_REQUIRE_TRAINERS=1   # a missing trainer package fails the run instead of skipping it
exec "$VENV/bin/python" -m pytest -m trainers tests/trainers -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Installs everything, then lints, type-checks and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "== ruff"
.venv/bin/ruff check resyn tests benchmarks scripts
.venv/bin/ruff format --check resyn tests benchmarks scripts
echo "== mypy (strict on resyn/)"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"

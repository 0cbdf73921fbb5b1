#!/usr/bin/env bash
# Installs everything resyn needs into ./.venv, system packages included.
# Debian/Ubuntu, Python >= 3.11. Run as root (or with sudo available) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# The sandbox needs bubblewrap (namespaces), setpriv (util-linux: drop to uid 65534) and
# libseccomp2 (the seccomp filter); the test suite checks `resyn report` pages in a headless
# chromium (Debian's package). Install them when missing.
if ! command -v bwrap >/dev/null 2>&1 || ! command -v setpriv >/dev/null 2>&1 \
    || ! command -v chromium >/dev/null 2>&1 \
    || ! { ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep -q 'libseccomp\.so\.2'; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap libseccomp2 util-linux chromium >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: resyn needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,reasoning-gym]"
echo "resyn installed in .venv ($(.venv/bin/resyn --version))"

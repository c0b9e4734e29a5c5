#!/usr/bin/env bash
# Creates .venv and installs civmon into it (editable). `install.sh dev` adds the test tools.
# Versions come from constraints.txt, so a fresh install resolves what CI tested
# (scripts/update-constraints.sh upgrades them).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "civmon needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first and pinned: 2.13.0 is the CPU build on the project's machines, and an open range
# would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --constraint constraints.txt "torch==2.13.0"
extra=""
[ "${1:-}" = dev ] && extra="[dev]"
.venv/bin/python -m pip install --quiet --constraint constraints.txt -e ".${extra}"

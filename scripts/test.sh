#!/usr/bin/env bash
# Installs civmon with its test tools and runs the whole test suite (SQLite and PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
# In CI the PostgreSQL tests must run: a missing server fails them instead of skipping them.
if [ "${CI:-}" = true ]; then export CIVMON_REQUIRE_POSTGRES=1; fi
exec .venv/bin/python -m pytest -ra "$@"

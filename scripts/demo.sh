#!/usr/bin/env bash
# Installs civmon and runs it on embedded defaults (SQLite in this folder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
[ -f civmon.toml ] || cp config/civmon.example.toml civmon.toml
.venv/bin/civmon init
.venv/bin/civmon config check || true  # shows what is still missing (e.g. Reddit credentials) without stopping
.venv/bin/civmon status

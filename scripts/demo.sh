#!/usr/bin/env bash
# Installs civmon and runs the monitor on embedded defaults (SQLite in this folder, the built-in
# model): a few collect -> score -> roll-up cycles, then the dashboard. Offline, it replays the
# recorded reddit.com traffic in ../shared/data/praw-cassettes when that folder exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
recordings=../shared/data/praw-cassettes
if [ -d "$recordings" ]; then
  exec .venv/bin/civmon demo --replay "$recordings" "$@"
fi
exec .venv/bin/civmon demo "$@"

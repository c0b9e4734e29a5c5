#!/usr/bin/env bash
# Re-resolves constraints.txt, the versions every install uses (scripts/install.sh passes it to pip):
# a scratch environment gets the newest releases that pyproject.toml allows, and pip freeze records them.
# Run it to upgrade on purpose, then run scripts/test.sh and commit the new constraints.txt with its result.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PYTHON" -m venv "$scratch"
"$scratch/bin/python" -m pip install --quiet --upgrade pip
"$scratch/bin/python" -m pip install --quiet "torch==2.13.0"
"$scratch/bin/python" -m pip install --quiet ".[dev]"
{
  echo "# Every dependency's version, as scripts/install.sh installs them; scripts/update-constraints.sh"
  echo "# writes this file (\`bash scripts/update-constraints.sh\` to upgrade). torch carries no local"
  echo "# label, so 2.13.0 matches the CPU build."
  # torch's "+cpu" names one build: the public version matches it and any other 2.13.0.
  "$scratch/bin/python" -m pip freeze --exclude civmon | sed -E 's/^(torch==[^+]+)\+.*$/\1/'
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pinned packages"

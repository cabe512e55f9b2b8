#!/usr/bin/env bash
# Refreshes constraints.txt, the versions the test command installs: the
# newest releases of everything setup.py asks for (its ranges, and the test
# and notebook extras), resolved by pip-compile in a throwaway environment.
#
#   bash scripts/refresh_constraints.sh
#
# Then run the suite against the new lock (the README's test command, in a
# fresh clone or after `rm -rf .venv`) and commit constraints.txt with it.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check pip-tools
"$work/venv/bin/pip-compile" --quiet --upgrade --extra test --extra notebook --extra docs \
    --strip-extras --no-emit-index-url --no-emit-find-links \
    --output-file constraints.txt setup.py
echo "constraints.txt: $(grep -c '==' constraints.txt) pinned packages."

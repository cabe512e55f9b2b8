#!/usr/bin/env bash
# Runs the default test suite against the newest releases of everything
# (setup.py's ranges, no constraints.txt), in a throwaway virtual
# environment: what a fresh install will get once the lock is refreshed.
# Not part of the default run; the README's Tests section says when to use it.
#
#   bash scripts/test_newest.sh [pytest arguments]
#
# It prints the versions that differ from constraints.txt before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --upgrade \
    -e '.[test,notebook,docs]'
echo "Newer than constraints.txt:"
"$work/venv/bin/pip" list --format=freeze --disable-pip-version-check |
  sort > "$work/newest.txt"
grep -o '^[A-Za-z0-9_.-]*==[^ ]*' constraints.txt |
  tr 'A-Z_' 'a-z-' | sort > "$work/locked.txt"
tr 'A-Z_' 'a-z-' < "$work/newest.txt" | sort |
  comm -23 - "$work/locked.txt" | grep -v '^tf-classic-tutorials==' || echo "  (none)"
"$work/venv/bin/python" -m cifar10.kernels
"$work/venv/bin/python" -m pytest "$@"

#!/usr/bin/env bash
# Installs what uvloop's test suite needs (tests/uvloop_suite/requirements.txt)
# into the version's virtualenv, .venv/<version>, creating it the way
# scripts/dev-env.sh does if needed. Wheels only, as for the integration tests.
# Usage: scripts/uvloop-suite-deps.sh 3.12   -> prints the venv's python path last.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$1"
venv=".venv/$version"
if [ ! -x "$venv/bin/python" ]; then
    "$(scripts/python-for.sh "$version")" -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
    -r tests/uvloop_suite/requirements.txt >&2
echo "$venv/bin/python"

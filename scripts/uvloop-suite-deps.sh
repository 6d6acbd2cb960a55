#!/usr/bin/env bash
# Installs what uvloop's test suite needs (tests/uvloop_suite/requirements.txt)
# into the version's virtualenv, .venv/<version> (scripts/venv.sh creates it
# if needed). Wheels only, as for the integration tests.
# Usage: scripts/uvloop-suite-deps.sh 3.12   -> prints the venv's python path last.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$1"
python="$(scripts/venv.sh "$version")"
"$python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
    -r tests/uvloop_suite/requirements.txt >&2
echo "$python"

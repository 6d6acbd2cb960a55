#!/usr/bin/env bash
# Installs the integration tests' third-party libraries
# (tests/integration/requirements.txt) into the version's virtualenv,
# .venv/<version>, creating it the way scripts/dev-env.sh does if needed.
# Wheels only: these libraries all ship wheels for the supported Pythons, and
# a source build would need compilers/headers and minutes of CI time.
# Usage: scripts/integration-deps.sh 3.12   -> prints the venv's python path last.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$1"
venv=".venv/$version"
if [ ! -x "$venv/bin/python" ]; then
    "$(scripts/python-for.sh "$version")" -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
    pytest -r tests/integration/requirements.txt >&2
echo "$venv/bin/python"

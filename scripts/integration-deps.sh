#!/usr/bin/env bash
# Installs the integration tests' third-party libraries
# (tests/integration/requirements.txt) into the version's virtualenv,
# .venv/<version> (scripts/venv.sh creates it if needed).
# Wheels only: these libraries all ship wheels for the supported Pythons, and
# a source build would need compilers/headers and minutes of CI time.
# Usage: scripts/integration-deps.sh 3.12   -> prints the venv's python path last.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$1"
python="$(scripts/venv.sh "$version")"
"$python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
    pytest -r tests/integration/requirements.txt >&2
echo "$python"

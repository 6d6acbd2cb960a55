#!/usr/bin/env bash
# Creates (once) a virtualenv for one Python version with the build and test
# tools, builds ferroloop's wheel with that interpreter and installs it.
# Usage: scripts/dev-env.sh 3.12   -> prints the venv's python path last.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$1"
python="$(scripts/venv.sh "$version")"
"$python" -m pip install -q --disable-pip-version-check \
    "maturin>=1.5,<2" pytest ruff trustme >&2
rm -rf "dist/$version"
"$(dirname "$python")/maturin" build --release -q -i "$python" -o "dist/$version" >&2
"$python" -m pip install -q --disable-pip-version-check --force-reinstall \
    --no-deps "dist/$version"/ferroloop-*.whl >&2
echo "$python"

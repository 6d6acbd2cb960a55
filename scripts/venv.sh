#!/usr/bin/env bash
# Creates (once) the virtualenv .venv/<version> for one Python version, the
# one scripts/dev-env.sh and the *-deps.sh scripts install into.
# Usage: scripts/venv.sh 3.12   -> prints the venv's python path
# (relative to the repository root).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=".venv/$1"
if [ ! -x "$venv/bin/python" ]; then
    "$(scripts/python-for.sh "$1")" -m venv "$venv" >&2
fi
echo "$venv/bin/python"

#!/usr/bin/env bash
# Builds the extension for each given Python version and drops the .so into
# python/ferroloop/, so that `PYTHONPATH=python <that python> ...` runs this
# checkout without installing it (several worktrees can then coexist).
# Usage: scripts/inplace.sh [3.11 3.12 3.13]   (default: 3.11)
set -euo pipefail
cd "$(dirname "$0")/.."
for version in "${@:-3.11}"; do
    python="$(scripts/python-for.sh "$version")"
    out="target/inplace/$version"
    rm -rf "$out"
    maturin build --release -q -i "$python" -o "$out" >&2
    unzip -q -o -j "$out"/ferroloop-*.whl 'ferroloop/_ferroloop*.so' -d python/ferroloop
done

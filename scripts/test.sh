#!/usr/bin/env bash
# The whole test suite: lint, the Rust core's unit tests, and for every
# supported Python: the project's pytest suite (ferroloop and stock asyncio)
# and CPython's own test_asyncio against ferroloop (tests/cpython).
# Usage: scripts/test.sh [3.11 3.12 3.13]
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.11 3.12 3.13)

echo "== lint"
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
echo "== cargo test"
cargo test --quiet --lib

status=0
for version in "${versions[@]}"; do
    echo "== python $version: build"
    python=$(scripts/dev-env.sh "$version")
    if [ "$version" = "${versions[0]}" ]; then
        "$(dirname "$python")/ruff" check python tests bench examples
    fi
    echo "== python $version: pytest"
    "$python" -m pytest -q tests --ignore=tests/cpython || status=1
    echo "== python $version: CPython test_asyncio on ferroloop"
    "$python" tests/cpython/run.py -j 2 || status=1
done
exit $status

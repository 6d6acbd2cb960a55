#!/usr/bin/env bash
# The whole test suite: lint, the Rust core's unit tests, and for every
# supported Python: the project's pytest suite (ferroloop and stock asyncio),
# CPython's own test_asyncio against ferroloop (tests/cpython), and the
# integration tests (tests/integration: real libraries against real servers,
# PostgreSQL and Redis started here by scripts/services.sh), and uvloop's own
# test suite in its stock-asyncio flavour (tests/uvloop_suite; the pinned
# sdist is downloaded once into ~/.cache/ferroloop).
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

echo "== services (PostgreSQL, Redis)"
trap 'scripts/services.sh stop' EXIT
scripts/services.sh start
# A test whose server is unreachable fails instead of skipping.
export FERROLOOP_REQUIRE_SERVICES=1

status=0
for version in "${versions[@]}"; do
    echo "== python $version: build"
    python=$(scripts/dev-env.sh "$version")
    if [ "$version" = "${versions[0]}" ]; then
        "$(dirname "$python")/ruff" check python tests bench examples
    fi
    echo "== python $version: pytest"
    "$python" -m pytest -q tests --ignore=tests/cpython --ignore=tests/integration || status=1
    echo "== python $version: integration tests"
    scripts/integration-deps.sh "$version" >/dev/null
    "$python" -m pytest -q tests/integration || status=1
    echo "== python $version: CPython test_asyncio on ferroloop"
    "$python" tests/cpython/run.py -j 2 || status=1
    echo "== python $version: uvloop's test suite on ferroloop"
    scripts/uvloop-suite-deps.sh "$version" >/dev/null
    "$python" tests/uvloop_suite/run.py || status=1
done
exit $status

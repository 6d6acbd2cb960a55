#!/usr/bin/env bash
# Prints the path of the pyenv interpreter for a version like 3.12.
set -euo pipefail
version="$1"
prefix=$(pyenv prefix "$(pyenv latest "$version")" 2>/dev/null) || {
    echo "python $version is not installed under pyenv" >&2
    exit 1
}
echo "$prefix/bin/python"

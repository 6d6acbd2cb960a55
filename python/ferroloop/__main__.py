"""``python -m ferroloop script.py [args]``: run a script with ferroloop as
asyncio's event loop. With no script: the asyncio REPL (top-level
``await``), running on ferroloop."""

import os
import runpy
import sys

from ._policy import install

USAGE = "usage: python -m ferroloop [script.py [args...]]"


def main(argv):
    install()
    if not argv:
        # asyncio's own REPL creates its loop through the policy: ours.
        sys.argv = ["ferroloop"]
        runpy.run_module("asyncio", run_name="__main__", alter_sys=True)
        return 0
    if argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    script = argv[0]
    if not os.path.exists(script):
        print(f"ferroloop: can't open file {script!r}: No such file or directory", file=sys.stderr)
        return 2
    sys.argv = list(argv)
    # As `python script.py` would: the script's directory leads sys.path.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

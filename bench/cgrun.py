"""Runs a benchmark server under callgrind and counts its instructions per
request (shared by bench/echo_instructions.py and bench/http_instructions.py).

The server is `python SCRIPT --child ARGS...`, run under `valgrind
--tool=callgrind` with PYTHONHASHSEED=0 (dict probing otherwise varies from
run to run). It prints its port on the first line of stdout and serves until
its stdin is closed. `drive(port, n)` sends it n requests. The cost of one
request is the difference between a run of 2n requests and a run of n,
divided by n, so start-up and shutdown cancel out.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

import cgsplit


def add_arguments(parser, keep_example):
    """The options every driver of this runner takes; `keep_example` shows
    how --callgrind-out names its files for that driver."""
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--pause", type=float, default=0.002,
                        help="seconds the client waits before each request (default 0.002)")
    parser.add_argument("--split", action="store_true",
                        help="also split each request into the loop's own instructions and "
                             "the rest (bench/cgsplit.py)")
    parser.add_argument("--callgrind-out",
                        help=f"keep callgrind's output files, e.g. {keep_example}")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)


def count(script, child_args, drive, n, keep=None, split=False):
    """(total instructions, cgsplit.Profile or None) of one server run that
    handled n requests. `keep`: a path to keep callgrind's output at."""
    with tempfile.TemporaryDirectory() as tmp:
        out = keep or (os.path.join(tmp, "callgrind.out") if split else "/dev/null")
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             os.path.realpath(sys.executable), script, "--child", *child_args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"})
        try:
            port = int(proc.stdout.readline())
            drive(port, n)
        finally:
            proc.stdin.close()  # the server's signal to exit
            err = proc.stderr.read()
            proc.wait(timeout=600)
        found = re.search(r"Collected : (\d+)", err)
        if proc.returncode or not found:
            raise RuntimeError(f"server failed ({proc.returncode}):\n{err[-2000:]}")
        profile = cgsplit.Profile(out) if split else None
        return int(found.group(1)), profile


def per_request(script, child_args, drive, n, keep=None, split=False):
    """Instructions per request: {"total": x} plus, with `split`, the
    cgsplit classes ("loop", "shared", "root") per request."""
    keep1 = keep and keep.replace("%n", str(n))
    keep2 = keep and keep.replace("%n", str(2 * n))
    total1, profile1 = count(script, child_args, drive, n, keep1, split)
    total2, profile2 = count(script, child_args, drive, 2 * n, keep2, split)
    result = {"total": (total2 - total1) / n}
    if split:
        for cls, cost in profile2.minus(profile1).split().items():
            result[cls] = cost / n
    return result


def split_columns(result):
    """Markdown cells: total, loop's own, shared, own share, total/(total-own)."""
    total, own = result["total"], result["loop"]
    return (f"{total:,.0f} | {own:,.0f} | {result['shared']:,.0f} | {own / total:.1%} | "
            f"{total / (total - own):.2f}x")

"""Instructions per operation of each micro-benchmark, under callgrind.

    python bench/instructions.py [--only name,...] [--loops uvloop,ferroloop] [--n N]

Timings on a shared machine swing by 20% or more between runs; instruction
counts do not (callgrind counts the same for the same binary and input,
whatever else the machine does). Each benchmark of bench/micro.py runs twice
per loop under `valgrind --tool=callgrind`, with n and 2n operations; the
difference divided by n is the cost of one operation, start-up excluded.
Instructions ignore syscall and cache costs, so use this to compare changes
to the same code path, and bench/micro.py for the published ratios.
"""

import argparse
import asyncio
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import micro  # noqa: E402

# Operations per run; slow benchmarks run fewer (valgrind is ~50x slower).
DEFAULT_N = {"to_thread": 500, "call_soon_threadsafe": 5000}


def child(loop_name, bench_name, n):
    factory, _ = micro.loop_factories([loop_name])[loop_name]
    loop = factory()
    try:
        loop.run_until_complete(micro.BENCHMARKS[bench_name](n))
    finally:
        loop.close()


def count(loop_name, bench_name, n):
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         os.path.realpath(sys.executable), __file__, "--child", loop_name, bench_name, str(n)],
        capture_output=True, text=True, check=True,
    )
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(micro.BENCHMARKS))
    parser.add_argument("--loops", default="uvloop,ferroloop")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        loop_name, bench_name, n = args.child
        child(loop_name, bench_name, int(n))
        return
    loops = args.loops.split(",")
    print(f"instructions per operation ({sys.version.split()[0]}); lower is better")
    print("| benchmark | " + " | ".join(loops) + " | ratio |")
    print("|---|" + "--:|" * (len(loops) + 1))
    for bench_name in args.only.split(","):
        n = DEFAULT_N.get(bench_name, args.n)
        per_op = [(count(lp, bench_name, 2 * n) - count(lp, bench_name, n)) / n for lp in loops]
        ratio = per_op[0] / per_op[-1] if per_op[-1] else float("nan")
        cells = " | ".join(f"{x:,.0f}" for x in per_op)
        print(f"| {bench_name} | {cells} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()

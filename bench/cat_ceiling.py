"""The machine's ceiling for bench/subprocess_bench.py's `cat` transfer.

    python bench/cat_ceiling.py [--runs N] [--mib M] [--json PATH]

No event loop at all: the parent feeds `cat` from one thread and drains it
from another with plain blocking os.write/os.readv (the GIL is released in
both). Four ways of connecting the child, alternating within each round:
kernel pipes as they come (64 KiB), pipes grown to 256 KiB (what ferroloop
does to busy pipes) and to 1 MiB, and socketpairs (what uvloop does).

Two numbers per way: the MiB/s this parent reached, and the bound `cat`
itself sets: MiB divided by cat's own CPU time (user + system, from the
children's rusage). No parent, however cheap, moves data through `cat`
faster than that bound, since cat must run for that long. Medians of N
rounds after one discarded warm-up; compare with subprocess_bench.py's
numbers from the same session.
"""

import argparse
import fcntl
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
from time import perf_counter

MiB = 1024 * 1024
BLOCK = b"0123456789abcdef" * (MiB // 16)


def pump(stdin_fd, stdout_fd, mib):
    """Writes `mib` MiB to stdin_fd from a thread, reads stdout_fd until
    EOF here; returns the bytes read."""

    def feed():
        for _ in range(mib):
            view = memoryview(BLOCK)
            while view:
                view = view[os.write(stdin_fd, view) :]
        os.close(stdin_fd)

    feeder = threading.Thread(target=feed)
    feeder.start()
    buf = bytearray(MiB)
    received = 0
    while n := os.readv(stdout_fd, [buf]):
        received += n
    feeder.join()
    return received


def through_pipes(mib, pipe_size=None):
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    if pipe_size:
        for f in (proc.stdin, proc.stdout):
            fcntl.fcntl(f.fileno(), fcntl.F_SETPIPE_SZ, pipe_size)
    stdin_fd = os.dup(proc.stdin.fileno())
    proc.stdin.close()
    received = pump(stdin_fd, proc.stdout.fileno(), mib)
    proc.stdout.close()
    return received, proc.wait()


def through_socketpairs(mib):
    ours_in, child_in = socket.socketpair()
    ours_out, child_out = socket.socketpair()
    with child_in, child_out:
        proc = subprocess.Popen(["cat"], stdin=child_in, stdout=child_out)
    with ours_out:
        received = pump(ours_in.detach(), ours_out.fileno(), mib)
    return received, proc.wait()


WAYS = {
    "pipes 64 KiB": lambda mib: through_pipes(mib),
    "pipes 256 KiB": lambda mib: through_pipes(mib, 256 * 1024),
    "pipes 1 MiB": lambda mib: through_pipes(mib, MiB),
    "socketpairs": through_socketpairs,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--mib", type=int, default=256, help="MiB per measurement (default 256)")
    parser.add_argument("--json", metavar="PATH", help="write raw samples and medians here")
    args = parser.parse_args()
    rates = {way: [] for way in WAYS}
    bounds = {way: [] for way in WAYS}
    names = list(WAYS)
    for rnd in range(args.runs + 1):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for way in order:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = perf_counter()
            received, code = WAYS[way](args.mib)
            seconds = perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if received != args.mib * MiB or code != 0:
                sys.exit(f"{way}: cat moved {received} bytes, exit {code}")
            cat_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if rnd:
                rates[way].append(args.mib / seconds)
                bounds[way].append(args.mib / cat_cpu)
        print(f"  {'warm-up' if rnd == 0 else f'run {rnd}/{args.runs}'} done", file=sys.stderr)
    medians = {way: statistics.median(r) for way, r in rates.items()}
    bound_medians = {way: statistics.median(b) for way, b in bounds.items()}
    print(f"{args.mib} MiB through cat, no event loop, medians of {args.runs} rounds:\n")
    print("| connected by | MiB/s, two-thread parent | MiB/s bound set by cat's own CPU time |")
    print("|---|--:|--:|")
    for way, rate in medians.items():
        print(f"| {way} | {rate:,.0f} | {bound_medians[way]:,.0f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"command": sys.orig_argv, "python": sys.version, "mib": args.mib,
                       "samples": rates, "medians": medians,
                       "cat_bound_samples": bounds, "cat_bound_medians": bound_medians},
                      fh, indent=2)


if __name__ == "__main__":
    main()

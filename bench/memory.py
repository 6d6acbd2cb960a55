"""Memory per idle connection: how much a protocol echo server's RSS grows
while it holds N idle TCP connections, on asyncio, uvloop and ferroloop.

    python bench/memory.py [--connections 10000] [--runs 5]
                           [--loops asyncio,uvloop,ferroloop] [--quick] [--json PATH]

For each loop and round: start bench/servers/echo_protocol.py, serve and
close 100 connections (one-time allocations land in the baseline), read
the server's RSS, open N connections and echo one byte on each (so the
server has accepted every one and built its transport and protocol),
wait a second, read RSS again. bytes/connection = growth / N, median of
the rounds. Kernel socket buffers are not in RSS: this is the loop's and
the interpreter's own memory.
"""

import argparse
import json
import os
import resource
import shlex
import socket
import statistics
import sys
import time

from procstat import rss_bytes
from runinfo import LOOP_NAMES, REPO, comma_list, header, loop_versions
from serverproc import Server
from tables import num, ratio

BATCH = 500  # connections opened before echoing on them; below the listen backlog


def raise_nofile(need):
    """Raises RLIMIT_NOFILE to at least `need` (the server inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))  # root may raise the hard one
    elif soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def open_connections(port, n):
    """n connections, each having echoed one byte."""
    conns = []
    try:
        while len(conns) < n:
            batch = [socket.create_connection(("127.0.0.1", port), timeout=30)
                     for _ in range(min(BATCH, n - len(conns)))]
            conns.extend(batch)
            for sock in batch:
                sock.sendall(b"x")
            for sock in batch:
                if sock.recv(1) != b"x":
                    raise RuntimeError("server did not echo")
    except BaseException:
        close_all(conns)
        raise
    return conns


def close_all(conns):
    for sock in conns:
        sock.close()


def measure(loop, n):
    script = os.path.join(REPO, "bench", "servers", "echo_protocol.py")
    server = Server(f"protocol/{loop}", [sys.executable, script, "--loop", loop], cpu=0)
    try:
        server.wait_ready()
        close_all(open_connections(server.port, 100))
        time.sleep(0.5)  # let the server see those connections close
        before = rss_bytes(server.pid)
        conns = open_connections(server.port, n)
        try:
            time.sleep(1.0)  # anything the server does lazily, it has done by now
            after = rss_bytes(server.pid)
            if not server.alive():
                raise RuntimeError(server.failure("died"))
        finally:
            close_all(conns)
    except Exception as exc:
        raise RuntimeError(server.failure(f"failed ({type(exc).__name__}: {exc})")) from exc
    finally:
        server.stop()
    return {"rss_before": before, "rss_after": after, "bytes_per_connection": (after - before) / n}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--loops", metavar="NAMES", type=comma_list(LOOP_NAMES),
                        default=list(LOOP_NAMES), help="default asyncio,uvloop,ferroloop")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, 2,000 connections")
    parser.add_argument("--json", metavar="PATH", help="write raw samples and medians here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.connections = 1, 2000
    if args.runs < 1 or args.connections < 1:
        parser.error("--runs and --connections must be positive")
    raise_nofile(args.connections + 1000)

    command = shlex.join(sys.orig_argv)
    found = loop_versions(args.loops)
    loops = [name for name, (ok, _) in found.items() if ok]
    lines, info = header(found, command)
    print("\n".join(lines))
    print(f"{args.connections:,} idle connections to a protocol echo server, "
          f"{args.runs} round(s)\n", flush=True)

    samples = {loop: [] for loop in loops}
    errors = {}
    for rnd in range(args.runs):
        k = rnd % len(loops)
        for loop in loops[k:] + loops[:k]:  # rotated, like the other benchmarks
            if loop in errors:
                continue
            try:
                samples[loop].append(measure(loop, args.connections))
            except RuntimeError as exc:
                errors[loop] = str(exc)
        print(f"  run {rnd + 1}/{args.runs} done", file=sys.stderr, flush=True)

    med = {loop: {k: statistics.median(s[k] for s in runs) for k in runs[0]} if runs else None
           for loop, runs in samples.items()}

    def per_conn(loop):
        return med[loop]["bytes_per_connection"] if med.get(loop) else None

    print("| loop | RSS before, MiB | RSS after, MiB | bytes/connection | vs uvloop | vs asyncio |")
    print("|---|--:|--:|--:|--:|--:|")
    for loop in loops:
        m = med[loop] or {}
        mib = {k: m[k] / 2**20 if k in m else None for k in ("rss_before", "rss_after")}
        print(f"| {loop} | {num(mib['rss_before'], '.1f')} | {num(mib['rss_after'], '.1f')} "
              f"| {num(per_conn(loop), ',.0f')} | {ratio(per_conn(loop), per_conn('uvloop'))} "
              f"| {ratio(per_conn(loop), per_conn('asyncio'))} |")
    print("\n(ratios: bytes per connection relative to that loop; below 1.00x uses less memory)")
    for loop, err in errors.items():
        print(f"\n{loop} failed: {err}")

    if args.json:
        report = dict(info, runs=args.runs, connections=args.connections,
                      samples=samples, medians=med, errors=errors)
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

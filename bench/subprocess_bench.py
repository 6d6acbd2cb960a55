"""Subprocess benchmarks: asyncio vs uvloop vs ferroloop.

    python bench/subprocess_bench.py [--runs N] [--only name,...]
                                     [--loops asyncio,uvloop,ferroloop]
                                     [--mib M] [--spawns N] [--json PATH]

Pipe throughput (M MiB through `cat`, stdin to stdout, written and read at
once) and the time to spawn and reap N `/bin/true` processes. Same method
as bench/micro.py: a fresh loop per measurement, loops alternating (order
rotated each round), a discarded warm-up round, medians; only the ratios
within one run mean anything (see bench/README.md).
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import shlex
import sys
from time import perf_counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import micro  # noqa: E402  (the loop factories and argument parsing are shared)

LOOP_NAMES = micro.LOOP_NAMES
MiB = 1024 * 1024
TRUE = "/bin/true"
BLOCK = b"0123456789abcdef" * (MiB // 16)  # what the writers send, 1 MiB at a time


# --- benchmarks ----------------------------------------------------------------
# Each is a coroutine run on a fresh loop; it times its own hot part with
# perf_counter() and returns (amount, seconds): MiB moved, or processes reaped.

async def b_cat_streams(size):
    """What most users write: create_subprocess_exec, a writer task feeding
    stdin with write()+drain(), the caller reading stdout with read()."""
    total = size * MiB
    t0 = perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

    async def feed():
        for _ in range(size):
            proc.stdin.write(BLOCK)
            await proc.stdin.drain()
        proc.stdin.close()

    writer = asyncio.ensure_future(feed())
    received = 0
    while chunk := await proc.stdout.read(64 * 1024):
        received += len(chunk)
    await writer
    code = await proc.wait()
    seconds = perf_counter() - t0
    check(received == total and code == 0, f"cat moved {received} bytes, exit {code}")
    return size, seconds


class CatPump(asyncio.SubprocessProtocol):
    """Writes `size` MiB to the child's stdin as fast as flow control lets
    it (pause_writing/resume_writing) and counts what comes back."""

    def __init__(self, size, done):
        self.left = size
        self.paused = False
        self.closing = False
        self.received = 0
        self.done = done

    def connection_made(self, transport):
        self.stdin = transport.get_pipe_transport(0)
        self._fill()

    def _fill(self):
        while not self.paused and self.left:
            self.left -= 1
            self.stdin.write(BLOCK)  # may call pause_writing() right away
        if not self.left and not self.closing:
            # Closed from a callback of its own: asyncio's pipe transport
            # (used by the stock loop and ferroloop) drops the data still
            # buffered if close() comes from inside resume_writing().
            self.closing = True
            asyncio.get_running_loop().call_soon(self.stdin.close)

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self._fill()

    def pipe_data_received(self, fd, data):
        self.received += len(data)

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(self.received)


async def b_cat_protocol(size):
    """The same transfer through loop.subprocess_exec and a protocol: no
    streams, so the loop's and the pipe transports' own cost shows more."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    t0 = perf_counter()
    transport, _ = await loop.subprocess_exec(
        lambda: CatPump(size, done), "cat", stderr=asyncio.subprocess.DEVNULL)
    received = await done
    seconds = perf_counter() - t0
    code = transport.get_returncode()
    transport.close()
    check(received == size * MiB and code == 0, f"cat moved {received} bytes, exit {code}")
    return size, seconds


async def spawn_true(count):
    for _ in range(count):
        proc = await asyncio.create_subprocess_exec(TRUE)
        code = await proc.wait()
        check(code == 0, f"{TRUE} exited with {code}")


async def b_spawn_sequential(count):
    """Spawn one /bin/true, wait for it to be reaped, repeat."""
    t0 = perf_counter()
    await spawn_true(count)
    return count, perf_counter() - t0


async def b_spawn_concurrent(count, width=10):
    """The same number of processes, `width` at a time."""
    t0 = perf_counter()
    await asyncio.gather(*(spawn_true(count // width) for _ in range(width)))
    return count // width * width, perf_counter() - t0


def check(ok, message):
    if not ok:
        raise RuntimeError(message)


# name -> (coroutine function, unit, which size argument it takes)
BENCHMARKS = {
    "cat_streams": (b_cat_streams, "MiB/s", "mib"),
    "cat_protocol": (b_cat_protocol, "MiB/s", "mib"),
    "spawn_true": (b_spawn_sequential, "spawns/s", "spawns"),
    "spawn_true_x10": (b_spawn_concurrent, "spawns/s", "spawns"),
}


# --- running and reporting --------------------------------------------------------

def measure(factory, bench, size):
    """One measurement on a fresh loop; returns (amount, seconds)."""
    gc.collect()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(bench(size))


def run_all(benches, loops, runs, sizes):
    """samples[bench][loop] -> [(amount, seconds)], and errors[(bench, loop)].
    Round 0 is a warm-up and is discarded; a benchmark that fails on a loop
    is reported and not retried."""
    samples = {b: {name: [] for name in loops} for b in benches}
    errors = {}
    names = list(loops)
    for rnd in range(runs + 1):
        k = rnd % len(names)
        order = names[k:] + names[:k]  # rotate so no loop always goes first
        for b in benches:
            fn, _, size_key = BENCHMARKS[b]
            for name in order:
                if (b, name) in errors:
                    continue
                try:
                    result = measure(loops[name], fn, sizes[size_key])
                except Exception as exc:
                    errors[(b, name)] = f"{type(exc).__name__}: {exc}"
                    samples[b][name] = []
                    continue
                if rnd > 0:
                    samples[b][name].append(result)
        label = "warm-up" if rnd == 0 else f"run {rnd}/{runs}"
        print(f"  {label} done", file=sys.stderr, flush=True)
    return samples, errors


def print_table(medians, errors, sizes):
    print("| benchmark | unit | asyncio | uvloop | ferroloop "
          "| ferroloop/uvloop | ferroloop/asyncio | uvloop/asyncio |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for b, m in medians.items():
        _, unit, size_key = BENCHMARKS[b]
        a, u, f = (m.get(name) for name in LOOP_NAMES)
        ra, ru, rf = ("error" if (b, name) in errors else micro.fmt_rate(m.get(name))
                      for name in LOOP_NAMES)
        label = f"{b} ({sizes[size_key]:,} {'MiB' if size_key == 'mib' else 'processes'})"
        print(f"| {label} | {unit} | {ra} | {ru} | {rf} | {micro.fmt_ratio(f, u)} "
              f"| {micro.fmt_ratio(f, a)} | {micro.fmt_ratio(u, a)} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--only", metavar="NAMES", type=micro.comma_list(list(BENCHMARKS)),
                        default=list(BENCHMARKS),
                        help="comma-separated benchmarks (default all): " + ", ".join(BENCHMARKS))
    parser.add_argument("--loops", metavar="NAMES", type=micro.comma_list(LOOP_NAMES),
                        default=list(LOOP_NAMES),
                        help="comma-separated loops (default asyncio,uvloop,ferroloop)")
    parser.add_argument("--mib", type=int, default=256,
                        help="MiB sent through cat per measurement (default 256)")
    parser.add_argument("--spawns", type=int, default=1000,
                        help="processes spawned per measurement (default 1000)")
    parser.add_argument("--json", metavar="PATH", help="write raw samples and medians here")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.mib < 1 or args.spawns < 10:
        parser.error("--mib must be at least 1 and --spawns at least 10")
    sizes = {"mib": args.mib, "spawns": args.spawns}

    command = shlex.join(sys.orig_argv)
    found = micro.loop_factories(args.loops)
    loops = {name: fac for name, (fac, _) in found.items() if fac is not None}
    print(f"python:  {platform.python_implementation()} {sys.version.split()[0]} "
          f"on {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"command: {command}")
    for name, (fac, info) in found.items():
        print(f"{name + ':':<10} {info}" if fac else f"{name + ':':<10} skipped ({info})")
    if not loops:
        print("no loop available, nothing to run")
        return 1
    print(f"median of {args.runs} measured round(s), after 1 discarded warm-up "
          "(higher is better):\n", flush=True)

    samples, errors = run_all(args.only, loops, args.runs, sizes)
    medians = {b: {name: micro.median_rate(res) for name, res in per.items()}
               for b, per in samples.items()}
    print_table(medians, errors, sizes)
    for (b, name), err in errors.items():
        print(f"\n{b} failed on {name}: {err}")

    if args.json:
        report = {
            "python": sys.version, "platform": platform.platform(), "command": command,
            "runs": args.runs, "sizes": sizes,
            "units": {b: BENCHMARKS[b][1] for b in args.only},
            "loops": {name: {"available": fac is not None, "info": info}
                      for name, (fac, info) in found.items()},
            "samples": {b: {name: [{"amount": n, "seconds": s} for n, s in res]
                            for name, res in per.items()} for b, per in samples.items()},
            "medians": medians,
            "errors": {f"{b}/{name}": err for (b, name), err in errors.items()},
        }
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

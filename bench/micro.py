"""Micro-benchmarks of event-loop core operations: asyncio vs uvloop vs ferroloop.

    python bench/micro.py [--runs N] [--only name,...] [--loops asyncio,uvloop,ferroloop]
                          [--json PATH]

Every measurement uses a fresh loop. Rounds alternate the loops (order rotated
each round) so that machine noise hits them all alike. Each round runs in a
process of its own, after a warm-up round that is discarded: how fast a
process runs these loops depends on its memory layout (address-space
randomisation decides, for example, whether two hot attribute lookups share a
slot of the interpreter's type-attribute cache), which shifts one loop or
another by up to 40% for the life of a process; medians over processes
average that out, as pyperf's worker processes do. The table shows median
ops/s and ratios between loops. Only ratios from one run are meaningful: see
bench/README.md.
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import threading
from time import perf_counter

from runinfo import comma_list

LOOP_NAMES = ("asyncio", "uvloop", "ferroloop")


def loop_factories(names):
    """Map loop name -> (factory, version); skipped loops map to (None, reason)."""
    found = {}
    for name in names:
        try:
            if name == "asyncio":
                # The concrete stock class, not asyncio.new_event_loop(): under
                # `python -m ferroloop` the policy would hand us ferroloop instead.
                factory = asyncio.SelectorEventLoop
                if sys.platform == "win32":
                    factory = asyncio.ProactorEventLoop
                found[name] = (factory, platform.python_version())
            else:
                module = __import__(name)
                version = getattr(module, "__version__", "version unknown")
                found[name] = (module.new_event_loop, version)
        except Exception as exc:  # not installed, or a broken build: skip, don't fail
            found[name] = (None, f"{type(exc).__name__}: {exc}")
    return found


# --- benchmarks ----------------------------------------------------------------
# Each is a coroutine run on a fresh loop; it times its own hot part with
# perf_counter() (so loop creation and teardown are excluded) and returns
# (ops, seconds). Sizes aim at 0.1-0.5 s per measurement on the stock loop.

def noop():
    pass


async def nop_coro():
    pass


async def b_call_soon(n=200_000):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    t0 = perf_counter()
    for _ in range(n - 1):
        loop.call_soon(noop)
    loop.call_soon(done.set_result, None)  # callbacks run FIFO: this one is last
    await done
    return n, perf_counter() - t0


async def b_call_soon_steady(n=200_000, in_flight=1000):
    # The shape real programs have: a bounded number of callbacks queued at
    # once. (call_soon above queues all n first, so the cycle collector
    # walking n live callbacks dominates its numbers.)
    loop = asyncio.get_running_loop()
    t0 = perf_counter()
    for _ in range(n // in_flight):
        done = loop.create_future()
        for _ in range(in_flight - 1):
            loop.call_soon(noop)
        loop.call_soon(done.set_result, None)
        await done
    return n // in_flight * in_flight, perf_counter() - t0


async def b_call_later(n=100_000):
    loop = asyncio.get_running_loop()
    rng = random.Random(1234)  # same delays for every loop and every run
    delays = [rng.randrange(11) / 1000 for _ in range(n)]  # 0..10 ms
    done = loop.create_future()
    fired = 0

    def on_timer():
        nonlocal fired
        fired += 1
        if fired == n:
            done.set_result(None)

    t0 = perf_counter()
    for delay in delays:
        loop.call_later(delay, on_timer)
    await done
    return n, perf_counter() - t0


async def b_call_later_cancel(n=100_000):
    loop = asyncio.get_running_loop()
    t0 = perf_counter()
    for _ in range(n):
        loop.call_later(10.0, noop).cancel()
    # One loop iteration so a loop that purges cancelled timers lazily
    # (asyncio does) pays for that inside the measurement.
    await asyncio.sleep(0)
    return n, perf_counter() - t0


async def b_sleep0(n=100_000):
    t0 = perf_counter()
    for _ in range(n):
        await asyncio.sleep(0)
    return n, perf_counter() - t0


async def b_gather(n=50_000):
    # 50k, not 100k: the more tasks are alive at once, the more time goes to the
    # cyclic GC walking them, which hides the loop's own cost.
    t0 = perf_counter()
    await asyncio.gather(*[nop_coro() for _ in range(n)])
    return n, perf_counter() - t0


async def b_future(n=100_000):
    loop = asyncio.get_running_loop()
    t0 = perf_counter()
    for i in range(n):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, i)
        await fut
    return n, perf_counter() - t0


async def b_queue(n=50_000):
    # maxsize=1 makes every item a hand-over between the two tasks. With a
    # larger queue, get() and put() rarely suspend and we would time a deque.
    queue = asyncio.Queue(maxsize=1)

    async def producer():
        for i in range(n):
            await queue.put(i)

    async def consumer():
        for _ in range(n):
            await queue.get()

    t0 = perf_counter()
    await asyncio.gather(producer(), consumer())
    return n, perf_counter() - t0


async def b_call_soon_threadsafe(n=100_000):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    go = threading.Event()
    started, failed = [], []

    def finish():
        done.set_result(perf_counter())  # the end time is taken here, on the loop

    def submitter():
        go.wait()  # thread start-up stays outside the measurement
        started.append(perf_counter())
        try:
            for _ in range(n - 1):
                loop.call_soon_threadsafe(noop)
            loop.call_soon_threadsafe(finish)  # FIFO from one thread: runs last
        except Exception as exc:
            failed.append(exc)

    thread = threading.Thread(target=submitter)
    thread.start()
    go.set()
    # Poll instead of a bare `await done`: if call_soon_threadsafe is broken,
    # `done` never resolves and we'd hang. Polling doesn't move the end time.
    while not done.done():
        if failed:
            raise failed[0]
        await asyncio.sleep(0.01)
    thread.join()  # already done submitting; this only reaps the thread
    return n, done.result() - started[0]


async def b_to_thread(n=5_000):
    t0 = perf_counter()
    for _ in range(n):
        await asyncio.to_thread(noop)
    return n, perf_counter() - t0


BENCHMARKS = {
    "call_soon": b_call_soon,
    "call_soon_steady": b_call_soon_steady,
    "call_later": b_call_later,
    "call_later+cancel": b_call_later_cancel,
    "sleep0": b_sleep0,
    "gather": b_gather,
    "future": b_future,
    "queue": b_queue,
    "call_soon_threadsafe": b_call_soon_threadsafe,
    "to_thread": b_to_thread,
}


# --- running and reporting --------------------------------------------------------

def measure(factory, bench):
    """One measurement on a fresh loop; returns (ops, seconds)."""
    gc.collect()  # start every measurement from the same, clean heap
    # Runner also shuts down async generators and the default executor
    # (used by to_thread) and closes the loop, outside the timed part.
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(bench())


def run_round(benches, loops, shift, warmup):
    """One round (after an optional discarded warm-up round) in this
    process: returns samples[bench][loop] -> (ops, seconds) and
    errors[bench][loop] -> message.

    A benchmark that raises on one loop (say, a feature a young loop lacks)
    is reported and not retried; the other benchmarks and loops go on.
    """
    names = list(loops)
    k = shift % len(names)
    order = names[k:] + names[:k]  # rotate so no loop always goes first
    samples = {b: {} for b in benches}
    errors = {b: {} for b in benches}
    for measured in ([False] if warmup else []) + [True]:
        for b in benches:
            for name in order:
                if name in errors[b]:
                    continue
                try:
                    result = measure(loops[name], BENCHMARKS[b])
                except Exception as exc:
                    errors[b][name] = f"{type(exc).__name__}: {exc}"
                    continue
                if measured:
                    samples[b][name] = result
    return samples, errors


def run_all(benches, loops, runs):
    """Returns samples[bench][loop] -> [(ops, seconds)] and errors[(bench, loop)].

    Each round is a child process (`--child-round`) that warms up and then
    measures every benchmark on every loop once.
    """
    samples = {b: {name: [] for name in loops} for b in benches}
    errors = {}
    for rnd in range(runs):
        command = [sys.executable, os.path.abspath(__file__), "--child-round", str(rnd),
                   "--only", ",".join(benches), "--loops", ",".join(loops)]
        done = subprocess.run(command, stdout=subprocess.PIPE, check=True)
        child_samples, child_errors = json.loads(done.stdout)
        for b, per in child_samples.items():
            for name, (ops, secs) in per.items():
                samples[b][name].append((ops, secs))
        for b, per in child_errors.items():
            for name, err in per.items():
                errors[(b, name)] = err
                samples[b][name] = []
        print(f"  run {rnd + 1}/{runs} done", file=sys.stderr, flush=True)
    return samples, errors


def median_rate(results):
    return statistics.median(ops / secs for ops, secs in results) if results else None


def fmt_rate(x):
    return f"{x:,.0f}" if x else "-"


def fmt_ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def paired_ratio(samples, loop, base):
    """The median over rounds of loop/base ops/s measured in the same round.

    Why it is printed beside the ratio of the medians: a process runs the
    whole interpreter at one of two speeds (~1.6x apart; which one is
    random per process, with or without ASLR), and in ~9 processes of 10
    every loop measured in it gets the same speed. The ratio of the two
    medians then depends on how many fast processes each loop happened to
    draw; the ratio within a round mostly compares like with like.
    """
    a, b = samples.get(loop), samples.get(base)
    if not a or not b or len(a) != len(b):
        return None
    return statistics.median((oa / sa) / (ob / sb) for (oa, sa), (ob, sb) in zip(a, b))


def print_table(medians, paired, errors):
    print("| benchmark | asyncio ops/s | uvloop ops/s | ferroloop ops/s "
          "| ferroloop/uvloop | per round | ferroloop/asyncio | uvloop/asyncio |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for b, m in medians.items():
        a, u, f = (m.get(name) for name in LOOP_NAMES)
        ra, ru, rf = ("error" if (b, name) in errors else fmt_rate(m.get(name))
                      for name in LOOP_NAMES)
        per_round = f"{paired[b]:.2f}x" if paired.get(b) else "-"
        print(f"| {b} | {ra} | {ru} | {rf} | {fmt_ratio(f, u)} | {per_round} "
              f"| {fmt_ratio(f, a)} | {fmt_ratio(u, a)} |")
    print("\nper round: the median over rounds of ferroloop/uvloop within one round "
          "(one process); see paired_ratio in bench/micro.py.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--only", metavar="NAMES", type=comma_list(list(BENCHMARKS)),
                        default=list(BENCHMARKS),
                        help="comma-separated benchmarks (default all): " + ", ".join(BENCHMARKS))
    parser.add_argument("--loops", metavar="NAMES", type=comma_list(LOOP_NAMES),
                        default=list(LOOP_NAMES),
                        help="comma-separated loops (default asyncio,uvloop,ferroloop)")
    parser.add_argument("--json", metavar="PATH", help="write raw samples and medians here")
    parser.add_argument("--child-round", type=int, metavar="K", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.child_round is not None:
        # One round of run_all: warm up, measure, report on stdout as JSON.
        found = loop_factories(args.loops)
        loops = {name: fac for name, (fac, _) in found.items() if fac is not None}
        json.dump(run_round(args.only, loops, args.child_round, warmup=True), sys.stdout)
        return 0

    command = shlex.join(sys.orig_argv)
    found = loop_factories(args.loops)
    loops = {name: fac for name, (fac, _) in found.items() if fac is not None}
    print(f"python:  {platform.python_implementation()} {sys.version.split()[0]} "
          f"on {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"command: {command}")
    for name, (fac, info) in found.items():
        print(f"{name + ':':<10} {info}" if fac else f"{name + ':':<10} skipped ({info})")
    if not loops:
        print("no loop available, nothing to run")
        return 1
    print(f"median ops/s of {args.runs} measured round(s), each in a process of its own "
          "after a discarded warm-up round:\n", flush=True)

    samples, errors = run_all(args.only, loops, args.runs)
    medians = {b: {name: median_rate(res) for name, res in per.items()}
               for b, per in samples.items()}
    paired = {b: paired_ratio(per, "ferroloop", "uvloop") for b, per in samples.items()}
    print_table(medians, paired, errors)
    for (b, name), err in errors.items():
        print(f"\n{b} failed on {name}: {err}")

    if args.json:
        report = {
            "python": sys.version, "platform": platform.platform(), "command": command,
            "runs": args.runs,
            "loops": {name: {"available": fac is not None, "info": info}
                      for name, (fac, info) in found.items()},
            "samples": {b: {name: [{"ops": o, "seconds": s} for o, s in res]
                            for name, res in per.items()} for b, per in samples.items()},
            "median_ops_per_s": medians,
            "median_per_round_ferroloop_over_uvloop": paired,
            "errors": {f"{b}/{name}": err for (b, name), err in errors.items()},
        }
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

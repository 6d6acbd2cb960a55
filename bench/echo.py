"""Echo benchmarks: asyncio vs uvloop vs ferroloop servers, and a raw Rust one.

    python bench/echo.py [--runs N] [--apis protocol,streams,sock] [--sizes 1024,10240,102400]
                         [--loops asyncio,uvloop,ferroloop] [--connections 10]
                         [--duration S] [--warmup S] [--quick] [--json PATH]

Every server runs in its own process pinned to CPU 0; the native load
generator (bench/loadgen) is pinned to CPU 1 and keeps one request in flight
on each connection. All servers start once and stay up; each round measures
every (server, size) once, in an order rotated from round to round. The
tables show medians of the rounds: requests/s, and the server's CPU time per
request read from /proc/PID/stat. See bench/README.md.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys

import quiet
from procstat import Window
from runinfo import LOOP_NAMES, REPO, comma_list, header, loop_versions
from serverproc import Server, ServerError
from tables import interference_note, num, ratio, times

SERVER_CPU, CLIENT_CPU = 0, 1
APIS = ("protocol", "streams", "sock")
SIZES = (1024, 10 * 1024, 100 * 1024)
NATIVE = "rust"  # the raw Rust echo server: the ceiling
LOADGEN_DIR = os.path.join(REPO, "bench", "loadgen")

# Issue 3's targets for ferroloop, as ratios to uvloop (requests/s), and
# the most user CPU per request ferroloop may spend, relative to uvloop.
SPEED_TARGETS = {
    ("protocol", 1024): 1.05, ("protocol", 10240): 1.05, ("protocol", 102400): 1.05,
    ("streams", 1024): 1.15, ("streams", 10240): 1.15, ("streams", 102400): 1.15,
    ("sock", 1024): 1.5, ("sock", 10240): 1.5, ("sock", 102400): 1.1,
}
USER_CPU_TARGETS = {"protocol": 0.6}


class MeasureError(Exception):
    pass


def build_loadgen():
    """Builds bench/loadgen (a no-op when up to date); returns its bin directory."""
    subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path",
                    os.path.join(LOADGEN_DIR, "Cargo.toml")], check=True)
    return os.path.join(LOADGEN_DIR, "target", "release")


def start_servers(apis, loops, bindir):
    """Starts every server; returns (name -> Server, name -> error)."""
    servers, errors = {}, {}
    wanted = {NATIVE: [os.path.join(bindir, "echo-server")]}
    for api in apis:
        for loop in loops:
            script = os.path.join(REPO, "bench", "servers", f"echo_{api}.py")
            wanted[f"{api}/{loop}"] = [sys.executable, script, "--loop", loop]
    try:
        for name, argv in wanted.items():
            servers[name] = Server(name, argv, SERVER_CPU)
        for name, server in list(servers.items()):
            try:
                server.wait_ready()
            except ServerError as exc:
                errors[name] = str(exc)
                server.stop()
                del servers[name]
    except BaseException:  # leave no server behind, whatever went wrong
        for server in servers.values():
            server.stop()
        raise
    return servers, errors


def measure(server, loadgen, size, args):
    """One loadgen run against `server`; returns a sample dict."""
    if not server.alive():
        raise MeasureError(server.failure("died"))
    argv = ["taskset", "-c", str(CLIENT_CPU), loadgen, "--addr", f"127.0.0.1:{server.port}",
            "--connections", str(args.connections), "--size", str(size),
            "--warmup", str(args.warmup), "--duration", str(args.duration), "--timeout", "10"]
    # CPU time is read around the whole loadgen run (warm-up included) and
    # divided by every request completed in it. Between runs the server is
    # idle, so nothing else lands in the difference.
    window = Window(server.pid)
    proc = subprocess.run(argv, capture_output=True, text=True,
                          timeout=args.warmup + args.duration + 30)
    cpu = window.close()
    if proc.returncode != 0:
        died = "" if server.alive() else "\n" + server.failure("died")
        raise MeasureError(f"loadgen: {proc.stderr.strip()}{died}")
    result = json.loads(proc.stdout)
    n = result["total_requests"]
    gen = result["loadgen"]
    return {
        "requests_per_s": result["requests_per_s"],
        "requests": result["requests"],
        "total_requests": n,
        "user_us_per_request": cpu["server_user_s"] / n * 1e6,
        "system_us_per_request": cpu["server_system_s"] / n * 1e6,
        "latency_us": result["latency_us"],
        "loadgen_cpu_share": (gen["user_s"] + gen["system_s"]) / gen["wall_s"],
        # Below ~0.9 the server was not the bottleneck: requests/s then
        # measures round trips (wake-ups, competing processes), not CPU cost.
        "server_cpu_share": (cpu["server_user_s"] + cpu["server_system_s"]) / cpu["wall_s"],
        "others_cpus": cpu["others_cpus"],
        "steal_cpus": cpu["steal_cpus"],
    }


def run_rounds(servers, loadgen, args, errors, calm):
    """samples[name][size] -> [sample]; a failed (name, size) is not retried."""
    names = list(servers)
    samples = {name: {size: [] for size in args.sizes} for name in names}
    for rnd in range(args.runs):
        for i, size in enumerate(args.sizes):
            k = (rnd + i) % len(names)
            for name in names[k:] + names[:k]:  # rotated: no server always goes first
                key = f"{name}@{size}"
                if key in errors or name in errors:
                    continue
                try:
                    samples[name][size].append(
                        calm.run(lambda: measure(servers[name], loadgen, size, args)))
                except (MeasureError, subprocess.TimeoutExpired, ValueError) as exc:
                    errors[key] = str(exc)
        print(f"  run {rnd + 1}/{args.runs} done", file=sys.stderr, flush=True)
    return samples


def medians(samples, max_others):
    """name -> size -> {metric: median} (None if no sample), over the
    undisturbed rounds when there are any (quiet.calm_samples)."""
    out = {}
    for name, per_size in samples.items():
        out[name] = {}
        for size, runs in per_size.items():
            if not runs:
                out[name][size] = None
                continue
            used, disturbed = quiet.calm_samples(runs, max_others)
            out[name][size] = {
                metric: statistics.median(r[metric] for r in used)
                for metric in ("requests_per_s", "user_us_per_request",
                               "system_us_per_request", "loadgen_cpu_share",
                               "server_cpu_share", "others_cpus", "steal_cpus")
            }
            out[name][size]["p50_us"] = statistics.median(r["latency_us"]["p50"] for r in used)
            out[name][size]["p99_us"] = statistics.median(r["latency_us"]["p99"] for r in used)
            out[name][size]["samples_used"] = len(used)
            out[name][size]["disturbed"] = disturbed
    return out


def paired_ratios(samples, max_others):
    """(api, size) -> ferroloop/uvloop requests/s per round
    (`quiet.per_round_ratio`)."""
    return {(api, size): quiet.per_round_ratio(runs, samples.get(f"{api}/uvloop", {}).get(size),
                                               max_others)
            for name, per_size in samples.items()
            for api, _, loop in [name.partition("/")] if loop == "ferroloop"
            for size, runs in per_size.items()}


def size_label(size):
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def print_tables(med, paired, apis, sizes):
    def get(name, size, metric):
        m = med.get(name, {}).get(size)
        return m[metric] if m else None

    print("Requests/s (median) and ratios; target = issue 3's ferroloop/uvloop goal:\n")
    print("| server | size | asyncio | uvloop | ferroloop | Rust (ceiling) "
          "| ferroloop/uvloop | per round | target | ferroloop/asyncio | uvloop/asyncio |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for api in apis:
        for size in sizes:
            names = [f"{api}/{loop}" for loop in LOOP_NAMES] + [NATIVE]
            a, u, f, r = (get(n, size, "requests_per_s") for n in names)
            cells = [num(x, ",.0f") + ("†" if get(n, size, "disturbed") else "")
                     for x, n in zip((a, u, f, r), names)]
            per_round = paired.get((api, size))
            print(f"| {api} | {size_label(size)} | {' | '.join(cells)} | {ratio(f, u)} "
                  f"| {times(per_round)} "
                  f"| {times(SPEED_TARGETS.get((api, size)))} | {ratio(f, a)} | {ratio(u, a)} |")
    print("\nper round: the median over rounds of ferroloop/uvloop measured in the same "
          "round (see quiet.per_round_ratio).")

    print("\nServer CPU time per request, µs (median; user = the loop's own work, "
          "system = the kernel's):\n")
    print("| server | size | user asyncio | user uvloop | user ferroloop | user Rust "
          "| ferroloop/uvloop user | target | sys asyncio | sys uvloop | sys ferroloop "
          "| sys Rust |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for api in apis:
        for size in sizes:
            names = [f"{api}/{loop}" for loop in LOOP_NAMES] + [NATIVE]
            user = [get(n, size, "user_us_per_request") for n in names]
            system = [get(n, size, "system_us_per_request") for n in names]
            print(f"| {api} | {size_label(size)} | "
                  + " | ".join(num(x, ".1f") for x in user)
                  + f" | {ratio(user[2], user[1])} | {times(USER_CPU_TARGETS.get(api), '≤')} | "
                  + " | ".join(num(x, ".1f") for x in system) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--apis", metavar="NAMES", type=comma_list(APIS), default=list(APIS),
                        help="server kinds (default protocol,streams,sock)")
    parser.add_argument("--sizes", metavar="BYTES",
                        type=lambda t: [int(x) for x in t.split(",")], default=list(SIZES),
                        help="message sizes (default 1024,10240,102400)")
    parser.add_argument("--loops", metavar="NAMES", type=comma_list(LOOP_NAMES),
                        default=list(LOOP_NAMES), help="default asyncio,uvloop,ferroloop")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--duration", type=float, default=2.0,
                        help="measured seconds per run (default 2)")
    parser.add_argument("--warmup", type=float, default=0.5,
                        help="seconds of load before measuring (default 0.5)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, 0.5 s measured, 0.2 s warm-up")
    parser.add_argument("--json", metavar="PATH", help="write raw samples and medians here")
    quiet.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.warmup, args.patience = 1, 0.5, 0.2, 0
    if args.runs < 1 or args.connections < 1 or min(args.sizes) < 1:
        parser.error("--runs, --connections and --sizes must be positive")

    command = shlex.join(sys.orig_argv)
    found = loop_versions(args.loops)
    loops = [name for name, (ok, _) in found.items() if ok]
    lines, info = header(found, command)
    print("\n".join(lines))
    if len(os.sched_getaffinity(0)) < 2:
        print("needs 2 CPUs (server on CPU 0, load generator on CPU 1)")
        return 1
    bindir = build_loadgen()
    servers, errors = start_servers(args.apis, loops, bindir)
    count = len(servers) * len(args.sizes) * args.runs
    print(f"{args.connections} connections, one request in flight each; server on CPU "
          f"{SERVER_CPU}, loadgen on CPU {CLIENT_CPU}; {args.runs} round(s) of "
          f"{args.warmup} s warm-up + {args.duration} s measured; {count} measurements "
          f"(~{count * (args.warmup + args.duration + 0.4) / 60:.1f} min, plus up to "
          f"{args.patience:.0f} s waiting out other processes)\n", flush=True)
    try:
        calm = quiet.from_args(args)
        samples = run_rounds(servers, os.path.join(bindir, "loadgen"), args, errors, calm)
    finally:
        for server in servers.values():
            server.stop()
    med = medians(samples, args.max_others)
    paired = paired_ratios(samples, args.max_others)
    print(flush=True)
    print_tables(med, paired, args.apis, args.sizes)
    busy = [f"{n} {size_label(s)} ({m['loadgen_cpu_share']:.0%})" for n, per in med.items()
            for s, m in per.items() if m and m["loadgen_cpu_share"] > 0.8]
    if busy:
        print("\nthe load generator used over 80% of its CPU against: " + ", ".join(busy)
              + ". Those requests/s may be its limit, not the server's: compare user CPU.")
    if any(m and m["disturbed"] for per in med.values() for m in per.values()):
        print("\n" + quiet.DISTURBED_NOTE)
    print("\n" + interference_note([r for per in samples.values()
                                     for runs in per.values() for r in runs])
          + f" Noise control: {calm.summary()}.")
    for key, err in errors.items():
        print(f"\n{key} failed: {err}")

    if args.json:
        report = dict(info, runs=args.runs, connections=args.connections,
                      max_others=args.max_others, retries=args.retries, patience=args.patience,
                      duration_s=args.duration, warmup_s=args.warmup, sizes=args.sizes,
                      apis=args.apis, server_cpu=SERVER_CPU, client_cpu=CLIENT_CPU,
                      samples=samples, medians=med, errors=errors,
                      per_round_ferroloop_over_uvloop={f"{api}@{size}": r for (api, size), r
                                                       in paired.items()})
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

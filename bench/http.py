"""HTTP benchmarks: an httptools Protocol server and uvicorn, on each loop, under wrk.

    python bench/http.py [--runs N] [--servers httptools,uvicorn]
                         [--loops asyncio,uvloop,ferroloop] [--connections 10]
                         [--duration S] [--warmup S] [--quick] [--json PATH]
                         [--new-connections]

Servers are pinned to CPU 0, wrk (one thread, keep-alive) to CPU 1. With
--new-connections every request has a connection of its own (wrk sends
`Connection: close`): the cost of accepting, setting up and closing a
connection, as for clients that do not keep connections alive. Every
response is a 1 KiB plaintext body. All servers start once; each round runs
wrk against every server (warm-up, then the measured run) in an order
rotated from round to round. Tables: median requests/s and server CPU time
per request. See bench/README.md.

(This file shadows the stdlib `http` package for code run as
`python bench/http.py`; nothing here imports it.)
"""

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys

import quiet
from procstat import Window
from runinfo import LOOP_NAMES, REPO, comma_list, header, loop_versions
from serverproc import Server, ServerError, free_port
from tables import interference_note, num, ratio, times

SERVER_CPU, CLIENT_CPU = 0, 1
KINDS = ("httptools", "uvicorn")
BODY = b"x" * 1024  # what bench/servers/http_*.py answer
# uvicorn's --loop takes its own names, or "module:callable" for any loop
# factory (uvicorn >= 0.36 calls it as the loop factory itself).
UVICORN_LOOP = {"asyncio": "asyncio", "uvloop": "uvloop", "ferroloop": "ferroloop:new_event_loop"}
# Issue 3's targets, ferroloop/uvloop requests/s.
TARGETS = {"httptools": 1.1, "uvicorn": 1.4}


class MeasureError(Exception):
    pass


def server_argv(kind, loop):
    if kind == "httptools":
        return [sys.executable, os.path.join(REPO, "bench", "servers", "http_httptools.py"),
                "--loop", loop], None
    port = free_port()
    return [sys.executable, "-m", "uvicorn", "http_asgi:app",
            "--app-dir", os.path.join(REPO, "bench", "servers"),
            "--host", "127.0.0.1", "--port", str(port), "--loop", UVICORN_LOOP[loop],
            "--http", "httptools", "--ws", "none", "--lifespan", "off",
            "--no-access-log", "--log-level", "warning"], port


def check_response(port):
    """One request by hand: the server must answer 200 with the 1 KiB body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        data = b""
        while len(data.partition(b"\r\n\r\n")[2]) < len(BODY):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or body != BODY:
        raise ServerError(f"unexpected response: {data[:200]!r}")


def start_servers(kinds, loops):
    servers, errors = {}, {}
    try:
        for kind in kinds:
            for loop in loops:
                argv, port = server_argv(kind, loop)
                servers[f"{kind}/{loop}"] = Server(f"{kind}/{loop}", argv, SERVER_CPU, port=port)
        for name, server in list(servers.items()):
            try:
                server.wait_ready()
                check_response(server.port)
            except (ServerError, OSError) as exc:
                errors[name] = (str(exc) if isinstance(exc, ServerError)
                                else server.failure(str(exc)))
                server.stop()
                del servers[name]
    except BaseException:  # leave no server behind, whatever went wrong
        for server in servers.values():
            server.stop()
        raise
    return servers, errors


_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def to_us(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


def parse_wrk(out):
    """requests, requests/s, latency percentiles (µs) and errors from wrk's text."""
    requests = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not requests or not rate:
        raise MeasureError(f"unexpected wrk output:\n{out}")
    latency = {f"p{p}": to_us(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(requests.group(1)),
        "requests_per_s": float(rate.group(1)),
        "latency_us": latency,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def wrk(port, seconds, connections, new_connections=False):
    # wrk takes whole seconds. One thread: it has one core, as the server does.
    argv = ["taskset", "-c", str(CLIENT_CPU), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
            "--latency", f"http://127.0.0.1:{port}/"]
    if new_connections:
        # The server closes after answering; wrk reconnects for the next.
        argv[-1:-1] = ["-H", "Connection: close"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    if proc.returncode != 0:
        raise MeasureError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return parse_wrk(proc.stdout)


def measure(server, args):
    if not server.alive():
        raise MeasureError(server.failure("died"))
    if args.warmup:
        wrk(server.port, args.warmup, args.connections, args.new_connections)
    # Only the measured wrk run is inside the CPU-time readings.
    window = Window(server.pid)
    result = wrk(server.port, args.duration, args.connections, args.new_connections)
    cpu = window.close()
    if result["non_2xx"] or result["socket_errors"]:
        died = "" if server.alive() else "; " + server.failure("died")
        raise MeasureError(f"{result['non_2xx']} non-2xx responses, "
                           f"{result['socket_errors']} socket errors{died}")
    n = result["requests"]
    result["user_us_per_request"] = cpu["server_user_s"] / n * 1e6
    result["system_us_per_request"] = cpu["server_system_s"] / n * 1e6
    result["wrk_cpu_share"] = cpu["client_s"] / cpu["wall_s"]
    result["server_cpu_share"] = (cpu["server_user_s"] + cpu["server_system_s"]) / cpu["wall_s"]
    result["others_cpus"] = cpu["others_cpus"]
    result["steal_cpus"] = cpu["steal_cpus"]
    return result


def run_rounds(servers, args, errors, calm):
    names = list(servers)
    samples = {name: [] for name in names}
    for rnd in range(args.runs):
        k = rnd % len(names)
        for name in names[k:] + names[:k]:  # rotated: no server always goes first
            if name in errors:
                continue
            try:
                samples[name].append(calm.run(lambda: measure(servers[name], args)))
            except (MeasureError, subprocess.TimeoutExpired) as exc:
                errors[name] = str(exc)
        print(f"  run {rnd + 1}/{args.runs} done", file=sys.stderr, flush=True)
    return samples


def medians(samples, max_others):
    """name -> {metric: median} (None if no sample), over the undisturbed
    rounds when there are any (quiet.calm_samples)."""
    out = {}
    for name, runs in samples.items():
        if not runs:
            out[name] = None
            continue
        used, disturbed = quiet.calm_samples(runs, max_others)
        out[name] = {m: statistics.median(r[m] for r in used)
                     for m in ("requests_per_s", "user_us_per_request", "system_us_per_request",
                               "wrk_cpu_share", "server_cpu_share", "others_cpus")}
        for p in ("p50", "p99"):
            out[name][f"{p}_us"] = statistics.median(r["latency_us"].get(p, 0) for r in used)
        out[name]["samples_used"] = len(used)
        out[name]["disturbed"] = disturbed
    return out


def print_tables(med, paired, kinds, targets=None):
    def get(name, metric):
        return med[name][metric] if med.get(name) else None

    print("Requests/s (median) and ratios; target = issue 3's ferroloop/uvloop goal:\n")
    print("| server | asyncio | uvloop | ferroloop | ferroloop/uvloop | per round | target "
          "| ferroloop/asyncio | uvloop/asyncio |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for kind in kinds:
        names = [f"{kind}/{loop}" for loop in LOOP_NAMES]
        a, u, f = (get(n, "requests_per_s") for n in names)
        cells = [num(x, ",.0f") + ("†" if get(n, "disturbed") else "")
                 for x, n in zip((a, u, f), names)]
        per_round = paired.get(kind)
        print(f"| {kind} | {' | '.join(cells)} | {ratio(f, u)} "
              f"| {times(per_round)} "
              f"| {times((targets or {}).get(kind))} "
              f"| {ratio(f, a)} | {ratio(u, a)} |")
    print("\nper round: the median over rounds of ferroloop/uvloop measured in the same "
          "round (see quiet.per_round_ratio).")

    print("\nServer CPU time per request, µs (median), and latency (median of the runs' "
          "percentiles, µs):\n")
    print("| server | user asyncio | user uvloop | user ferroloop | sys asyncio | sys uvloop "
          "| sys ferroloop | p50 asyncio | p50 uvloop | p50 ferroloop | p99 asyncio "
          "| p99 uvloop | p99 ferroloop |")
    print("|---|" + "--:|" * 12)
    for kind in kinds:
        cells = [num(get(f"{kind}/{loop}", metric), ".1f" if "per_request" in metric else ".0f")
                 for metric in ("user_us_per_request", "system_us_per_request", "p50_us",
                                "p99_us")
                 for loop in LOOP_NAMES]
        print(f"| {kind} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--servers", metavar="NAMES", type=comma_list(KINDS),
                        default=list(KINDS), help="default httptools,uvicorn")
    parser.add_argument("--loops", metavar="NAMES", type=comma_list(LOOP_NAMES),
                        default=list(LOOP_NAMES), help="default asyncio,uvloop,ferroloop")
    parser.add_argument("--connections", type=int, default=10,
                        help="wrk connections (default 10, as in the echo benchmark)")
    parser.add_argument("--new-connections", action="store_true",
                        help="Connection: close: the server closes after each response and wrk "
                             "reconnects (accept, transport and close per request)")
    parser.add_argument("--duration", type=int, default=3,
                        help="measured seconds per run (default 3; whole seconds, wrk's unit)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds of unmeasured wrk load before each run (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, 1 s measured")
    parser.add_argument("--json", metavar="PATH", help="write raw samples and medians here")
    quiet.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.warmup, args.patience = 1, 1, 1, 0
    if args.runs < 1 or args.duration < 1 or args.warmup < 0 or args.connections < 1:
        parser.error("--runs, --duration and --connections must be positive")
    if not shutil.which("wrk"):
        print("wrk not found (Debian: apt-get install wrk)")
        return 1

    command = shlex.join(sys.orig_argv)
    found = loop_versions(args.loops)
    loops = [name for name, (ok, _) in found.items() if ok]
    lines, info = header(found, command)
    print("\n".join(lines))
    if len(os.sched_getaffinity(0)) < 2:
        print("needs 2 CPUs (server on CPU 0, wrk on CPU 1)")
        return 1
    servers, errors = start_servers(args.servers, loops)
    mode = "a new connection per request" if args.new_connections else "keep-alive"
    print(f"wrk -t1 -c{args.connections} ({mode}), 1 KiB responses; server on CPU "
          f"{SERVER_CPU}, wrk on CPU {CLIENT_CPU}; {args.runs} round(s) of {args.warmup} s "
          f"warm-up + {args.duration} s measured\n", flush=True)
    try:
        calm = quiet.from_args(args)
        samples = run_rounds(servers, args, errors, calm)
    finally:
        for server in servers.values():
            server.stop()
    med = medians(samples, args.max_others)
    print(flush=True)
    paired = {kind: quiet.per_round_ratio(samples.get(f"{kind}/ferroloop"),
                                          samples.get(f"{kind}/uvloop"), args.max_others)
              for kind in args.servers}
    # Issue 3's targets are for keep-alive connections.
    print_tables(med, paired, args.servers, None if args.new_connections else TARGETS)
    if any(m and m["disturbed"] for m in med.values()):
        print("\n" + quiet.DISTURBED_NOTE)
    print("\n" + interference_note([r for runs in samples.values() for r in runs])
          + f" Noise control: {calm.summary()}.")
    for name, err in errors.items():
        print(f"\n{name} failed: {err}")

    if args.json:
        report = dict(info, runs=args.runs, connections=args.connections,
                      new_connections=args.new_connections,
                      max_others=args.max_others, retries=args.retries, patience=args.patience,
                      duration_s=args.duration, warmup_s=args.warmup,
                      server_cpu=SERVER_CPU, client_cpu=CLIENT_CPU,
                      samples=samples, medians=med, errors=errors,
                      per_round_ferroloop_over_uvloop=paired)
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

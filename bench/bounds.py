"""How fast could ferroloop's servers be at best? The ceiling of each echo
and HTTP ratio to uvloop, from measured CPU times and the loop's own share.

    python bench/bounds.py --echo-json docs/bench-echo-....json \
                           --http-json docs/bench-http-....json [--n 1000]

Why: a server's CPU time per request is its user time (the loop's own code,
plus what every loop runs: the protocol, httptools, uvicorn, asyncio's
streams, the interpreter) and its system time (the kernel's TCP work). A
loop can only remove its own part. So when the server is the bottleneck,
no loop can beat uvloop by more than

    ceiling = (user_uvloop + sys_uvloop) / (user_ferroloop * (1 - own) + sys_ferroloop)

where `own` is the loop's own share of ferroloop's user-space instructions
per request, measured under callgrind (bench/cgrun.py --split, as
bench/echo_instructions.py and bench/http_instructions.py do). The CPU
times are the medians of a bench/echo.py or bench/http.py run (--json). The
ceiling assumes the kernel's work stays what it was; it says nothing of a
load generator that saturates first (then requests/s measure it instead).
For the echo servers the raw Rust server's requests/s over uvloop's is a
second ceiling of that kind: the load generator's.

Prints one table row per benchmark: the target, the measured ratio and the
ceilings. A target above its ceiling cannot be met by any loop here.
"""

import argparse
import functools
import importlib.util
import json
import os
import sys

import cgrun
import echo
import echo_instructions
import http_instructions


def load_http_bench():
    """bench/http.py, loaded under another name: as `http` it would hide
    the standard library's package."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http.py")
    spec = importlib.util.spec_from_file_location("http_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def server_cpu(median):
    return median["user_us_per_request"] + median["system_us_per_request"]


def ceiling(uvloop, ferroloop, own_share):
    """The ratio to uvloop if ferroloop's own user time were zero."""
    others = ferroloop["user_us_per_request"] * (1 - own_share)
    return server_cpu(uvloop) / (others + ferroloop["system_us_per_request"])


def own_share(script, child_args, drive, n):
    result = cgrun.per_request(script, child_args, drive, n, split=True)
    return result["loop"] / result["total"]


def echo_rows(medians, n, pause):
    for (api, size), target in echo.SPEED_TARGETS.items():
        uv = medians[f"{api}/uvloop"][str(size)]
        fl = medians[f"{api}/ferroloop"][str(size)]
        drive = functools.partial(echo_instructions.echo_requests, size=size, pause=pause)
        own = own_share(echo_instructions.__file__, [api, "ferroloop"], drive, n)
        rust = medians.get(echo.NATIVE, {}).get(str(size))
        loadgen = rust["requests_per_s"] / uv["requests_per_s"] if rust else None
        yield f"echo {api} {echo.size_label(size)}", target, uv, fl, own, loadgen


def http_rows(medians, n, pause):
    for kind, target in load_http_bench().TARGETS.items():
        uv, fl = medians[f"{kind}/uvloop"], medians[f"{kind}/ferroloop"]
        own = own_share(http_instructions.__file__, [kind, "ferroloop"],
                        http_instructions.make_driver(pause), n)
        yield f"HTTP {kind}", target, uv, fl, own, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--echo-json", help="a bench/echo.py --json file")
    parser.add_argument("--http-json", help="a bench/http.py --json file")
    parser.add_argument("--n", type=int, default=1000,
                        help="requests per callgrind run (default 1000)")
    parser.add_argument("--pause", type=float, default=0.002,
                        help="seconds between callgrind requests (default 0.002)")
    args = parser.parse_args()
    if not (args.echo_json or args.http_json):
        parser.error("give --echo-json, --http-json or both")
    rows = []
    if args.echo_json:
        with open(args.echo_json) as f:
            rows += echo_rows(json.load(f)["medians"], args.n, args.pause)
    if args.http_json:
        with open(args.http_json) as f:
            rows += http_rows(json.load(f)["medians"], args.n, args.pause)
    print(f"ceilings of ferroloop/uvloop requests/s ({sys.version.split()[0]}); "
          "CPU µs per request from the JSON, own share from callgrind\n")
    print("| benchmark | target | measured | CPU uvloop | CPU ferroloop | own share "
          "| ceiling: own = 0 | ceiling: load generator |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for name, target, uv, fl, own, loadgen in rows:
        measured = fl["requests_per_s"] / uv["requests_per_s"]
        print(f"| {name} | {target:.2f}x | {measured:.2f}x | {server_cpu(uv):.2f} "
              f"| {server_cpu(fl):.2f} | {own:.0%} | {ceiling(uv, fl, own):.2f}x "
              f"| {'-' if loadgen is None else f'{loadgen:.2f}x'} |", flush=True)


if __name__ == "__main__":
    main()

"""Plots bench/echo.py's JSON: requests/s and server user CPU per request.

    python bench/plot.py ECHO.json [-o docs/bench-echo-3.11.png]

One column per server kind (protocol, streams, sock_*); in each, bars per
message size for asyncio, uvloop, ferroloop and the raw Rust server. Top
row: median requests/s (higher is better). Bottom row: the server's median
user CPU µs per request (lower is better), the loop's own cost.
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.ticker import StrMethodFormatter  # noqa: E402

SERIES = (("asyncio", "#9e9e9e"), ("uvloop", "#4c72b0"), ("ferroloop", "#dd8452"),
          ("rust", "#55a868"))
METRICS = (("requests_per_s", "requests/s"), ("user_us_per_request", "server user CPU µs/request"))


def size_label(size):
    size = int(size)
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def value(medians, name, size, metric):
    m = medians.get(name, {}).get(str(size))
    return m[metric] if m else 0.0


def plot(report, out, note=""):
    apis, sizes, med = report["apis"], report["sizes"], report["medians"]
    fig, axes = plt.subplots(len(METRICS), len(apis), figsize=(4.2 * len(apis), 7),
                             squeeze=False)
    width = 0.8 / len(SERIES)
    for col, api in enumerate(apis):
        for row, (metric, label) in enumerate(METRICS):
            ax = axes[row][col]
            for i, (loop, color) in enumerate(SERIES):
                name = "rust" if loop == "rust" else f"{api}/{loop}"
                xs = [j + (i - (len(SERIES) - 1) / 2) * width for j in range(len(sizes))]
                ys = [value(med, name, size, metric) for size in sizes]
                ax.bar(xs, ys, width, color=color, label="raw Rust" if loop == "rust" else loop)
            ax.set_xticks(range(len(sizes)), [size_label(s) for s in sizes])
            ax.grid(axis="y", alpha=0.3)
            ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if row == 0 else "{x:g}"))
            if row == 0:
                ax.set_title(f"echo, {'sock_*' if api == 'sock' else api}")
            if col == 0:
                ax.set_ylabel(label)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"{report['connections']} connections, 1 request in flight each; "
                 f"Python {report['python']}, commit {report['commit']}; "
                 f"medians of {report['runs']} run(s)" + (f"\n{note}" if note else ""),
                 fontsize="medium")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="a file written by bench/echo.py --json")
    parser.add_argument("-o", "--output", default=os.path.join("docs", "bench-echo-3.11.png"))
    parser.add_argument("--note", default="", help="a second title line, e.g. what was measured")
    args = parser.parse_args()
    with open(args.json) as fh:
        plot(json.load(fh), args.output, args.note)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

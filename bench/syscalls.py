"""Syscalls per request of an echo server, counted with strace: no timing.

    python bench/syscalls.py [--api sock] [--loop ferroloop] [--requests 2000]
                             [--size 1024] [--pause-ms 0.5]

Starts bench/servers/echo_<api>.py, attaches `strace -f -c` to it once it
listens (start-up is not counted), sends --requests requests of --size bytes
on one connection, one at a time, and prints the server's syscalls per
request. The client pauses --pause-ms before each request, so that every
read of the server finds nothing and has to wait for readiness: the cost
that issue 3 is about (a wait used to be an epoll_ctl ADD and a DEL).
Syscall counts do not depend on the machine's load; which of them a run
makes can (the loop's zero-timeout polls depend on how long an iteration
takes, and strace slows the server down), so compare epoll_ctl and the
socket calls, not epoll_wait. Needs strace (and ptrace rights over the
server: root, or kernel.yama.ptrace_scope=0).
"""

import argparse
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from runinfo import REPO
from serverproc import Server


def drive(port, requests, size, pause):
    """Sends `requests` requests of `size` bytes on one connection, each
    once the previous one came back whole."""
    payload = b"x" * size
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(requests):
            time.sleep(pause)
            sock.sendall(payload)
            got = 0
            while got < size:
                chunk = sock.recv(65536)
                if not chunk:
                    raise SystemExit("the server closed the connection")
                got += len(chunk)


def attach(pid, out):
    """Starts strace on `pid`; returns once it is attached ("Process N
    attached", "... attached with M threads" for all threads at once)."""
    proc = subprocess.Popen(
        ["strace", "-f", "-c", "-o", out, "-p", str(pid)], stderr=subprocess.PIPE, text=True
    )
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    if not sel.select(10):
        proc.kill()
        raise SystemExit("strace did not attach")
    line = proc.stderr.readline()
    if "attached" not in line:
        proc.kill()
        raise SystemExit(f"strace: {line.strip()}")
    return proc


def parse(path):
    """{syscall: (calls, errors)} from an `strace -c` summary."""
    counts = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s+(\w+)$", line)
            if m and m.group(3) != "total":
                counts[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", choices=("sock", "streams", "protocol"), default="sock")
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "ferroloop"), default="ferroloop")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--pause-ms", type=float, default=0.5)
    args = parser.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace not found (apt-get install strace)")

    script = os.path.join(REPO, "bench", "servers", f"echo_{args.api}.py")
    server = Server(args.api, [sys.executable, script, "--loop", args.loop], cpu=0)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "strace.txt")
        try:
            server.wait_ready()
            tracer = attach(server.pid, out)
            drive(server.port, args.requests, args.size, args.pause_ms / 1000)
            tracer.send_signal(signal.SIGINT)  # detaches and writes the summary
            tracer.wait(timeout=10)
        finally:
            server.stop()
        counts = parse(out)

    print(
        f"echo_{args.api}.py --loop {args.loop}: {args.requests} requests of "
        f"{args.size} bytes, one connection, {args.pause_ms} ms apart"
    )
    print(f"{'syscall':<16} {'per request':>12} {'errors':>8}")
    total = 0
    for name, (calls, errors) in sorted(counts.items(), key=lambda kv: -kv[1][0]):
        total += calls
        print(f"{name:<16} {calls / args.requests:>12.2f} {errors / args.requests:>8.2f}")
    print(f"{'total':<16} {total / args.requests:>12.2f}")


if __name__ == "__main__":
    main()

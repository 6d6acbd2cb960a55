"""What the benchmark servers share: options, the loop, announcing the port.

Every server takes `--loop asyncio|uvloop|ferroloop`, listens on 127.0.0.1,
prints its port on one line of stdout once it accepts connections, and
serves until it is killed. The loop comes from its own factory, never from
the asyncio policy, so `--loop asyncio` is the stock loop even under
`python -m ferroloop`.
"""

import argparse
import asyncio

# Read size for the streams and sock_* servers (the protocol transports pick
# their own: 256 KiB on asyncio and uvloop). Under glibc's 128 KiB mmap
# threshold, so a read buffer is not an mmap/munmap pair per read.
READ_SIZE = 64 * 1024


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "ferroloop"), default="asyncio")
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    # Big enough for memory.py's bursts of connections; the kernel caps it
    # at net.core.somaxconn.
    parser.add_argument("--backlog", type=int, default=4096)
    return parser.parse_args()


def loop_factory(name):
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop
    if name == "ferroloop":
        import ferroloop
        return ferroloop.new_event_loop
    return asyncio.SelectorEventLoop


def announce(sock):
    """Prints the listening socket's port: the driver waits for this line."""
    print(sock.getsockname()[1], flush=True)


def run(main, args):
    """Runs `main(args)` on the chosen loop until the process is killed."""
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(main(args))

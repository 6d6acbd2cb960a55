"""Instructions per HTTP request of the bench/http.py servers, under callgrind.

    python bench/http_instructions.py [--servers httptools,uvicorn]
                                      [--loops ferroloop,uvloop] [--n N] [--pause S]
                                      [--split] [--callgrind-out PATTERN]
    python bench/http_instructions.py --python-calls [--servers ...] [--loops ...]
    python bench/http_instructions.py --new-connections ...

The HTTP sibling of bench/echo_instructions.py, same method (bench/cgrun.py):
the server (the httptools protocol server, or uvicorn with --http httptools
running bench/servers/http_asgi.py, in-process on the chosen loop) runs
under callgrind while a client sends n, then 2n keep-alive GET requests on
one connection, pausing before each; the difference divided by n is one
request. uvicorn's once-per-0.1 s tick runs a few more times in the longer
run (a few hundred instructions per request at the default pause).

`--split` also divides each request's instructions into the loop's own and
the part every loop pays (bench/cgsplit.py explains how), and prints
total / (total - own): how much faster a loop with zero own cost would run
the server, were requests/s proportional to user-space instructions.

`--new-connections` sends every request on a connection of its own
(`Connection: close`: the server closes it after answering), so a request
also costs an accept, a transport and a close: the workload of clients that
do not keep connections alive.

`--python-calls` runs the servers without callgrind under `sys.setprofile`
and prints the Python functions called per request (n vs 2n, as above),
with their files: any of ferroloop's own is a per-request Python frame
that could be Rust.
"""

import argparse
import asyncio
import collections
import os
import socket
import sys
import time

import cgrun

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "servers")
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
CLOSE_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


async def serve_httptools(args, stop):
    import http_httptools

    serving = asyncio.ensure_future(http_httptools.main(args))
    await asyncio.wait([stop, serving], return_when=asyncio.FIRST_COMPLETED)
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)


async def serve_uvicorn(args, stop):
    import uvicorn

    config = uvicorn.Config("http_asgi:app", http="httptools", ws="none",
                            lifespan="off", access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    # IPPROTO_TCP, as uvicorn's own sockets: asyncio sets TCP_NODELAY on
    # accepted sockets only then (else Nagle holds uvicorn's second write).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:  # listening only once started
        if serving.done():
            serving.result()  # raises what went wrong
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    print(sock.getsockname()[1], flush=True)
    await asyncio.wait([stop, serving], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving


SERVE = {"httptools": serve_httptools, "uvicorn": serve_uvicorn}


def child(kind, loop_name, profile_calls=False):
    """Runs one server until its stdin is closed; with `profile_calls`,
    prints the Python calls it made (as "count file:line function" lines)
    to stderr at exit."""
    # bench/http.py would shadow the stdlib's http package uvicorn imports.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    sys.path.insert(0, SERVERS)
    import common

    args = argparse.Namespace(loop=loop_name, port=0, backlog=16)
    calls = collections.Counter()

    def profiler(frame, event, arg):
        if event == "call":
            code = frame.f_code
            calls[f"{code.co_filename}:{code.co_firstlineno} {code.co_qualname}"] += 1

    async def main():
        loop = asyncio.get_running_loop()
        stdin_closed = loop.create_future()

        def on_stdin():  # closed: the signal to exit
            loop.remove_reader(0)
            stdin_closed.set_result(None)

        loop.add_reader(0, on_stdin)
        if profile_calls:
            sys.setprofile(profiler)
        try:
            await SERVE[kind](args, stdin_closed)
        finally:
            sys.setprofile(None)

    with asyncio.Runner(loop_factory=common.loop_factory(loop_name)) as runner:
        runner.run(main())
    for name, n in calls.items():
        print(n, name, file=sys.stderr)


def read_response(sock, buf):
    """Reads one response (head + Content-Length body); returns what is
    left over of `buf` plus what arrived."""
    while b"\r\n\r\n" not in buf:
        buf += recv(sock)
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:200]!r}")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += recv(sock)
    return rest[length:]


def recv(sock):
    data = sock.recv(65536)
    if not data:
        raise RuntimeError("server closed the connection")
    return data


def make_driver(pause, new_connections=False):
    def drive(port, n):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            left = b""
            for _ in range(n):
                time.sleep(pause)
                sock.sendall(REQUEST)
                left = read_response(sock, left)

    def drive_new_connections(port, n):
        for _ in range(n):
            time.sleep(pause)
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(CLOSE_REQUEST)
                if read_response(sock, b"") or sock.recv(1):
                    raise RuntimeError("the server did not close the connection")
    return drive_new_connections if new_connections else drive


def python_calls(kind, loop_name, n, pause, new_connections):
    """Python functions called per request: {name: calls per request}."""
    import subprocess

    def run(count):
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", kind, loop_name, "--profile-calls"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"})
        try:
            make_driver(pause, new_connections)(int(proc.stdout.readline()), count)
        finally:
            proc.stdin.close()
            err = proc.stderr.read()
            proc.wait(timeout=60)
        calls = collections.Counter()
        for line in err.splitlines():
            number, _, name = line.partition(" ")
            if number.isdigit():
                calls[name] = int(number)
        return calls

    one, two = run(n), run(2 * n)
    return {name: (two[name] - one[name]) / n for name in two if two[name] - one[name] >= n / 2}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="httptools,uvicorn")
    parser.add_argument("--loops", default="ferroloop")
    cgrun.add_arguments(parser, "/tmp/cg.%%s.%%l.%%n (%%s server, %%l loop, %%n requests)")
    parser.add_argument("--new-connections", action="store_true",
                        help="one connection per request (Connection: close)")
    parser.add_argument("--python-calls", action="store_true",
                        help="list the Python functions called per request instead")
    parser.add_argument("--profile-calls", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, profile_calls=args.profile_calls)
        return
    loops = args.loops.split(",")
    if args.python_calls:
        for kind in args.servers.split(","):
            for loop_name in loops:
                print(f"## {kind} on {loop_name}: Python calls per request")
                calls = python_calls(kind, loop_name, args.n, args.pause,
                                     args.new_connections)
                for name, per in sorted(calls.items(), key=lambda item: -item[1]):
                    print(f"{per:6.2f} {name}")
        return
    print(f"server instructions per HTTP request ({sys.version.split()[0]}, n={args.n}"
          + (", a new connection each" if args.new_connections else "") + "); lower is better")
    if args.split:
        print("| server | loop | total | loop's own | shared | own share | total/(total-own) |")
        print("|---|---|--:|--:|--:|--:|--:|")
    else:
        print("| server | " + " | ".join(loops) + " |")
        print("|---|" + "--:|" * len(loops))
    for kind in args.servers.split(","):
        cells = []
        for loop_name in loops:
            keep = args.callgrind_out and args.callgrind_out.replace("%s", kind).replace(
                "%l", loop_name)
            drive = make_driver(args.pause, args.new_connections)
            result = cgrun.per_request(__file__, [kind, loop_name], drive, args.n, keep,
                                       args.split)
            if args.split:
                print(f"| {kind} | {loop_name} | {cgrun.split_columns(result)} |", flush=True)
            cells.append(f"{result['total']:,.0f}")
        if not args.split:
            print(f"| {kind} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

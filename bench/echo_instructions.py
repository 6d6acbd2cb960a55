"""Instructions per echo request of the bench/servers echo servers, under callgrind.

    python bench/echo_instructions.py [--apis protocol,streams,sock] [--sizes 1024,102400]
                                      [--loops ferroloop] [--n N] [--pause S]
                                      [--split] [--callgrind-out PATTERN]

bench/echo.py times the servers; on a shared machine its CPU times move by
10-20% between runs. This counts the server's user-space instructions
instead, which do not depend on what else the machine does: the server runs
under `valgrind --tool=callgrind`, a client in this process sends n and then
2n requests (one connection, one request in flight, like bench/loadgen), and
the difference of the two totals divided by n is the cost of one request,
start-up and shutdown excluded. The client pauses before each request, so
the server always waits idle for it (the usual state of a request/response
server, and the same in every run: without the pause, whether the next
request is already there when the server looks varies from run to run), and
the server runs with PYTHONHASHSEED=0 (dict probing otherwise varies too).
Kernel work (syscalls, the copies the kernel does into and out of the
process) is not counted: a change that adds a syscall to save user-space
work has to be judged with that in mind. Copies weigh more here than in
time: callgrind counts each byte a `rep movsb` moves as one instruction
(glibc's memcpy uses it for large copies), so copying 100 KiB counts
~100,000 instructions.

`--split` divides each request's instructions into the loop's own and the
part every loop pays (bench/cgsplit.py) and prints total / (total - own).
The runner is bench/cgrun.py, shared with bench/http_instructions.py.
"""

import argparse
import asyncio
import functools
import os
import socket
import sys
import time

import cgrun

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "servers")
MODULES = {"protocol": "echo_protocol", "streams": "echo_streams", "sock": "echo_sock"}


def child(api, loop_name):
    """Runs one echo server until its stdin is closed."""
    sys.path.insert(0, SERVERS)
    import common

    server = __import__(MODULES[api])
    args = argparse.Namespace(loop=loop_name, port=0, backlog=16)

    async def main():
        loop = asyncio.get_running_loop()
        stdin_closed = loop.create_future()
        loop.add_reader(0, lambda: stdin_closed.done() or stdin_closed.set_result(None))
        serving = asyncio.ensure_future(server.main(args))
        await asyncio.wait([stdin_closed, serving], return_when=asyncio.FIRST_COMPLETED)
        loop.remove_reader(0)
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)

    with asyncio.Runner(loop_factory=common.loop_factory(loop_name)) as runner:
        runner.run(main())


def echo_requests(port, n, size, pause):
    """Sends n requests of `size` bytes, each `pause` seconds after the
    previous echo came back."""
    request = bytes(range(256)) * (size // 256) + bytes(size % 256)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(size)
        view = memoryview(buf)
        for _ in range(n):
            time.sleep(pause)
            sock.sendall(request)
            got = 0
            while got < size:
                k = sock.recv_into(view[got:])
                if not k:
                    raise RuntimeError("server closed the connection")
                got += k
            if buf != request:
                raise RuntimeError("echo differs from the request")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apis", default="protocol,streams,sock")
    parser.add_argument("--sizes", default="1024,102400")
    parser.add_argument("--loops", default="ferroloop")
    cgrun.add_arguments(parser, "/tmp/cg.%%a.%%s.%%l.%%n "
                                "(%%a api, %%s size, %%l loop, %%n requests)")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    loops = args.loops.split(",")
    print(f"server instructions per echo request ({sys.version.split()[0]}, "
          f"n={args.n}); lower is better")
    if args.split:
        print("| api | size | loop | total | loop's own | shared | own share | "
              "total/(total-own) |")
        print("|---|--:|---|--:|--:|--:|--:|--:|")
    else:
        print("| api | size | " + " | ".join(loops) + " |")
        print("|---|--:|" + "--:|" * len(loops))
    for api in args.apis.split(","):
        for size in map(int, args.sizes.split(",")):
            cells = []
            for loop_name in loops:
                keep = args.callgrind_out and (
                    args.callgrind_out.replace("%a", api).replace("%s", str(size))
                    .replace("%l", loop_name))
                drive = functools.partial(echo_requests, size=size, pause=args.pause)
                result = cgrun.per_request(__file__, [api, loop_name], drive, args.n, keep,
                                           args.split)
                if args.split:
                    print(f"| {api} | {size:,} | {loop_name} | {cgrun.split_columns(result)} |",
                          flush=True)
                cells.append(f"{result['total']:,.0f}")
            if not args.split:
                print(f"| {api} | {size:,} | " + " | ".join(cells) + " |", flush=True)

if __name__ == "__main__":
    main()

"""A read whose `bytes` cannot be allocated raises MemoryError, as on the
stock loop (where `socket.recv` raises it), never another exception and
never a crash.

Each scenario runs in a child interpreter whose address space is capped
(RLIMIT_AS) just above what it already uses, after every buffer the loop
keeps has been allocated by a first read. glibc is told to serve every
allocation of 64 KiB or more with its own mmap (MALLOC_MMAP_THRESHOLD_), so
the `bytes` for the second, 150 KB read needs new address space, which the
cap refuses. The first read is small, so ferroloop takes its usual path for
the second (a read into its per-thread buffer, then a copy).
"""

import os
import subprocess
import sys
import textwrap

import pytest

CHILD = """
import asyncio, resource, socket, sys

kind = sys.argv[1]
if kind == "ferroloop":
    import ferroloop
    loop = ferroloop.new_event_loop()
else:
    loop = asyncio.SelectorEventLoop()

SIZE = 150_000
WARM_UP = 1000

def address_space():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()

async def main():
    a, b = socket.socketpair()
    a.setblocking(False)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    # Warm-up: the loop's buffers exist after this, and the small read
    # makes ferroloop copy the next one out of its buffer (not read it
    # straight into a new bytes, as it does after a large read).
    b.sendall(b"w" * WARM_UP)
    assert len(await RECEIVE(a, WARM_UP)) == WARM_UP
    # The read starts waiting before the cap, and the data arrives after
    # it: between the two, little runs that could free address space (an
    # emptied allocator arena given back would make room for the bytes).
    payload = b"x" * SIZE
    task = asyncio.ensure_future(RECEIVE(a, SIZE))
    for _ in range(5):
        await asyncio.sleep(0)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (address_space() + 32 * 1024, hard))
    b.sendall(payload)
    try:
        await task
    except MemoryError:
        outcome = "MemoryError"
    except BaseException as exc:
        outcome = type(exc).__name__
    else:
        outcome = "no error"
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    a.close()
    b.close()
    print(outcome)

RECEIVES
loop.run_until_complete(main())
loop.close()
"""

RECEIVES = {
    "sock_recv": "RECEIVE = lambda s, size: loop.sock_recv(s, 200_000)",
    "protocol": """
class Reader(asyncio.Protocol):
    def __init__(self):
        self.got = bytearray()
        self.lost = loop.create_future()
    def data_received(self, data):
        self.got += data
    def connection_lost(self, exc):
        self.lost.set_result(exc)

async def RECEIVE(sock, size):
    # A fresh transport on a dup of the socket each time: the transport
    # reads what is queued and reports the error through connection_lost.
    dup = sock.dup()
    transport, proto = await loop.connect_accepted_socket(Reader, dup)
    while len(proto.got) < size:
        await asyncio.sleep(0.001)
        if proto.lost.done():
            raise proto.lost.result()
    transport.close()
    await proto.lost
    return bytes(proto.got)
""",
}


@pytest.mark.parametrize("path", sorted(RECEIVES))
def test_a_read_that_cannot_allocate_raises_memory_error(loop_kind, path):
    code = textwrap.dedent(CHILD).replace("RECEIVES", textwrap.dedent(RECEIVES[path]))
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    result = subprocess.run(
        [sys.executable, "-c", code, loop_kind],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "MemoryError", result.stderr

"""ferroloop grows a child's pipe to 256 KiB once it is seen full
(python/ferroloop/_pipes.py); the stock loop keeps the kernel's 64 KiB.

Each test runs on both loops: the data must be the same on both, and the
pipe sizes are what each loop is documented to leave (docs/differences.md).
"""

import asyncio
import fcntl
import os
from asyncio.subprocess import DEVNULL, PIPE

import pytest
from subprocess_util import run

MiB = 1024 * 1024
GROWN = 256 * 1024


def pipe_size(fd):
    return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)


def pipe_fd(transport, fd):
    return transport.get_pipe_transport(fd).get_extra_info("pipe").fileno()


class Recorder(asyncio.SubprocessProtocol):
    """Holds stdout back for a moment (so the child fills the pipe), feeds
    `data` to stdin, and records the pipe sizes while the data flows."""

    def __init__(self, data, hold):
        self.data = data
        self.hold = hold
        self.received = bytearray()
        self.sizes = {}
        self.exited = self.stdout_closed = False
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.initial = {fd: pipe_size(pipe_fd(transport, fd)) for fd in (0, 1)}
        stdout = transport.get_pipe_transport(1)
        stdout.pause_reading()
        asyncio.get_running_loop().call_later(self.hold, stdout.resume_reading)
        stdin = transport.get_pipe_transport(0)
        stdin.write(self.data)
        stdin.write_eof()

    def pipe_data_received(self, fd, data):
        self.received += data
        for child_fd in (0, 1):
            pipe = self.transport.get_pipe_transport(child_fd).get_extra_info("pipe")
            if pipe is not None and not pipe.closed:  # stdin closes first
                self.sizes[child_fd] = pipe_size(pipe.fileno())

    def pipe_connection_lost(self, fd, exc):
        if fd == 1:
            self.stdout_closed = True
            self._maybe_done()

    def process_exited(self):
        self.exited = True
        self._maybe_done()

    def _maybe_done(self):
        if self.exited and self.stdout_closed:
            self.done.set_result(None)


async def pump(data, hold=0.2):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.subprocess_exec(
        lambda: Recorder(data, hold), "cat", stderr=DEVNULL)
    await proto.done
    transport.close()
    return proto


def test_bulk_transfer_grows_both_pipes_on_ferroloop_only(loop, loop_kind):
    data = os.urandom(8 * MiB)
    proto = run(loop, pump(data))
    assert bytes(proto.received) == data
    default = proto.initial[1]
    expected = GROWN if loop_kind == "ferroloop" else default
    assert proto.sizes == {0: expected, 1: expected}


def test_grown_pipes_return_their_budget(loop, loop_kind):
    if loop_kind != "ferroloop":
        pytest.skip("the pipe budget is ferroloop's own (the stock loop never grows pipes)")
    from ferroloop import _pipes

    before = _pipes._budget._left
    proto = run(loop, pump(os.urandom(4 * MiB)))
    assert proto.sizes[1] == GROWN
    run(loop, asyncio.sleep(0.05))  # the pipe transports' connection_lost
    assert _pipes._budget._left == before


def test_no_budget_left_keeps_default_pipes(loop, loop_kind, monkeypatch):
    if loop_kind == "ferroloop":
        from ferroloop import _pipes

        monkeypatch.setattr(_pipes._budget, "_left", 0)
    data = os.urandom(4 * MiB)
    proto = run(loop, pump(data))
    assert bytes(proto.received) == data
    assert proto.sizes == proto.initial


def test_quiet_child_keeps_default_pipes(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo hello; read line; echo $line", stdin=PIPE, stdout=PIPE)
        before = pipe_size(proc.stdout._transport.get_extra_info("pipe").fileno())
        assert await proc.stdout.readline() == b"hello\n"
        proc.stdin.write(b"world\n")
        await proc.stdin.drain()
        # Before the child exits: then its stdin pipe closes.
        stdin_size = pipe_size(proc.stdin.get_extra_info("pipe").fileno())
        assert await proc.stdout.readline() == b"world\n"
        after = pipe_size(proc.stdout._transport.get_extra_info("pipe").fileno())
        await proc.wait()
        return before, after, stdin_size

    before, after, stdin_size = run(loop, main())
    assert after == before == stdin_size


def test_user_pipes_never_grow(loop):
    """A full pipe the user hands to connect_read_pipe keeps its size."""
    rfd, wfd = os.pipe()
    size = pipe_size(rfd)
    os.set_blocking(wfd, False)
    written = 0
    try:
        while True:
            written += os.write(wfd, b"x" * 65536)
    except BlockingIOError:
        pass
    os.close(wfd)

    class Reader(asyncio.Protocol):
        def __init__(self):
            self.count = 0
            self.done = loop.create_future()

        def data_received(self, data):
            self.count += len(data)

        def connection_lost(self, exc):
            self.done.set_result(self.count)

    async def main():
        pipe = open(rfd, "rb", buffering=0)
        transport, proto = await loop.connect_read_pipe(Reader, pipe)
        got = await proto.done
        return got

    rfile = os.fdopen(os.dup(rfd), "rb", buffering=0)  # to read the size after
    try:
        assert run(loop, main()) == written == size
        assert pipe_size(rfile.fileno()) == size
    finally:
        rfile.close()

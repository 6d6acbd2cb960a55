"""connect_read_pipe / connect_write_pipe."""

import asyncio
import os
import socket

import net_helpers as net
import pytest
from net_helpers import RecordingProtocol, run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


def read_exactly(f, n):
    """Blocking read of exactly n bytes from a raw file (in a thread)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


@pytest.fixture
def pipe_files():
    r, w = os.pipe()
    rf = open(r, "rb", buffering=0)
    wf = open(w, "wb", buffering=0)
    yield rf, wf
    rf.close()
    wf.close()


def test_read_pipe_callbacks(loop, pipe_files):
    rf, wf = pipe_files

    async def main():
        tr, p = await loop.connect_read_pipe(lambda: RecordingProtocol(loop), rf)
        assert p.events == ["made"]
        assert tr.get_extra_info("pipe") is rf
        wf.write(b"through the pipe")
        await p.wait_bytes(16)
        wf.close()
        await p.wait_lost()
        return p, rf.closed

    p, closed = run(loop, main())
    assert bytes(p.data) == b"through the pipe"
    assert p.events == ["made", "data", "eof", "lost"]
    assert p.exc is None
    assert closed  # the transport closed the pipe it owned


def test_read_pipe_pause_resume(loop, pipe_files):
    rf, wf = pipe_files

    async def main():
        tr, p = await loop.connect_read_pipe(lambda: RecordingProtocol(loop), rf)
        assert tr.is_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        tr.pause_reading()
        wf.write(b"held back")
        await asyncio.sleep(0.02)
        await net.spin()
        while_paused = bytes(p.data)
        tr.resume_reading()
        assert tr.is_reading()
        await p.wait_bytes(9)
        tr.close()
        assert tr.is_closing()
        assert not tr.is_reading()
        await p.wait_lost()
        return while_paused, bytes(p.data), p.events

    assert run(loop, main()) == (b"", b"held back", ["made", "data", "lost"])


def test_read_pipe_close_and_large_data(loop, pipe_files):
    rf, wf = pipe_files
    data = net.payload(300 * 1024)

    async def main():
        tr, p = await loop.connect_read_pipe(lambda: RecordingProtocol(loop), rf)
        writer = loop.run_in_executor(None, wf.write, data)
        await p.wait_bytes(len(data))
        await writer
        tr.close()
        tr.close()
        await p.wait_lost()
        return bytes(p.data), p.events

    got, events = run(loop, main())
    assert got == data
    assert events == ["made", "data", "lost"]


def test_read_pipe_rejects_regular_file(loop, tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"x")
    with open(path, "rb") as f:
        with pytest.raises(ValueError) as info:
            run(loop, loop.connect_read_pipe(asyncio.Protocol, f))
    assert str(info.value) == "Pipe transport is for pipes/sockets only."


def test_write_pipe_rejects_regular_file(loop, tmp_path):
    with open(tmp_path / "regular", "wb") as f:
        with pytest.raises(ValueError) as info:
            run(loop, loop.connect_write_pipe(asyncio.Protocol, f))
    assert str(info.value) == "Pipe transport is only for pipes, sockets and character devices"


def test_read_pipe_on_socket(loop):
    a, b = socket.socketpair()

    async def main():
        f = a.makefile("rb", buffering=0)
        tr, p = await loop.connect_read_pipe(lambda: RecordingProtocol(loop), f)
        b.sendall(b"socket as pipe")
        b.shutdown(socket.SHUT_WR)
        await p.wait_lost()
        f.close()
        return bytes(p.data), p.events

    try:
        assert run(loop, main()) == (b"socket as pipe", ["made", "data", "eof", "lost"])
    finally:
        a.close()
        b.close()


def test_write_pipe_basics(loop, pipe_files):
    rf, wf = pipe_files

    async def main():
        tr, p = await loop.connect_write_pipe(lambda: RecordingProtocol(loop), wf)
        assert p.events == ["made"]
        assert tr.get_extra_info("pipe") is wf
        assert tr.can_write_eof() is True
        assert tr.get_write_buffer_size() == 0
        assert tr.get_write_buffer_limits() == (net.DEFAULT_LOW_WATER, net.DEFAULT_HIGH_WATER)
        tr.write(b"a")
        tr.write(bytearray(b"b"))
        tr.write(memoryview(b"c"))
        tr.writelines([b"d", b"e"])
        tr.write(b"")
        tr.write_eof()
        assert tr.is_closing()
        await p.wait_lost()
        return rf.read(), p.events, wf.closed

    assert run(loop, main()) == (b"abcde", ["made", "lost"], True)


def test_write_pipe_flow_control(loop, pipe_files):
    rf, wf = pipe_files

    async def main():
        tr, p = await loop.connect_write_pipe(lambda: RecordingProtocol(loop), wf)
        tr.set_write_buffer_limits(high=4096, low=1024)
        chunk = net.payload(8192)
        written = b""
        while p.pauses == 0:
            tr.write(chunk)
            written += chunk
            assert len(written) < 64 * 1024 * 1024
        assert tr.get_write_buffer_size() > 4096
        reader = loop.run_in_executor(None, read_exactly, rf, len(written))
        await p.wait_event("resume")
        got = await reader
        tr.close()
        await p.wait_lost()
        return got == written, p.events

    assert run(loop, main()) == (True, ["made", "pause", "resume", "lost"])


def test_write_pipe_reader_closed_with_empty_buffer(loop, pipe_files):
    rf, wf = pipe_files

    async def main():
        tr, p = await loop.connect_write_pipe(lambda: RecordingProtocol(loop), wf)
        rf.close()
        await p.wait_lost()
        return p.exc, tr.is_closing()

    assert run(loop, main()) == (None, True)


def test_write_pipe_reader_closed_with_pending_data(loop, pipe_files):
    rf, wf = pipe_files

    async def main():
        tr, p = await loop.connect_write_pipe(lambda: RecordingProtocol(loop), wf)
        while tr.get_write_buffer_size() == 0:
            tr.write(net.payload(65536))
        rf.close()
        await p.wait_lost()
        return p.exc

    exc = run(loop, main())
    assert isinstance(exc, BrokenPipeError)


def test_write_pipe_writes_after_close_warn_after_threshold(loop, pipe_files, caplog):
    rf, wf = pipe_files
    caplog.set_level("WARNING", logger="asyncio")

    async def main():
        tr, p = await loop.connect_write_pipe(lambda: RecordingProtocol(loop), wf)
        tr.close()
        counts = []
        for _ in range(7):
            tr.write(b"late")
            counts.append(sum("pipe closed by peer" in r.getMessage() for r in caplog.records))
        await p.wait_lost()
        return counts, rf.read()

    counts, got = run(loop, main())
    assert counts == [0, 0, 0, 0, 0, 1, 2]
    assert got == b""


def test_write_pipe_abort_discards_buffer(loop, pipe_files):
    rf, wf = pipe_files

    async def main():
        tr, p = await loop.connect_write_pipe(lambda: RecordingProtocol(loop), wf)
        written = 0
        while tr.get_write_buffer_size() == 0:
            tr.write(net.payload(65536))
            written += 65536
        tr.abort()
        assert tr.get_write_buffer_size() == 0
        await p.wait_lost()
        os.set_blocking(rf.fileno(), False)
        got = rf.read() or b""
        return p.exc, len(got) < written

    assert run(loop, main()) == (None, True)


def test_pipe_pair_roundtrip_through_streams(loop, pipe_files):
    rf, wf = pipe_files

    async def main():
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rf)
        wtr, wproto = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, wf)
        writer = asyncio.StreamWriter(wtr, wproto, None, loop)
        data = net.payload(1024 * 1024)
        writer.write(data)
        drain = asyncio.ensure_future(writer.drain())
        got = await reader.readexactly(len(data))
        await drain
        writer.close()
        tail = await reader.read()
        return got == data, tail

    assert run(loop, main()) == (True, b"")

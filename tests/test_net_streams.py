"""The streams API on top of the loop's transports."""

import asyncio
import hashlib

import net_helpers as net
import pytest
from net_helpers import run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


async def start(loop, handler, unix_path=None, **kw):
    """Starts a stream server; returns (server, address, handler tasks)."""
    tasks = []

    async def wrapped(reader, writer):
        tasks.append(asyncio.current_task())
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()

    if unix_path:
        server = await asyncio.start_unix_server(wrapped, unix_path, **kw)
        return server, unix_path, tasks
    server = await asyncio.start_server(wrapped, "127.0.0.1", 0, **kw)
    return server, server.sockets[0].getsockname(), tasks


async def finish(server, tasks, *writers):
    for w in writers:
        w.close()
        await w.wait_closed()
    for t in list(tasks):
        await t
    server.close()
    await server.wait_closed()


LIMIT_MESSAGES = (
    "Separator is not found, and chunk exceed the limit",
    "Separator is found, but chunk is longer than limit",
)


async def echo_lines(reader, writer):
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


def test_readline_echo(loop):
    async def main():
        server, addr, tasks = await start(loop, echo_lines)
        reader, writer = await asyncio.open_connection(*addr)
        got = []
        for i in range(20):
            writer.write(b"line %d\n" % i)
            got.append(await reader.readline())
        await finish(server, tasks, writer)
        return got

    assert run(loop, main()) == [b"line %d\n" % i for i in range(20)]


def test_readexactly_and_incomplete_read(loop):
    async def handler(reader, writer):
        writer.write(b"0123456789abc")
        await writer.drain()

    async def main():
        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        first = await reader.readexactly(10)
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readexactly(5)
        await finish(server, tasks, writer)
        return first, info.value

    first, exc = run(loop, main())
    assert first == b"0123456789"
    assert exc.partial == b"abc" and exc.expected == 5
    assert str(exc) == "3 bytes read on a total of 5 expected bytes"


def test_readuntil_and_limit_overrun(loop):
    async def handler(reader, writer):
        writer.write(b"alpha||beta||" + b"x" * 300 + b"||")
        await writer.drain()

    async def main():
        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr, limit=128)
        a = await reader.readuntil(b"||")
        b = await reader.readuntil(b"||")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await reader.readuntil(b"||")
        await finish(server, tasks, writer)
        return a, b, info.value

    a, b, exc = run(loop, main())
    assert (a, b) == (b"alpha||", b"beta||")
    # Which one depends on how much had arrived when the limit was hit.
    assert str(exc) in LIMIT_MESSAGES


def test_readline_partial_at_eof_and_read_all(loop):
    async def handler(reader, writer):
        writer.write(b"complete\nno newline")
        await writer.drain()

    async def main():
        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        lines = [await reader.readline(), await reader.readline(), await reader.readline()]
        eof = reader.at_eof()
        await finish(server, tasks, writer)
        return lines, eof

    assert run(loop, main()) == ([b"complete\n", b"no newline", b""], True)


def test_readline_over_limit(loop):
    async def handler(reader, writer):
        writer.write(b"y" * 1000 + b"\nshort\n")
        await writer.drain()

    async def main():
        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr, limit=100)
        with pytest.raises(ValueError) as info:
            await reader.readline()
        await finish(server, tasks, writer)
        return str(info.value)

    assert run(loop, main()) in LIMIT_MESSAGES


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
def test_large_transfer_with_drain(loop, unix, tmp_path):
    size = 8 * 1024 * 1024
    data = net.payload(size, seed=1)

    async def handler(reader, writer):
        digest = hashlib.sha256()
        total = 0
        while chunk := await reader.read(256 * 1024):
            digest.update(chunk)
            total += len(chunk)
        writer.write(b"%d %s\n" % (total, digest.hexdigest().encode()))
        await writer.drain()

    async def main():
        path = str(tmp_path / "s.sock") if unix else None
        server, addr, tasks = await start(loop, handler, unix_path=path)
        if unix:
            reader, writer = await asyncio.open_unix_connection(path)
        else:
            reader, writer = await asyncio.open_connection(*addr)
        for i in range(0, size, 512 * 1024):
            writer.write(data[i:i + 512 * 1024])
            await writer.drain()
            assert writer.transport.get_write_buffer_size() <= net.DEFAULT_HIGH_WATER
        writer.write_eof()
        answer = await reader.readline()
        await finish(server, tasks, writer)
        return answer

    expected = b"%d %s\n" % (size, hashlib.sha256(data).hexdigest().encode())
    assert run(loop, main()) == expected


def test_server_to_client_large_transfer(loop):
    data = net.payload(6 * 1024 * 1024, seed=6)

    async def handler(reader, writer):
        writer.write(data)
        await writer.drain()
        writer.write_eof()

    async def main():
        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        got = await reader.read()
        await finish(server, tasks, writer)
        return got

    assert run(loop, main()) == data


def test_drain_blocks_while_peer_does_not_read(loop):
    async def main():
        gate = asyncio.Event()

        async def handler(reader, writer):
            await gate.wait()
            while await reader.read(1 << 20):
                pass

        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        chunk = net.payload(256 * 1024)
        blocked = None
        for _ in range(1024):
            writer.write(chunk)
            drain = asyncio.ensure_future(writer.drain())
            await net.spin(3)
            if not drain.done():
                blocked = drain
                break
            await drain
        assert blocked is not None, "drain never blocked"
        size_while_blocked = writer.transport.get_write_buffer_size()
        gate.set()
        await blocked
        writer.close()
        await writer.wait_closed()
        await finish(server, tasks)
        return size_while_blocked

    size = run(loop, main())
    assert net.DEFAULT_HIGH_WATER < size <= net.DEFAULT_HIGH_WATER + 256 * 1024


def test_writer_properties_and_close(loop):
    async def handler(reader, writer):
        await reader.read()

    async def main():
        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        info = (
            writer.get_extra_info("peername") == addr,
            writer.can_write_eof(),
            writer.is_closing(),
            isinstance(writer.get_extra_info("socket").fileno(), int),
        )
        writer.close()
        closing = writer.is_closing()
        await writer.wait_closed()
        await writer.wait_closed()  # twice is fine
        await finish(server, tasks)
        return info, closing

    assert run(loop, main()) == ((True, True, False, True), True)


def test_write_eof_then_reader_sees_eof(loop):
    async def handler(reader, writer):
        data = await reader.read()
        writer.write(b"got %d bytes" % len(data))
        await writer.drain()

    async def main():
        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"12345")
        writer.write_eof()
        answer = await reader.read()
        eof = reader.at_eof()
        await finish(server, tasks, writer)
        return answer, eof

    assert run(loop, main()) == (b"got 5 bytes", True)


def test_drain_after_peer_reset_raises(loop):
    async def main():
        accepted = asyncio.get_running_loop().create_future()

        async def handler(reader, writer):
            net.rst_on_close(writer.get_extra_info("socket"))
            writer.transport.abort()
            accepted.set_result(None)

        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        await accepted
        with pytest.raises(ConnectionError) as info:
            for _ in range(1000):
                writer.write(b"x" * 65536)
                await writer.drain()
                await asyncio.sleep(0.001)
        writer.close()
        with pytest.raises(ConnectionError):
            await writer.wait_closed()
        await finish(server, tasks)
        return info.value

    exc = run(loop, main())
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError))


def test_reader_sees_connection_reset(loop):
    async def main():
        async def handler(reader, writer):
            net.rst_on_close(writer.get_extra_info("socket"))
            writer.transport.abort()

        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        with pytest.raises(ConnectionResetError) as info:
            await reader.read(100)
        writer.close()
        with pytest.raises(ConnectionResetError):
            await writer.wait_closed()
        await finish(server, tasks)
        return info.value

    exc = run(loop, main())
    assert isinstance(exc, ConnectionResetError)


def test_open_connection_refused_same_error(loop, stock_loop, check_same_error):
    with net.refusing_port() as port:
        exc = check_same_error(
            lambda lp: run(lp, asyncio.open_connection("127.0.0.1", port)), loop, stock_loop
        )
    assert isinstance(exc, ConnectionRefusedError)


def test_start_tls_on_stream_writer(loop):
    tls = net.tls()

    async def handler(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(tls.server_ctx())
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()

    async def main():
        server, addr, tasks = await start(loop, handler)
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(tls.client_ctx(), server_hostname="localhost")
        writer.write(b"secret line\n")
        answer = await reader.readline()
        version = writer.get_extra_info("ssl_object").version()
        await finish(server, tasks, writer)
        return answer, version

    answer, version = run(loop, main())
    assert answer == b"SECRET LINE\n"
    assert version.startswith("TLS")


def test_many_stream_clients(loop):
    async def main():
        server, addr, tasks = await start(loop, echo_lines)

        async def client(i):
            reader, writer = await asyncio.open_connection(*addr)
            out = []
            for j in range(5):
                writer.write(b"%d-%d\n" % (i, j))
                out.append(await reader.readline())
            writer.close()
            await writer.wait_closed()
            return out

        results = await asyncio.gather(*(client(i) for i in range(30)))
        await finish(server, tasks)
        return results

    results = run(loop, main())
    assert results == [[b"%d-%d\n" % (i, j) for j in range(5)] for i in range(30)]


def test_stream_server_async_with_serve_forever_cancel(loop):
    async def main():
        server, addr, tasks = await start(loop, echo_lines)
        async with server:
            serving = asyncio.ensure_future(server.serve_forever())
            reader, writer = await asyncio.open_connection(*addr)
            writer.write(b"hi\n")
            line = await reader.readline()
            writer.close()
            await writer.wait_closed()
            for t in list(tasks):
                await t
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
        return line, server.is_serving()

    assert run(loop, main()) == (b"hi\n", False)

"""loop.sendfile (transports) and loop.sock_sendfile (sockets): zero-copy
path, fallback path, offsets/counts, argument errors."""

import asyncio
import io
import socket

import net_helpers as net
import pytest
from net_helpers import RecordingProtocol, run

DATA = net.payload(3 * 1024 * 1024 + 17, seed=21)


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    with open(path, "rb") as f:
        yield f


async def receive_all(srv, n):
    await srv.wait_bytes(n)
    return bytes(srv.data)


@pytest.mark.parametrize("fallback", [True, False])
def test_sendfile_plain_tcp(loop, data_file, fallback):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        sent = await loop.sendfile(cli.transport, data_file, fallback=fallback)
        got = await receive_all(srv, len(DATA))
        pos = data_file.tell()
        await net.close_all(cli, srv, server)
        return sent, got, pos

    sent, got, pos = run(loop, main())
    assert sent == len(DATA)
    assert got == DATA
    assert pos == len(DATA)


@pytest.mark.parametrize("offset, count", [(0, 1), (1000, 5000), (len(DATA) - 10, None),
                                           (len(DATA) - 10, 1000), (123, None)])
def test_sendfile_offset_and_count(loop, data_file, offset, count):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        sent = await loop.sendfile(cli.transport, data_file, offset, count)
        expected = DATA[offset: None if count is None else offset + count]
        got = await receive_all(srv, len(expected))
        pos = data_file.tell()
        await net.close_all(cli, srv, server)
        return sent, got, pos, expected

    sent, got, pos, expected = run(loop, main())
    assert sent == len(expected)
    assert got == expected
    assert pos == offset + sent


def test_sendfile_empty_file(loop, tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")

    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        with open(path, "rb") as f:
            sent = await loop.sendfile(cli.transport, f)
        cli.transport.write(b"after")
        got = await receive_all(srv, 5)
        await net.close_all(cli, srv, server)
        return sent, got

    assert run(loop, main()) == (0, b"after")


def test_sendfile_interleaves_with_writes_in_order(loop, data_file):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.write(b"HEAD")
        sent = await loop.sendfile(cli.transport, data_file, 0, 100000)
        cli.transport.write(b"TAIL")
        got = await receive_all(srv, 100008)
        await net.close_all(cli, srv, server)
        return sent, got

    sent, got = run(loop, main())
    assert sent == 100000
    assert got == b"HEAD" + DATA[:100000] + b"TAIL"


def test_sendfile_with_slow_reader(loop, data_file):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        send = asyncio.ensure_future(loop.sendfile(cli.transport, data_file))
        await asyncio.sleep(0.01)
        srv.transport.resume_reading()
        sent = await send
        got = await receive_all(srv, len(DATA))
        await net.close_all(cli, srv, server)
        return sent, got

    sent, got = run(loop, main())
    assert sent == len(DATA) and got == DATA


def test_write_during_sendfile_rejected(loop, data_file):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        send = asyncio.ensure_future(loop.sendfile(cli.transport, data_file))
        await net.spin(3)
        assert not send.done()  # blocked: the peer does not read
        with pytest.raises(RuntimeError) as w:
            cli.transport.write(b"x")
        srv.transport.resume_reading()
        sent = await send
        got = await receive_all(srv, len(DATA))
        await net.close_all(cli, srv, server)
        return str(w.value), sent, got

    msg, sent, got = run(loop, main())
    assert msg == "unable to write; sendfile is in progress"
    assert sent == len(DATA) and got == DATA


def test_sendfile_non_regular_file_falls_back(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        sent = await loop.sendfile(cli.transport, io.BytesIO(DATA[:300000]))
        got = await receive_all(srv, 300000)
        with pytest.raises(asyncio.SendfileNotAvailableError) as info:
            await loop.sendfile(cli.transport, io.BytesIO(b"abc"), fallback=False)
        await net.close_all(cli, srv, server)
        return sent, got, str(info.value), type(info.value)

    sent, got, msg, exc_type = run(loop, main())
    assert sent == 300000 and got == DATA[:300000]
    # The native path (tried first on socket transports) refuses the file.
    assert exc_type is asyncio.SendfileNotAvailableError
    assert msg == "not a regular file"


def test_sendfile_over_tls_uses_fallback(loop, data_file):
    tls = net.tls()

    async def main():
        served = await net.recording_server(loop, ssl=tls.server_ctx())
        _, cli = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port,
            ssl=tls.client_ctx(), server_hostname="localhost",
        )
        srv = await served.first()
        with pytest.raises(RuntimeError) as info:
            await loop.sendfile(cli.transport, data_file, fallback=False)
        sent = await loop.sendfile(cli.transport, data_file, 0, 1000000)
        got = await receive_all(srv, 1000000)
        await net.close_all(cli, served)
        return str(info.value), sent, got

    msg, sent, got = run(loop, main())
    assert msg == (
        "fallback is disabled and native sendfile is not supported for transport "
        + msg.split("for transport ", 1)[1]
    )
    assert sent == 1000000 and got == DATA[:1000000]


def test_sendfile_on_unix_socket(loop, data_file, tmp_path):
    path = str(tmp_path / "sf.sock")

    async def main():
        served = await net.recording_server(loop, path, unix=True)
        _, cli = await loop.create_unix_connection(lambda: RecordingProtocol(loop), path)
        srv = await served.first()
        sent = await loop.sendfile(cli.transport, data_file, fallback=False)
        got = await receive_all(srv, len(DATA))
        await net.close_all(cli, served)
        return sent, got

    sent, got = run(loop, main())
    assert sent == len(DATA) and got == DATA


def test_sendfile_on_closing_transport(loop, data_file):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.close()
        with pytest.raises(RuntimeError) as info:
            await loop.sendfile(cli.transport, data_file)
        await net.close_all(cli, srv, server)
        return str(info.value)

    assert run(loop, main()) == "Transport is closing"


def test_sendfile_on_datagram_transport(loop, data_file):
    async def main():
        tr, p = await loop.create_datagram_endpoint(
            lambda: net.RecordingDatagramProtocol(loop), local_addr=("127.0.0.1", 0)
        )
        with pytest.raises(RuntimeError) as info:
            await loop.sendfile(tr, data_file)
        tr.close()
        await p.wait_lost()
        return str(info.value)

    assert run(loop, main()).startswith("sendfile is not supported for transport ")


@pytest.mark.parametrize(
    "kwargs, exc_type, message",
    [
        ({"count": 0}, ValueError, "count must be a positive integer (got 0)"),
        ({"count": -1}, ValueError, "count must be a positive integer (got -1)"),
        ({"count": 1.5}, TypeError, "count must be a positive integer (got 1.5)"),
        ({"offset": -1}, ValueError, "offset must be a non-negative integer (got -1)"),
        ({"offset": "0"}, TypeError, "offset must be a non-negative integer (got '0')"),
    ],
)
def test_sock_sendfile_parameter_errors(loop, data_file, kwargs, exc_type, message):
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        with pytest.raises(exc_type) as info:
            run(loop, loop.sock_sendfile(a, data_file, **kwargs))
    finally:
        a.close()
        b.close()
    assert str(info.value) == message


def test_sock_sendfile_text_file_and_datagram_socket(loop, tmp_path, data_file):
    text = tmp_path / "t.txt"
    text.write_text("hello")
    a, b = socket.socketpair()
    a.setblocking(False)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setblocking(False)
    try:
        with open(text) as tf:
            with pytest.raises(ValueError) as t_info:
                run(loop, loop.sock_sendfile(a, tf))
        with pytest.raises(ValueError) as d_info:
            run(loop, loop.sock_sendfile(u, data_file))
    finally:
        for s in (a, b, u):
            s.close()
    assert str(t_info.value) == "file should be opened in binary mode"
    assert str(d_info.value) == "only SOCK_STREAM type sockets are supported"


@pytest.mark.parametrize("fallback", [True, False])
def test_sock_sendfile_native(loop, data_file, fallback):
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)

        async def read_all():
            got = bytearray()
            while chunk := await loop.sock_recv(b, 1 << 20):
                got += chunk
            return bytes(got)

        reader = asyncio.ensure_future(read_all())
        sent = await loop.sock_sendfile(a, data_file, 10, None, fallback=fallback)
        pos = data_file.tell()
        a.shutdown(socket.SHUT_WR)
        got = await reader
        a.close()
        b.close()
        return sent, got, pos

    sent, got, pos = run(loop, main())
    assert sent == len(DATA) - 10
    assert got == DATA[10:]
    assert pos == len(DATA)


def test_sock_sendfile_fallback_for_non_regular_file(loop):
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(a, io.BytesIO(b"xyz"), fallback=False)
        sent = await loop.sock_sendfile(a, io.BytesIO(b"via fallback"), 4, 4)
        got = await loop.sock_recv(b, 100)
        a.close()
        b.close()
        return sent, got

    assert run(loop, main()) == (4, b"fall")

"""The loop's low-level socket coroutines: sock_recv, sock_sendall, ...

Cancellation must neither lose nor duplicate data."""

import asyncio
import socket
import ssl

import net_helpers as net
import pytest
from net_helpers import run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


@pytest.fixture
def udp_socks():
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    yield a, b
    a.close()
    b.close()


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------

OPS = {
    "sock_recv": lambda lp, s: lp.sock_recv(s, 10),
    "sock_recv_into": lambda lp, s: lp.sock_recv_into(s, bytearray(10)),
    "sock_recvfrom": lambda lp, s: lp.sock_recvfrom(s, 10),
    "sock_recvfrom_into": lambda lp, s: lp.sock_recvfrom_into(s, bytearray(10)),
    "sock_sendall": lambda lp, s: lp.sock_sendall(s, b"x"),
    "sock_sendto": lambda lp, s: lp.sock_sendto(s, b"x", ("127.0.0.1", 9)),
    "sock_connect": lambda lp, s: lp.sock_connect(s, ("127.0.0.1", 9)),
    "sock_accept": lambda lp, s: lp.sock_accept(s),
    "sock_sendfile": lambda lp, s: lp.sock_sendfile(s, THIS_FILE),
}
THIS_FILE = None


@pytest.fixture(autouse=True)
def _this_file():
    global THIS_FILE
    with open(__file__, "rb") as THIS_FILE:
        yield


@pytest.mark.parametrize("op", sorted(OPS))
def test_blocking_socket_rejected_in_debug_mode(loop, op):
    loop.set_debug(True)
    sock = socket.socket()
    try:
        with pytest.raises(ValueError) as info:
            run(loop, OPS[op](loop, sock))
    finally:
        sock.close()
    assert str(info.value) == "the socket must be non-blocking"


@pytest.mark.parametrize("op", ["sock_recv", "sock_sendall", "sock_accept", "sock_connect"])
def test_ssl_socket_rejected(loop, op):
    ctx = ssl.create_default_context()
    sock = ctx.wrap_socket(socket.socket(), server_hostname="x", do_handshake_on_connect=False)
    try:
        with pytest.raises(TypeError) as info:
            run(loop, OPS[op](loop, sock))
    finally:
        sock.close()
    assert str(info.value) == "Socket cannot be of type SSLSocket"


def test_blocking_socket_used_as_is_outside_debug_mode(loop, tcp_socks):
    # Without debug mode asyncio does not check: an operation that can
    # complete at once just works on a blocking socket.
    a, b = tcp_socks
    a.setblocking(True)
    b.setblocking(True)

    async def main():
        await loop.sock_sendall(a, b"blocking ok")
        return await loop.sock_recv(b, 100)

    assert run(loop, main()) == b"blocking ok"


def test_sock_op_on_fd_owned_by_transport(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        sock = cli.transport.get_extra_info("socket")
        raw = socket.socket(fileno=sock.fileno())
        try:
            with pytest.raises(RuntimeError) as info:
                await loop.sock_recv(raw, 10)
        finally:
            raw.detach()
        await net.close_all(cli, srv, server)
        return str(info.value)

    msg = run(loop, main())
    assert msg.startswith("File descriptor ") and " is used by transport " in msg


# ---------------------------------------------------------------------------
# TCP
# ---------------------------------------------------------------------------


def test_connect_accept_sendall_recv(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(lsock))
        await loop.sock_connect(client, lsock.getsockname())
        conn, addr = await accept
        assert addr == client.getsockname()
        assert conn.getblocking() is False
        await loop.sock_sendall(client, b"hello")
        got = await loop.sock_recv(conn, 100)
        await loop.sock_sendall(conn, bytearray(b"back"))
        buf = bytearray(10)
        n = await loop.sock_recv_into(client, buf)
        for s in (lsock, client, conn):
            s.close()
        return got, bytes(buf[:n])

    assert run(loop, main()) == (b"hello", b"back")


def test_sock_connect_resolves_localhost(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, ("localhost", lsock.getsockname()[1]))
        peer = client.getpeername()
        conn, _ = lsock.accept()
        for s in (lsock, client, conn):
            s.close()
        return peer, lsock

    peer, _ = run(loop, main())
    assert peer[0] == "127.0.0.1"


def test_sock_connect_refused_same_error(loop, stock_loop, check_same_error):
    with net.refusing_port() as port:

        def attempt(lp):
            s = socket.socket()
            s.setblocking(False)
            try:
                run(lp, lp.sock_connect(s, ("127.0.0.1", port)))
            finally:
                s.close()

        exc = check_same_error(attempt, loop, stock_loop)
    assert isinstance(exc, ConnectionRefusedError)


def test_sock_recv_returns_empty_at_eof(loop, tcp_socks):
    a, b = tcp_socks

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        a.shutdown(socket.SHUT_WR)
        return await recv

    assert run(loop, main()) == b""


def test_sock_sendall_large_with_slow_reader(loop, tcp_socks):
    a, b = tcp_socks
    data = net.payload(6 * 1024 * 1024, seed=11)

    async def main():
        send = asyncio.ensure_future(loop.sock_sendall(a, data))
        got = bytearray()
        while len(got) < len(data):
            chunk = await loop.sock_recv(b, 65536)
            assert chunk
            got += chunk
        assert await send is None
        return bytes(got)

    assert run(loop, main()) == data


def test_sock_recv_cancelled_loses_no_data(loop, tcp_socks):
    a, b = tcp_socks

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        a.send(b"after cancel")
        got = await loop.sock_recv(b, 100)
        return got

    assert run(loop, main()) == b"after cancel"


def test_sock_recv_into_cancelled_leaves_buffer_alone(loop, tcp_socks):
    a, b = tcp_socks

    async def main():
        buf = bytearray(b"untouched")
        recv = asyncio.ensure_future(loop.sock_recv_into(b, buf))
        await net.spin()
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        a.send(b"fresh")
        await asyncio.sleep(0.01)
        await net.spin()
        other = bytearray(10)
        n = await loop.sock_recv_into(b, other)
        return bytes(buf), bytes(other[:n])

    assert run(loop, main()) == (b"untouched", b"fresh")


def test_sock_sendall_cancelled_sends_a_prefix_never_duplicates(loop, tcp_socks):
    a, b = tcp_socks
    data = net.payload(16 * 1024 * 1024, seed=2)

    async def main():
        send = asyncio.ensure_future(loop.sock_sendall(a, data))
        await net.spin()
        assert not send.done()  # the kernel buffers cannot take 16 MiB
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send

        async def read_all():
            got = bytearray()
            while chunk := await loop.sock_recv(b, 1 << 20):
                got += chunk
            return bytes(got)

        reader = asyncio.ensure_future(read_all())
        await loop.sock_sendall(a, b"TAIL")
        a.shutdown(socket.SHUT_WR)
        return await reader

    got = run(loop, main())
    assert got.endswith(b"TAIL")
    sent = got[:-4]
    assert 0 < len(sent) < len(data)
    assert sent == data[: len(sent)]


def test_sock_accept_cancelled_connection_not_lost(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(lsock))
        await net.spin()
        accept.cancel()
        with pytest.raises(asyncio.CancelledError):
            await accept
        client = socket.create_connection(lsock.getsockname())
        conn, addr = await loop.sock_accept(lsock)
        ok = addr == client.getsockname()
        for s in (lsock, client, conn):
            s.close()
        return ok

    assert run(loop, main()) is True


def test_sock_connect_cancelled(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        client = socket.socket()
        client.setblocking(False)
        connect = asyncio.ensure_future(loop.sock_connect(client, lsock.getsockname()))
        connect.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connect
        client.close()
        lsock.close()

    run(loop, main())


def test_two_sockets_recv_concurrently(loop):
    async def main():
        pairs = [socket.socketpair() for _ in range(5)]
        for x, y in pairs:
            x.setblocking(False)
            y.setblocking(False)
        recvs = [asyncio.ensure_future(loop.sock_recv(y, 100)) for _, y in pairs]
        await net.spin()
        for i, (x, _) in enumerate(reversed(pairs)):
            x.send(b"%d" % (len(pairs) - 1 - i))
        got = await asyncio.gather(*recvs)
        for x, y in pairs:
            x.close()
            y.close()
        return got

    assert run(loop, main()) == [b"0", b"1", b"2", b"3", b"4"]


# ---------------------------------------------------------------------------
# UDP
# ---------------------------------------------------------------------------


def test_sock_sendto_recvfrom(loop, udp_socks):
    a, b = udp_socks

    async def main():
        recv = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
        await net.spin()
        n = await loop.sock_sendto(a, b"datagram", b.getsockname())
        data, addr = await recv
        return n, data, addr

    assert run(loop, main()) == (8, b"datagram", a.getsockname())


def test_sock_recvfrom_into_with_nbytes(loop, udp_socks):
    a, b = udp_socks

    async def main():
        buf = bytearray(20)
        recv = asyncio.ensure_future(loop.sock_recvfrom_into(b, buf, 4))
        await net.spin()
        await loop.sock_sendto(a, b"0123456789", b.getsockname())
        n, addr = await recv
        return n, bytes(buf[:n]), addr

    assert run(loop, main()) == (4, b"0123", a.getsockname())


def test_sock_recvfrom_cancelled_loses_no_datagram(loop, udp_socks):
    a, b = udp_socks

    async def main():
        recv = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
        await net.spin()
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        a.sendto(b"kept", b.getsockname())
        return await loop.sock_recvfrom(b, 100)

    assert run(loop, main()) == (b"kept", udp_socks[0].getsockname())


def test_sock_recvfrom_into_cancelled(loop, udp_socks):
    a, b = udp_socks

    async def main():
        buf = bytearray(10)
        recv = asyncio.ensure_future(loop.sock_recvfrom_into(b, buf))
        await net.spin()
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        a.sendto(b"kept", b.getsockname())
        n, _ = await loop.sock_recvfrom_into(b, buf)
        return bytes(buf[:n])

    assert run(loop, main()) == b"kept"


def test_sock_sendto_rejects_str(loop, udp_socks):
    a, b = udp_socks
    with pytest.raises(TypeError):
        run(loop, loop.sock_sendto(a, "text", b.getsockname()))


def test_sock_sendto_many_in_order(loop, udp_socks):
    a, b = udp_socks

    async def main():
        for i in range(100):
            await loop.sock_sendto(a, b"%03d" % i, b.getsockname())
        got = []
        for _ in range(100):
            data, _ = await loop.sock_recvfrom(b, 10)
            got.append(data)
        return got

    assert run(loop, main()) == [b"%03d" % i for i in range(100)]

"""create_server / connect_accepted_socket and the Server object."""

import asyncio
import errno
import gc
import socket

import net_helpers as net
import pytest
from net_helpers import EchoProtocol, RecordingProtocol, run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


async def connect(loop, address, proto=None):
    _, p = await loop.create_connection(proto or (lambda: RecordingProtocol(loop)), *address)
    return p


async def echo_once(loop, address, data=b"ping"):
    """Connects, sends `data`, half-closes, returns what came back."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(data)
    writer.write_eof()
    got = await reader.read()
    writer.close()
    await writer.wait_closed()
    return got


def echo_factory(loop, protos):
    def make():
        p = EchoProtocol(loop)
        protos.append(p)
        return p

    return make


# ---------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------


def test_server_basics(loop):
    async def main():
        served = await net.recording_server(loop)
        server = served.server
        socks = server.sockets
        assert isinstance(socks, tuple) and len(socks) == 1
        s = socks[0]
        assert s.family == socket.AF_INET and s.type == socket.SOCK_STREAM
        assert s.getsockname()[0] == "127.0.0.1" and s.getsockname()[1] > 0
        assert server.is_serving() is True
        assert server.get_loop() is loop
        assert isinstance(server, asyncio.AbstractServer)
        await net.close_all(served)
        assert server.sockets == ()
        assert server.is_serving() is False

    run(loop, main())


def test_server_echo_roundtrip(loop):
    async def main():
        protos = []
        server = await loop.create_server(echo_factory(loop, protos), "127.0.0.1", 0)
        got = await echo_once(loop, server.sockets[0].getsockname(), b"hello server")
        await net.close_all(server, *protos)
        return got, protos

    got, protos = run(loop, main())
    assert got == b"hello server"
    assert len(protos) == 1
    assert protos[0].events == ["made", "data", "eof", "lost"]


def test_server_several_hosts(loop):
    async def main():
        protos = []
        server = await loop.create_server(
            echo_factory(loop, protos), ["127.0.0.1", "127.0.0.2"], 0
        )
        names = sorted(s.getsockname() for s in server.sockets)
        results = [await echo_once(loop, name, name[0].encode()) for name in names]
        await net.close_all(server, *protos)
        return names, results

    names, results = run(loop, main())
    assert [n[0] for n in names] == ["127.0.0.1", "127.0.0.2"]
    assert results == [b"127.0.0.1", b"127.0.0.2"]


def test_server_family_restricts_addresses(loop):
    async def main():
        server = await loop.create_server(
            asyncio.Protocol, "localhost", 0, family=socket.AF_INET
        )
        families = {s.family for s in server.sockets}
        await net.close_all(server)
        return families

    assert run(loop, main()) == {socket.AF_INET}


def test_server_on_given_sock(loop):
    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        protos = []
        server = await loop.create_server(echo_factory(loop, protos), sock=sock)
        assert server.sockets[0].fileno() == sock.fileno()
        assert server.sockets[0].getsockname() == sock.getsockname()
        got = await echo_once(loop, sock.getsockname(), b"via sock")
        await net.close_all(server, *protos)
        return got, sock.fileno()

    got, fileno = run(loop, main())
    assert got == b"via sock"
    assert fileno == -1  # closing the server closed the socket


def test_server_sock_and_host_rejected(loop):
    sock = socket.socket()
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.create_server(asyncio.Protocol, "127.0.0.1", 0, sock=sock))
    finally:
        sock.close()
    assert str(info.value) == "host/port and sock can not be specified at the same time"


def test_server_datagram_sock_rejected(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.create_server(asyncio.Protocol, sock=sock))
        assert str(info.value) == f"A Stream Socket was expected, got {sock!r}"
    finally:
        sock.close()


def test_server_neither_host_nor_sock(loop):
    with pytest.raises(ValueError) as info:
        run(loop, loop.create_server(asyncio.Protocol))
    assert str(info.value) == "Neither host/port nor sock were specified"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ssl_handshake_timeout": 1.0}, "ssl_handshake_timeout is only meaningful with ssl"),
        ({"ssl_shutdown_timeout": 1.0}, "ssl_shutdown_timeout is only meaningful with ssl"),
    ],
)
def test_server_ssl_only_arguments_without_ssl(loop, kwargs, message):
    with pytest.raises(ValueError) as info:
        run(loop, loop.create_server(asyncio.Protocol, "127.0.0.1", 0, **kwargs))
    assert str(info.value) == message


def test_server_ssl_argument_must_be_context(loop):
    with pytest.raises(TypeError) as info:
        run(loop, loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=True))
    assert str(info.value) == "ssl argument must be an SSLContext or None"


def test_server_reuse_address_default_and_disabled(loop):
    async def main():
        a = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        b = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, reuse_address=False)
        opts = [
            bool(s.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)) for s in (a, b)
        ]
        await net.close_all(a, b)
        return opts

    assert run(loop, main()) == [True, False]


def test_server_reuse_port_allows_two_servers_on_one_port(loop):
    async def main():
        a = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, reuse_port=True)
        port = a.sockets[0].getsockname()[1]
        b = await loop.create_server(asyncio.Protocol, "127.0.0.1", port, reuse_port=True)
        opts = [
            bool(s.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)) for s in (a, b)
        ]
        same = b.sockets[0].getsockname()[1] == port
        await net.close_all(a, b)
        return opts, same

    assert run(loop, main()) == ([True, True], True)


def test_server_address_in_use_same_error(loop, stock_loop, check_same_error):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        exc = check_same_error(
            lambda lp: run(lp, lp.create_server(asyncio.Protocol, "127.0.0.1", port)),
            loop,
            stock_loop,
        )
    finally:
        busy.close()
    assert isinstance(exc, OSError)
    assert exc.errno == errno.EADDRINUSE


def test_server_backlog_argument_accepted(loop):
    async def main():
        protos = []
        server = await loop.create_server(echo_factory(loop, protos), "127.0.0.1", 0, backlog=1)
        address = server.sockets[0].getsockname()
        # Sequential: concurrent connects beyond the backlog would wait for
        # a SYN retransmission.
        results = [await echo_once(loop, address, b"%d" % i) for i in range(5)]
        await net.close_all(server, *protos)
        return results

    assert run(loop, main()) == [b"%d" % i for i in range(5)]


@pytest.mark.skipif(not net.PY313, reason="keep_alive was added in 3.13")
@pytest.mark.parametrize("keep_alive", [True, False])
def test_server_keep_alive(loop, keep_alive):
    async def main():
        served = await net.recording_server(loop, keep_alive=keep_alive)
        listening = served.server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        cli = await connect(loop, served.address)
        srv = await served.first()
        accepted = srv.transport.get_extra_info("socket").getsockopt(
            socket.SOL_SOCKET, socket.SO_KEEPALIVE
        )
        await net.close_all(cli, served)
        return bool(listening), bool(accepted)

    assert run(loop, main()) == (keep_alive, keep_alive)


def test_many_concurrent_clients(loop):
    async def main():
        protos = []
        server = await loop.create_server(echo_factory(loop, protos), "127.0.0.1", 0)
        address = server.sockets[0].getsockname()
        payloads = [net.payload(1000 + i * 37, seed=i) for i in range(40)]
        results = await asyncio.gather(*(echo_once(loop, address, p) for p in payloads))
        await net.close_all(server, *protos)
        return results == payloads, len(protos)

    assert run(loop, main()) == (True, 40)


def test_server_side_peername_matches_client_sockname(loop):
    async def main():
        served = await net.recording_server(loop)
        cli = await connect(loop, served.address)
        srv = await served.first()
        result = (
            srv.transport.get_extra_info("peername") == cli.transport.get_extra_info("sockname"),
            srv.transport.get_extra_info("sockname") == served.address,
        )
        await net.close_all(cli, served)
        return result

    assert run(loop, main()) == (True, True)


def _accepted_socket_facts(sock):
    """What a protocol may look at on the socket a server accepted."""
    return {
        "class": sock.__class__,
        "family": sock.family,
        "type": sock.type,
        "proto": sock.proto,
        "blocking": sock.getblocking(),
        "timeout": sock.gettimeout(),
        "inheritable": sock.get_inheritable(),
        "nodelay": bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)),
    }


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_accepted_connection_details(loop, host):
    # ferroloop accepts in Rust (src/transports/accept.rs); the addresses
    # and the accepted socket must be what sock.accept() gives asyncio.
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")

    async def main():
        served = await net.recording_server(loop, host)
        cli = await connect(loop, served.address[:2])
        srv = await served.first()
        peer = srv.transport.get_extra_info("peername")
        result = (
            peer == cli.transport.get_extra_info("sockname"),
            type(peer), len(peer), [type(x) for x in peer],
            srv.transport.get_extra_info("sockname") == served.address,
            _accepted_socket_facts(srv.transport.get_extra_info("socket")._sock),
        )
        await net.close_all(cli, served)
        return result

    same, kind, size, item_types, sockname_ok, facts = run(loop, main())
    assert same and sockname_ok and kind is tuple
    expected = (2, [str, int]) if host == "127.0.0.1" else (4, [str, int, int, int])
    assert (size, item_types) == expected
    family = socket.AF_INET if host == "127.0.0.1" else socket.AF_INET6
    assert facts == {
        "class": socket.socket, "family": family, "type": socket.SOCK_STREAM,
        "proto": socket.IPPROTO_TCP, "blocking": False, "timeout": 0.0,
        "inheritable": False, "nodelay": True,
    }


def test_accept_on_a_socket_subclass_uses_its_accept(loop):
    # A listening socket of a subclass passed as sock= is accepted through
    # its own accept(), as asyncio does.
    class CountingSocket(socket.socket):
        accepts = 0

        def accept(self):
            CountingSocket.accepts += 1
            return super().accept()

    async def main():
        lsock = CountingSocket()
        lsock.bind(("127.0.0.1", 0))
        served = await net.recording_server(loop, host=None, port=None, sock=lsock)
        address = lsock.getsockname()
        cli = await connect(loop, address)
        await served.first()
        await net.close_all(cli, served)
        return CountingSocket.accepts

    assert run(loop, main()) >= 1


# ---------------------------------------------------------------------------
# start_serving / serve_forever / close / wait_closed
# ---------------------------------------------------------------------------


def test_start_serving_false_does_not_listen(loop):
    async def main():
        protos = []
        server = await loop.create_server(
            echo_factory(loop, protos), "127.0.0.1", 0, start_serving=False
        )
        address = server.sockets[0].getsockname()
        assert server.is_serving() is False
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, *address)
        await server.start_serving()
        assert server.is_serving() is True
        await server.start_serving()  # second call: no-op
        got = await echo_once(loop, address, b"now serving")
        await net.close_all(server, *protos)
        return got

    assert run(loop, main()) == b"now serving"


def test_serve_forever_until_cancelled(loop):
    async def main():
        protos = []
        server = await loop.create_server(
            echo_factory(loop, protos), "127.0.0.1", 0, start_serving=False
        )
        address = server.sockets[0].getsockname()
        task = asyncio.ensure_future(server.serve_forever())
        await net.spin()
        assert server.is_serving()
        got = await echo_once(loop, address, b"forever")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        state = server.is_serving(), server.sockets
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, *address)
        await net.close_all(*protos)
        return got, state

    assert run(loop, main()) == (b"forever", (False, ()))


def test_serve_forever_twice_and_after_close(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        first = asyncio.ensure_future(server.serve_forever())
        await net.spin()
        with pytest.raises(RuntimeError) as twice:
            await server.serve_forever()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        with pytest.raises(RuntimeError) as closed:
            await server.serve_forever()
        return str(twice.value), str(closed.value), repr(server)

    twice, closed, server_repr = run(loop, main())
    assert twice.startswith("server ") and twice.endswith(
        " is already being awaited on serve_forever()"
    )
    assert closed == f"server {server_repr} is closed"


def test_close_stops_listening_at_once(loop):
    async def main():
        served = await net.recording_server(loop)
        address = served.address
        served.server.close()
        # No loop iteration in between: the listening socket is gone.
        probe = socket.socket()
        try:
            err = probe.connect_ex(address)
        finally:
            probe.close()
        await net.close_all(served)
        return err

    assert run(loop, main()) == errno.ECONNREFUSED


def test_close_keeps_existing_connections(loop):
    async def main():
        protos = []
        server = await loop.create_server(echo_factory(loop, protos), "127.0.0.1", 0)
        address = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*address)
        server.close()
        writer.write(b"still here\n")
        line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        await net.close_all(server, *protos)
        return line

    assert run(loop, main()) == b"still here\n"


def test_close_twice_is_harmless(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        server.close()
        server.close()
        await server.wait_closed()
        await server.wait_closed()
        return server.is_serving()

    assert run(loop, main()) is False


def test_wait_closed_blocks_until_close(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        waiter = asyncio.ensure_future(server.wait_closed())
        await net.spin()
        before = waiter.done()
        server.close()
        await asyncio.wait_for(waiter, net.GUARD)
        return before

    assert run(loop, main()) is False


@pytest.mark.skipif(not net.PY312, reason="3.11's wait_closed returns at once once closed")
def test_wait_closed_waits_for_active_connections(loop):
    async def main():
        served = await net.recording_server(loop)
        cli = await connect(loop, served.address)
        srv = await served.first()
        served.server.close()
        waiter = asyncio.ensure_future(served.server.wait_closed())
        await net.spin(10)
        while_connected = waiter.done()
        srv.transport.close()
        await asyncio.wait_for(waiter, net.GUARD)
        await net.close_all(cli, served)
        return while_connected

    assert run(loop, main()) is False


@pytest.mark.skipif(net.PY312, reason="fixed in 3.12.1: wait_closed now waits for connections")
def test_wait_closed_returns_at_once_on_311(loop):
    async def main():
        served = await net.recording_server(loop)
        cli = await connect(loop, served.address)
        await served.first()
        served.server.close()
        await asyncio.wait_for(served.server.wait_closed(), net.GUARD)
        still_open = not cli.lost
        await net.close_all(cli, served)
        return still_open

    assert run(loop, main()) is True


def test_async_with_closes_server(loop):
    async def main():
        async with await loop.create_server(asyncio.Protocol, "127.0.0.1", 0) as server:
            address = server.sockets[0].getsockname()
            assert server.is_serving()
        after = server.is_serving(), server.sockets
        probe = socket.socket()
        try:
            err = probe.connect_ex(address)
        finally:
            probe.close()
        return after, err

    assert run(loop, main()) == ((False, ()), errno.ECONNREFUSED)


@pytest.mark.skipif(not net.PY313, reason="close_clients/abort_clients were added in 3.13")
@pytest.mark.parametrize("method", ["close_clients", "abort_clients"])
def test_close_and_abort_clients(loop, method):
    async def main():
        served = await net.recording_server(loop)
        clients = [await connect(loop, served.address) for _ in range(3)]
        while len(served.protos) < 3 or any(p.transport is None for p in served.protos):
            await asyncio.sleep(0)
        served.server.close()
        getattr(served.server, method)()
        for p in served.protos:
            assert p.transport.is_closing()
        await asyncio.wait_for(served.server.wait_closed(), net.GUARD)
        for c in clients:
            await c.wait_lost()
        return served.protos, clients

    protos, clients = run(loop, main())
    assert all(p.events == ["made", "lost"] and p.exc is None for p in protos)
    if method == "close_clients":
        assert all(c.events == ["made", "eof", "lost"] for c in clients)
    else:
        # abort: the peer sees a reset or a plain close, never data.
        assert all(c.events[0] == "made" and c.events[-1] == "lost" for c in clients)
        assert all("data" not in c.events for c in clients)


# ---------------------------------------------------------------------------
# accept path errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["normal", "debug"])
def test_protocol_factory_error_drops_connection_server_goes_on(loop, debug):
    # asyncio reports a failed protocol factory only in debug mode; the
    # incoming connection is dropped and the server keeps accepting.
    loop.set_debug(debug)

    async def main():
        # Keep no reference to the exception: its traceback would keep the
        # accepted socket alive.
        errors = []
        loop.set_exception_handler(
            lambda lp, ctx: errors.append(
                (ctx["message"], type(ctx.get("exception")), sorted(ctx))
            )
        )
        protos = []

        def factory():
            if not protos:
                protos.append(None)
                raise ZeroDivisionError("factory failed")
            p = EchoProtocol(loop)
            protos.append(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0)
        address = server.sockets[0].getsockname()
        bad = await connect(loop, address)
        while not errors and debug:
            await asyncio.sleep(0.001)
        # asyncio never closes the accepted socket explicitly: it goes with
        # the failed coroutine's frame (in debug mode, a reference cycle).
        await net.spin()
        gc.collect()
        await bad.wait_lost()
        got = await echo_once(loop, address, b"second")
        await net.close_all(server, *protos[1:])
        return errors, bad, got

    errors, bad, got = run(loop, main())
    assert got == b"second"
    assert bad.events in (["made", "eof", "lost"], ["made", "lost"])
    assert "data" not in bad.events
    if debug:
        assert errors == [
            (
                "Error on transport creation for incoming connection",
                ZeroDivisionError,
                ["exception", "message"],
            )
        ]
    else:
        assert errors == []


# ---------------------------------------------------------------------------
# connect_accepted_socket
# ---------------------------------------------------------------------------


def test_connect_accepted_socket(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        cli = await connect(loop, lsock.getsockname())
        conn, _ = lsock.accept()
        lsock.close()
        assert conn.getblocking()
        tr, proto = await loop.connect_accepted_socket(lambda: EchoProtocol(loop), conn)
        assert proto.events == ["made"]
        assert conn.getblocking() is False
        assert tr.get_extra_info("peername") == cli.transport.get_extra_info("sockname")
        cli.transport.write(b"accepted")
        await cli.wait_bytes(8)
        await net.close_all(cli, proto)
        return bytes(cli.data), conn.fileno()

    assert run(loop, main()) == (b"accepted", -1)


def test_connect_accepted_socket_rejects_datagram(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.connect_accepted_socket(asyncio.Protocol, sock))
        assert str(info.value) == f"A Stream Socket was expected, got {sock!r}"
    finally:
        sock.close()


def test_connect_accepted_socket_ssl_timeout_without_ssl(loop):
    a, b = socket.socketpair()
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.connect_accepted_socket(asyncio.Protocol, a, ssl_handshake_timeout=1))
    finally:
        a.close()
        b.close()
    assert str(info.value) == "ssl_handshake_timeout is only meaningful with ssl"


def test_connect_accepted_socket_on_socketpair(loop):
    async def main():
        a, b = socket.socketpair()
        tr, proto = await loop.connect_accepted_socket(lambda: RecordingProtocol(loop), a)
        b.sendall(b"from b")
        b.shutdown(socket.SHUT_WR)
        await proto.wait_lost()
        rest = b.recv(100)
        b.close()
        return proto, tr.get_extra_info("socket").family, rest

    proto, family, rest = run(loop, main())
    assert family == socket.AF_UNIX
    assert bytes(proto.data) == b"from b"
    assert proto.events == ["made", "data", "eof", "lost"]
    assert rest == b""

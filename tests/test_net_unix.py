"""Unix stream sockets: create_unix_server / create_unix_connection."""

import asyncio
import errno
import os
import socket
import stat
import uuid

import net_helpers as net
import pytest
from net_helpers import EchoProtocol, RecordingProtocol, run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "s.sock")


async def unix_pair(loop, path, **server_kw):
    served = await net.recording_server(loop, path, unix=True, **server_kw)
    _, cli = await loop.create_unix_connection(lambda: RecordingProtocol(loop), path)
    srv = await served.first()
    return srv, cli, served


def test_unix_roundtrip_and_callbacks(loop, sock_path):
    async def main():
        srv, cli, served = await unix_pair(loop, sock_path)
        cli.transport.write(b"over unix")
        cli.transport.write_eof()
        await srv.wait_event("eof")
        await srv.wait_lost()
        await cli.wait_lost()
        await net.close_all(served)
        return srv, cli

    srv, cli = run(loop, main())
    assert bytes(srv.data) == b"over unix"
    assert srv.events == ["made", "data", "eof", "lost"]
    assert cli.events == ["made", "eof", "lost"]


def test_unix_extra_info(loop, sock_path):
    async def main():
        srv, cli, served = await unix_pair(loop, sock_path)
        info = {
            "c_sockname": cli.transport.get_extra_info("sockname"),
            "c_peername": cli.transport.get_extra_info("peername"),
            "s_sockname": srv.transport.get_extra_info("sockname"),
            "s_peername": srv.transport.get_extra_info("peername"),
            "family": cli.transport.get_extra_info("socket").family,
            "can_write_eof": cli.transport.can_write_eof(),
            "server_sockname": served.server.sockets[0].getsockname(),
        }
        await net.close_all(cli, served)
        return info

    info = run(loop, main())
    assert info == {
        "c_sockname": "",
        "c_peername": sock_path,
        "s_sockname": sock_path,
        "s_peername": "",
        "family": socket.AF_UNIX,
        "can_write_eof": True,
        "server_sockname": sock_path,
    }


def test_unix_large_transfer(loop, sock_path):
    data = net.payload(4 * 1024 * 1024, seed=9)

    async def main():
        protos = []

        def make():
            p = EchoProtocol(loop)
            protos.append(p)
            return p

        server = await loop.create_unix_server(make, sock_path)
        _, cli = await loop.create_unix_connection(lambda: RecordingProtocol(loop), sock_path)
        cli.transport.write(data)
        await cli.wait_bytes(len(data))
        await net.close_all(cli, server, *protos)
        return bytes(cli.data)

    assert run(loop, main()) == data


def test_unix_pathlike_path(loop, tmp_path):
    path = tmp_path / "p.sock"

    async def main():
        srv, cli, served = await unix_pair(loop, path)
        name = served.server.sockets[0].getsockname()
        await net.close_all(cli, served)
        return name

    assert run(loop, main()) == str(path)
    assert not (net.PY313 and path.exists())


def test_unix_socket_file_exists_while_serving(loop, sock_path):
    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path)
        is_sock = stat.S_ISSOCK(os.stat(sock_path).st_mode)
        await net.close_all(server)
        return is_sock, os.path.exists(sock_path)

    is_sock, exists_after = run(loop, main())
    assert is_sock
    # 3.13 removes the socket file on close (cleanup_socket=True by default).
    assert exists_after is (not net.PY313)


@pytest.mark.skipif(not net.PY313, reason="cleanup_socket was added in 3.13")
def test_unix_cleanup_socket_false_keeps_file(loop, sock_path):
    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path, cleanup_socket=False)
        await net.close_all(server)
        return os.path.exists(sock_path)

    assert run(loop, main()) is True


@pytest.mark.skipif(not net.PY313, reason="cleanup_socket was added in 3.13")
def test_unix_cleanup_spares_a_replaced_socket_file(loop, sock_path):
    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path)
        os.unlink(sock_path)
        other = socket.socket(socket.AF_UNIX)
        other.bind(sock_path)  # someone else's socket now lives at the path
        server.close()
        await server.wait_closed()
        exists = os.path.exists(sock_path)
        other.close()
        return exists

    assert run(loop, main()) is True


@pytest.mark.skipif(not net.PY313, reason="cleanup_socket was added in 3.13")
def test_unix_cleanup_applies_to_given_sock(loop, sock_path):
    async def main():
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(sock_path)
        server = await loop.create_unix_server(asyncio.Protocol, sock=sock)
        await net.close_all(server)
        return os.path.exists(sock_path)

    assert run(loop, main()) is False


@pytest.mark.skipif(not net.PY313, reason="cleanup_socket was added in 3.13")
def test_unix_cleanup_when_file_already_gone(loop, sock_path, caplog):
    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path)
        os.unlink(sock_path)
        await net.close_all(server)

    run(loop, main())
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_unix_stale_socket_file_is_replaced(loop, sock_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()  # the file stays, nobody listens

    async def main():
        srv, cli, served = await unix_pair(loop, sock_path)
        cli.transport.write(b"fresh")
        await srv.wait_bytes(5)
        await net.close_all(cli, served)
        return bytes(srv.data)

    assert run(loop, main()) == b"fresh"


def test_unix_regular_file_in_the_way_same_error(loop, stock_loop, check_same_error, sock_path):
    with open(sock_path, "w") as f:
        f.write("not a socket")
    exc = check_same_error(
        lambda lp: run(lp, lp.create_unix_server(asyncio.Protocol, sock_path)), loop, stock_loop
    )
    assert exc.errno == errno.EADDRINUSE
    assert str(exc) == f"[Errno {errno.EADDRINUSE}] Address {sock_path!r} is already in use"
    with open(sock_path) as f:
        assert f.read() == "not a socket"


def test_unix_server_address_in_use_by_live_server(loop, sock_path):
    async def main():
        first = await loop.create_unix_server(asyncio.Protocol, sock_path)
        # A live server's socket file is a socket: asyncio removes it and
        # binds anew (the first server keeps its now-unreachable socket).
        second = await loop.create_unix_server(asyncio.Protocol, sock_path)
        ok = len(second.sockets) == 1
        await net.close_all(first, second)
        return ok

    assert run(loop, main()) is True


@pytest.mark.parametrize("kind", ["str", "bytes"])
def test_unix_abstract_namespace(loop, kind):
    name = "\0ferroloop-test-" + uuid.uuid4().hex
    path = name if kind == "str" else name.encode()

    async def main():
        srv, cli, served = await unix_pair(loop, path)
        sockname = served.server.sockets[0].getsockname()
        peer = cli.transport.get_extra_info("peername")
        cli.transport.write(b"abstract")
        await srv.wait_bytes(8)
        await net.close_all(cli, served)
        return sockname, peer, bytes(srv.data)

    sockname, peer, data = run(loop, main())
    assert sockname == name.encode()
    assert peer == name.encode()
    assert data == b"abstract"


def test_unix_connection_to_missing_path_same_error(loop, stock_loop, check_same_error, tmp_path):
    missing = str(tmp_path / "missing.sock")
    exc = check_same_error(
        lambda lp: run(lp, lp.create_unix_connection(asyncio.Protocol, missing)), loop, stock_loop
    )
    assert isinstance(exc, FileNotFoundError)


def test_unix_connection_refused_same_error(loop, stock_loop, check_same_error, sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)  # bound, not listening
    try:
        exc = check_same_error(
            lambda lp: run(lp, lp.create_unix_connection(asyncio.Protocol, sock_path)),
            loop,
            stock_loop,
        )
    finally:
        s.close()
    assert isinstance(exc, ConnectionRefusedError)


@pytest.mark.parametrize(
    "call, message",
    [
        ("conn_path_and_sock", "path and sock can not be specified at the same time"),
        ("conn_nothing", "no path and sock were specified"),
        ("conn_server_hostname", "server_hostname is only meaningful with ssl"),
        ("conn_ssl_no_hostname", "you have to pass server_hostname when using ssl"),
        ("server_path_and_sock", "path and sock can not be specified at the same time"),
        ("server_nothing", "path was not specified, and no sock specified"),
        ("server_handshake_timeout", "ssl_handshake_timeout is only meaningful with ssl"),
    ],
)
def test_unix_argument_errors(loop, sock_path, call, message):
    sock = socket.socket(socket.AF_UNIX)
    calls = {
        "conn_path_and_sock": lambda: loop.create_unix_connection(
            asyncio.Protocol, sock_path, sock=sock
        ),
        "conn_nothing": lambda: loop.create_unix_connection(asyncio.Protocol),
        "conn_server_hostname": lambda: loop.create_unix_connection(
            asyncio.Protocol, sock_path, server_hostname="x"
        ),
        "conn_ssl_no_hostname": lambda: loop.create_unix_connection(
            asyncio.Protocol, sock_path, ssl=True
        ),
        "server_path_and_sock": lambda: loop.create_unix_server(
            asyncio.Protocol, sock_path, sock=sock
        ),
        "server_nothing": lambda: loop.create_unix_server(asyncio.Protocol),
        "server_handshake_timeout": lambda: loop.create_unix_server(
            asyncio.Protocol, sock_path, ssl_handshake_timeout=1
        ),
    }
    try:
        with pytest.raises(ValueError) as info:
            run(loop, calls[call]())
    finally:
        sock.close()
    assert str(info.value) == message


@pytest.mark.parametrize("which", ["connection", "server"])
@pytest.mark.parametrize(
    "family, type_",
    [(socket.AF_INET, socket.SOCK_STREAM), (socket.AF_UNIX, socket.SOCK_DGRAM)],
    ids=["inet", "unix-dgram"],
)
def test_unix_wrong_sock_kind(loop, which, family, type_):
    sock = socket.socket(family, type_)
    try:
        with pytest.raises(ValueError) as info:
            if which == "connection":
                run(loop, loop.create_unix_connection(asyncio.Protocol, sock=sock))
            else:
                run(loop, loop.create_unix_server(asyncio.Protocol, sock=sock))
        assert str(info.value) == f"A UNIX Domain Stream Socket was expected, got {sock!r}"
    finally:
        sock.close()


def test_unix_server_ssl_bool_rejected(loop, sock_path):
    with pytest.raises(TypeError) as info:
        run(loop, loop.create_unix_server(asyncio.Protocol, sock_path, ssl=True))
    assert str(info.value) == "ssl argument must be an SSLContext or None"


def test_unix_connection_with_connected_sock(loop, sock_path):
    async def main():
        served = await net.recording_server(loop, sock_path, unix=True)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(sock_path)
        tr, cli = await loop.create_unix_connection(lambda: RecordingProtocol(loop), sock=sock)
        srv = await served.first()
        srv.transport.write(b"hi sock")
        await cli.wait_bytes(7)
        blocking = sock.getblocking()
        await net.close_all(cli, served)
        return bytes(cli.data), blocking

    assert run(loop, main()) == (b"hi sock", False)


def test_unix_server_start_serving_false(loop, sock_path):
    async def main():
        served = await net.recording_server(loop, sock_path, unix=True, start_serving=False)
        server = served.server
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_unix_connection(asyncio.Protocol, sock_path)
        await server.start_serving()
        _, cli = await loop.create_unix_connection(lambda: RecordingProtocol(loop), sock_path)
        await served.first()
        await net.close_all(cli, served)
        return server.is_serving()

    assert run(loop, main()) is False


def test_unix_close_stops_listening_at_once(loop, sock_path):
    async def main():
        kw = {"cleanup_socket": False} if net.PY313 else {}
        server = await loop.create_unix_server(asyncio.Protocol, sock_path, **kw)
        server.close()
        probe = socket.socket(socket.AF_UNIX)
        try:
            err = probe.connect_ex(sock_path)
        finally:
            probe.close()
        await server.wait_closed()
        return err

    assert run(loop, main()) == errno.ECONNREFUSED


def test_unix_socketpair_via_create_connection(loop):
    async def main():
        a, b = socket.socketpair()
        tr, proto = await loop.create_connection(lambda: RecordingProtocol(loop), sock=a)
        tr.write(b"to b")
        got = b.recv(10)  # write() sent at once: the socket was writable
        b.close()
        await proto.wait_lost()
        return got, proto.events

    got, events = run(loop, main())
    assert got == b"to b"
    assert events == ["made", "eof", "lost"]

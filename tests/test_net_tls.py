"""TLS over the loop's transports: create_server/create_connection with ssl=,
start_tls, certificates, ALPN, SNI, verification errors, handshake timeout."""

import asyncio
import socket
import ssl

import net_helpers as net
import pytest
from net_helpers import EchoProtocol, RecordingProtocol, run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


@pytest.fixture
def tls():
    return net.tls()


async def tls_pair(loop, tls, server_ctx=None, client_ctx=None, server_hostname="localhost",
                   server_factory=None, **client_kw):
    served = await net.recording_server(
        loop, ssl=server_ctx or tls.server_ctx(), factory=server_factory
    )
    _, cli = await loop.create_connection(
        lambda: RecordingProtocol(loop), "127.0.0.1", served.port,
        ssl=client_ctx or tls.client_ctx(), server_hostname=server_hostname, **client_kw
    )
    srv = await served.first()
    return srv, cli, served


def test_tls_roundtrip_and_callbacks(loop, tls):
    async def main():
        srv, cli, served = await tls_pair(loop, tls)
        cli.transport.write(b"secret")
        await srv.wait_bytes(6)
        srv.transport.write(b"reply")
        await cli.wait_bytes(5)
        cli.transport.close()
        await srv.wait_lost()
        await cli.wait_lost()
        await net.close_all(served)
        return srv, cli

    srv, cli = run(loop, main())
    assert bytes(srv.data) == b"secret" and bytes(cli.data) == b"reply"
    # Closing sends close_notify; the peer's close_notify in answer is
    # reported to the closing side's protocol as an EOF too.
    assert cli.events == ["made", "data", "eof", "lost"]
    assert cli.exc is None
    # The TLS close_notify reaches the server as an EOF.
    assert srv.events == ["made", "data", "eof", "lost"]
    assert srv.exc is None


def test_tls_extra_info(loop, tls):
    async def main():
        client_ctx = tls.client_ctx()
        server_ctx = tls.server_ctx()
        srv, cli, served = await tls_pair(loop, tls, server_ctx=server_ctx, client_ctx=client_ctx)
        ct, st = cli.transport, srv.transport
        sslobj = ct.get_extra_info("ssl_object")
        info = {
            "c_ctx": ct.get_extra_info("sslcontext") is client_ctx,
            "s_ctx": st.get_extra_info("sslcontext") is server_ctx,
            "sslobj_type": type(sslobj),
            "c_cipher": ct.get_extra_info("cipher") == sslobj.cipher(),
            "compression": ct.get_extra_info("compression"),
            "c_peercert_san": ct.get_extra_info("peercert")["subjectAltName"],
            "s_peercert": st.get_extra_info("peercert"),
            "version": sslobj.version(),
            "server_side": st.get_extra_info("ssl_object").server_side,
            "c_peername": ct.get_extra_info("peername") == ("127.0.0.1", served.port),
            "s_sockname": st.get_extra_info("sockname") == ("127.0.0.1", served.port),
            "socket_family": ct.get_extra_info("socket").family,
            "default": ct.get_extra_info("nope", "dflt"),
            "can_write_eof": ct.can_write_eof(),
            "server_hostname": sslobj.server_hostname,
        }
        await net.close_all(cli, served)
        return info

    info = run(loop, main())
    assert info == {
        "c_ctx": True,
        "s_ctx": True,
        "sslobj_type": ssl.SSLObject,
        "c_cipher": True,
        "compression": None,
        "c_peercert_san": (
            ("DNS", "localhost"), ("IP Address", "127.0.0.1"), ("DNS", "sni.example")
        ),
        "s_peercert": None,
        "version": "TLSv1.3",
        "server_side": True,
        "c_peername": True,
        "s_sockname": True,
        "socket_family": socket.AF_INET,
        "default": "dflt",
        "can_write_eof": False,
        "server_hostname": "localhost",
    }


def test_tls_write_eof_not_implemented(loop, tls):
    async def main():
        srv, cli, served = await tls_pair(loop, tls)
        with pytest.raises(NotImplementedError):
            cli.transport.write_eof()
        await net.close_all(cli, served)

    run(loop, main())


def test_tls_write_rejects_str(loop, tls):
    async def main():
        srv, cli, served = await tls_pair(loop, tls)
        with pytest.raises(TypeError) as info:
            cli.transport.write("text")
        await net.close_all(cli, served)
        return str(info.value)

    assert run(loop, main()) == "data: expecting a bytes-like instance, got str"


def test_tls_large_transfer_both_ways(loop, tls):
    data = net.payload(3 * 1024 * 1024, seed=4)

    async def main():
        served = await net.recording_server(
            loop, ssl=tls.server_ctx(), factory=lambda: EchoProtocol(loop)
        )
        _, cli = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port,
            ssl=tls.client_ctx(), server_hostname="localhost",
        )
        cli.transport.writelines([data[:1000], memoryview(data)[1000:]])
        await cli.wait_bytes(len(data))
        await net.close_all(cli, served)
        return bytes(cli.data)

    assert run(loop, main()) == data


def test_tls_pause_resume_reading(loop, tls):
    async def main():
        srv, cli, served = await tls_pair(loop, tls)
        t = srv.transport
        assert t.is_reading()
        t.pause_reading()
        assert not t.is_reading()
        cli.transport.write(b"held")
        await asyncio.sleep(0.05)
        await net.spin()
        paused = bytes(srv.data)
        t.resume_reading()
        assert t.is_reading()
        await srv.wait_bytes(4)
        await net.close_all(cli, served)
        return paused, bytes(srv.data)

    assert run(loop, main()) == (b"", b"held")


def test_tls_write_flow_control(loop, tls):
    async def main():
        srv, cli, served = await tls_pair(loop, tls)
        srv.transport.pause_reading()
        t = cli.transport
        t.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert t.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        written = 0
        chunk = net.payload(64 * 1024)
        while cli.pauses == 0:
            t.write(chunk)
            written += len(chunk)
            assert written < 256 * 1024 * 1024
        srv.transport.resume_reading()
        await cli.wait_event("resume")
        await srv.wait_bytes(written)
        await net.close_all(cli, served)
        return cli.pauses, cli.resumes, len(srv.data) == written

    assert run(loop, main()) == (1, 1, True)


def test_tls_abort(loop, tls):
    async def main():
        srv, cli, served = await tls_pair(loop, tls)
        cli.transport.abort()
        assert cli.transport.is_closing()
        await cli.wait_lost()
        await srv.wait_lost()
        await net.close_all(served)
        return cli.exc, cli.events, srv.events

    exc, cevents, sevents = run(loop, main())
    assert exc is None
    assert cevents == ["made", "lost"]
    assert sevents[0] == "made" and sevents[-1] == "lost"


def test_tls_alpn(loop, tls):
    async def main():
        server_ctx = tls.server_ctx()
        server_ctx.set_alpn_protocols(["h2", "http/1.1"])
        client_ctx = tls.client_ctx()
        client_ctx.set_alpn_protocols(["spdy/3", "http/1.1"])
        srv, cli, served = await tls_pair(loop, tls, server_ctx=server_ctx, client_ctx=client_ctx)
        chosen = (
            cli.transport.get_extra_info("ssl_object").selected_alpn_protocol(),
            srv.transport.get_extra_info("ssl_object").selected_alpn_protocol(),
        )
        await net.close_all(cli, served)
        return chosen

    assert run(loop, main()) == ("http/1.1", "http/1.1")


def test_tls_sni_callback_sees_server_hostname(loop, tls):
    seen = []

    async def main():
        server_ctx = tls.server_ctx()
        server_ctx.sni_callback = lambda sslobj, name, ctx: seen.append(name)
        srv, cli, served = await tls_pair(loop, tls, server_ctx=server_ctx,
                                          server_hostname="sni.example")
        await net.close_all(cli, served)

    run(loop, main())
    assert seen == ["sni.example"]


def test_tls_server_hostname_defaults_to_host(loop, tls):
    seen = []

    async def main():
        server_ctx = tls.server_ctx()
        server_ctx.sni_callback = lambda sslobj, name, ctx: seen.append(name)
        served = await net.recording_server(loop, ssl=server_ctx)
        _, cli = await loop.create_connection(
            lambda: RecordingProtocol(loop), "localhost", served.port, ssl=tls.client_ctx()
        )
        await served.first()
        hostname = cli.transport.get_extra_info("ssl_object").server_hostname
        await net.close_all(cli, served)
        return hostname

    assert run(loop, main()) == "localhost"
    assert seen == ["localhost"]


def test_tls_client_certificate(loop, tls):
    async def main():
        srv, cli, served = await tls_pair(
            loop, tls,
            server_ctx=tls.server_ctx(require_client_cert=True),
            client_ctx=tls.client_ctx(with_cert=True),
        )
        peercert = srv.transport.get_extra_info("peercert")
        await net.close_all(cli, served)
        return peercert["subjectAltName"]

    assert run(loop, main()) == (("email", "client@example.org"),)


def test_tls_missing_client_certificate_rejected(loop, tls):
    async def main():
        errors = net.capture_errors(loop)
        served = await net.recording_server(loop, ssl=tls.server_ctx(require_client_cert=True))
        got = None
        try:
            _, cli = await loop.create_connection(
                lambda: RecordingProtocol(loop), "127.0.0.1", served.port,
                ssl=tls.client_ctx(), server_hostname="localhost",
            )
        except ssl.SSLError as exc:
            got = exc
        else:
            # TLS 1.3: the client finishes its handshake first; the server's
            # alert arrives afterwards and ends the connection.
            await cli.wait_lost()
            assert cli.events == ["made", "eof", "lost"] or cli.exc is not None
            assert cli.data == b""
            got = cli.exc
        await net.spin()
        served.server.close()
        await served.server.wait_closed()
        return got, served.protos, errors

    exc, protos, errors = run(loop, main())
    # TLS 1.3: the client may finish its handshake before the server's alert
    # arrives; asyncio then reports a plain end of connection.
    if exc is not None:
        assert isinstance(exc, ssl.SSLError)
        assert "CERTIFICATE_REQUIRED" in str(exc) or "certificate required" in str(exc)
    # The server-side application protocol never saw a connection.
    assert all(p.events == [] for p in protos)
    assert errors == []  # handshake failures (OSErrors) are only logged in debug


def test_tls_verification_failure_same_error(loop, stock_loop, check_same_error, tls):
    def attempt(lp):
        async def main():
            served = await net.recording_server(lp, ssl=tls.server_ctx())
            try:
                await lp.create_connection(
                    asyncio.Protocol, "127.0.0.1", served.port,
                    ssl=tls.client_ctx(trusted=False), server_hostname="localhost",
                )
            finally:
                await net.spin()
                served.server.close()
                await served.server.wait_closed()

        run(lp, main())

    exc = check_same_error(attempt, loop, stock_loop)
    assert type(exc) is ssl.SSLCertVerificationError
    assert exc.verify_message == "unable to get local issuer certificate"


def test_tls_hostname_mismatch_same_error(loop, stock_loop, check_same_error, tls):
    def attempt(lp):
        async def main():
            served = await net.recording_server(lp, ssl=tls.server_ctx())
            try:
                await lp.create_connection(
                    asyncio.Protocol, "127.0.0.1", served.port,
                    ssl=tls.client_ctx(), server_hostname="wrong.example",
                )
            finally:
                await net.spin()
                served.server.close()
                await served.server.wait_closed()

        run(lp, main())

    exc = check_same_error(attempt, loop, stock_loop)
    assert type(exc) is ssl.SSLCertVerificationError
    assert "Hostname mismatch" in exc.verify_message


def test_tls_ssl_true_uses_default_context_which_rejects_test_ca(loop, tls):
    async def main():
        served = await net.recording_server(loop, ssl=tls.server_ctx())
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await loop.create_connection(
                    asyncio.Protocol, "127.0.0.1", served.port, ssl=True,
                    server_hostname="localhost",
                )
        finally:
            await net.spin()
            served.server.close()
            await served.server.wait_closed()

    run(loop, main())


def test_tls_handshake_timeout(loop, tls):
    async def main():
        # A TCP peer that accepts but never speaks TLS.
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        try:
            with pytest.raises(ConnectionAbortedError) as info:
                await loop.create_connection(
                    asyncio.Protocol, *lsock.getsockname(),
                    ssl=tls.client_ctx(), server_hostname="localhost",
                    ssl_handshake_timeout=0.1,
                )
        finally:
            conn, _ = lsock.accept()
            conn.close()
            lsock.close()
        return str(info.value)

    assert run(loop, main()) == (
        "SSL handshake is taking longer than 0.1 seconds: aborting the connection"
    )


@pytest.mark.parametrize("value", [0, -1])
@pytest.mark.parametrize("which", ["handshake", "shutdown"])
def test_tls_timeouts_must_be_positive(loop, tls, value, which):
    a, b = socket.socketpair()
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.create_connection(
                asyncio.Protocol, sock=a, ssl=tls.client_ctx(), server_hostname="localhost",
                **{f"ssl_{which}_timeout": value},
            ))
    finally:
        a.close()
        b.close()
    assert str(info.value) == f"ssl_{which}_timeout should be a positive number, got {value}"


def test_tls_sock_without_server_hostname(loop, tls):
    sock = socket.socket()
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.create_connection(asyncio.Protocol, sock=sock, ssl=tls.client_ctx()))
    finally:
        sock.close()
    assert str(info.value) == "You must set server_hostname when using ssl without a host"


def test_tls_over_unix_socket(loop, tls, tmp_path):
    path = str(tmp_path / "tls.sock")

    async def main():
        served = await net.recording_server(loop, path, unix=True, ssl=tls.server_ctx())
        _, cli = await loop.create_unix_connection(
            lambda: RecordingProtocol(loop), path, ssl=tls.client_ctx(),
            server_hostname="localhost",
        )
        srv = await served.first()
        cli.transport.write(b"unix+tls")
        await srv.wait_bytes(8)
        await net.close_all(cli, served)
        return bytes(srv.data), cli.transport.get_extra_info("ssl_object") is not None

    assert run(loop, main()) == (b"unix+tls", True)


def test_tls_connect_accepted_socket(loop, tls):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        connect = asyncio.ensure_future(loop.create_connection(
            lambda: RecordingProtocol(loop), *lsock.getsockname(),
            ssl=tls.client_ctx(), server_hostname="localhost",
        ))
        while True:
            try:
                lsock.setblocking(False)
                conn, _ = lsock.accept()
                break
            except BlockingIOError:
                await asyncio.sleep(0.001)
        lsock.close()
        _, srv = await loop.connect_accepted_socket(
            lambda: RecordingProtocol(loop), conn, ssl=tls.server_ctx()
        )
        _, cli = await connect
        cli.transport.write(b"accepted tls")
        await srv.wait_bytes(12)
        server_side = srv.transport.get_extra_info("ssl_object").server_side
        await net.close_all(cli, srv)
        return bytes(srv.data), server_side

    assert run(loop, main()) == (b"accepted tls", True)


def test_tls_buffered_protocol(loop, tls):
    data = net.payload(200 * 1024, seed=8)

    async def main():
        served = await net.recording_server(
            loop, ssl=tls.server_ctx(),
            factory=lambda: net.RecordingBufferedProtocol(loop, size=4096),
        )
        _, cli = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port,
            ssl=tls.client_ctx(), server_hostname="localhost",
        )
        srv = await served.first()
        cli.transport.write(data)
        await srv.wait_bytes(len(data))
        await net.close_all(cli, served)
        return bytes(srv.data), max(srv.updates)

    got, biggest = run(loop, main())
    assert got == data
    assert biggest <= 4096


# ---------------------------------------------------------------------------
# start_tls
# ---------------------------------------------------------------------------


class StartTLSServer(RecordingProtocol):
    """Plain text until it reads b"STARTTLS\n", then upgrades to TLS."""

    def __init__(self, loop, ctx):
        super().__init__(loop)
        self.ctx = ctx
        self.upgraded = None
        self.inner = RecordingProtocol(loop)

    def data_received(self, data):
        super().data_received(data)
        if bytes(self.data) == b"STARTTLS\n" and self.upgraded is None:
            self.transport.write(b"GO\n")
            self.upgraded = asyncio.ensure_future(
                self.loop.start_tls(self.transport, self.inner, self.ctx, server_side=True)
            )


def test_start_tls_upgrade_both_sides(loop, tls):
    async def main():
        served = await net.recording_server(
            loop, factory=lambda: StartTLSServer(loop, tls.server_ctx())
        )
        plain_tr, cli = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port
        )
        plain_tr.write(b"STARTTLS\n")
        await cli.wait_bytes(3)
        inner = RecordingProtocol(loop)
        tls_tr = await loop.start_tls(
            plain_tr, inner, tls.client_ctx(), server_hostname="localhost"
        )
        assert tls_tr is not plain_tr
        inner.transport = tls_tr
        srv = await served.first()
        server_tls = await srv.upgraded
        srv.inner.transport = server_tls
        tls_tr.write(b"over tls")
        await srv.inner.wait_bytes(8)
        server_tls.write(b"answer")
        await inner.wait_bytes(6)
        version = tls_tr.get_extra_info("ssl_object").version()
        server_side = server_tls.get_extra_info("ssl_object").server_side
        tls_tr.close()
        await inner.wait_lost()
        await srv.inner.wait_lost()
        await net.close_all(served.server)
        return cli, srv, inner, version, server_side

    cli, srv, inner, version, server_side = run(loop, main())
    assert bytes(cli.data) == b"GO\n"
    assert bytes(srv.inner.data) == b"over tls"
    assert bytes(inner.data) == b"answer"
    assert version.startswith("TLS") and server_side is True
    # start_tls does not call connection_made on the new protocol, and the
    # old protocols never hear about the connection again.
    assert inner.events == ["data", "eof", "lost"]
    assert srv.inner.events == ["data", "eof", "lost"]
    assert cli.events == ["made", "data"]
    assert srv.events == ["made", "data"]


def test_start_tls_rejects_non_context(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        with pytest.raises(TypeError) as info:
            await loop.start_tls(cli.transport, cli, object())
        await net.close_all(cli, srv, server)
        return str(info.value)

    msg = run(loop, main())
    assert msg.startswith("sslcontext is expected to be an instance of ssl.SSLContext, got ")


def test_start_tls_rejects_incompatible_transport(loop, tls):
    async def main():
        import os

        r, w = os.pipe()
        rf = open(r, "rb", buffering=0)
        tr, proto = await loop.connect_read_pipe(lambda: RecordingProtocol(loop), rf)
        tr_repr = repr(tr)
        try:
            with pytest.raises(TypeError) as info:
                await loop.start_tls(tr, proto, tls.client_ctx(), server_hostname="localhost")
        finally:
            tr.close()
            os.close(w)
            await proto.wait_lost()
        return str(info.value), tr_repr

    msg, tr_repr = run(loop, main())
    assert msg == f"transport {tr_repr} is not supported by start_tls()"


def test_socket_transport_is_start_tls_compatible(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        flags = (getattr(cli.transport, "_start_tls_compatible", False),
                 getattr(srv.transport, "_start_tls_compatible", False))
        await net.close_all(cli, srv, server)
        return flags

    # asyncio's start_tls() and StreamWriter.start_tls() check this attribute.
    assert run(loop, main()) == (True, True)


def test_start_tls_handshake_failure(loop, tls):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        # The peer answers the ClientHello with garbage.
        upgrade = asyncio.ensure_future(loop.start_tls(
            cli.transport, cli, tls.client_ctx(), server_hostname="localhost"
        ))
        await srv.wait(lambda p: len(p.data) > 0)
        srv.transport.write(b"this is not TLS at all\r\n" * 10)
        with pytest.raises(ssl.SSLError) as info:
            await upgrade
        await srv.wait_lost()
        await net.close_all(server)
        return info.value

    exc = run(loop, main())
    assert isinstance(exc, ssl.SSLError)

"""Faults and bad input: resets, half-close, writes after close, slow
readers, fd exhaustion during accept, garbage TLS, and exceptions raised by
protocol callbacks (which must reach the loop's exception handler)."""

import asyncio
import os
import resource
import socket
import ssl

import net_helpers as net
import pytest
from net_helpers import RecordingBufferedProtocol, RecordingProtocol, run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


async def reset_by_peer(loop, srv):
    """The server side of a tcp_pair resets the connection (RST)."""
    net.rst_on_close(srv.transport.get_extra_info("socket"))
    srv.transport.abort()
    await srv.wait_lost()


# ---------------------------------------------------------------------------
# resets and half-close
# ---------------------------------------------------------------------------


def test_reset_while_idle_reaches_connection_lost(loop):
    async def main():
        errors = net.capture_errors(loop)
        srv, cli, server = await net.tcp_pair(loop)
        await reset_by_peer(loop, srv)
        await cli.wait_lost()
        await net.close_all(server)
        return cli, errors

    cli, errors = run(loop, main())
    assert cli.events == ["made", "lost"]
    assert isinstance(cli.exc, ConnectionResetError)
    assert errors == []  # OSErrors on a transport are not reported to the handler


def test_reset_in_the_middle_of_a_write(loop):
    async def main():
        errors = net.capture_errors(loop)
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        net.write_until_buffered(cli.transport)
        await reset_by_peer(loop, srv)
        await cli.wait_lost()
        size = cli.transport.get_write_buffer_size()
        await net.close_all(server)
        return cli, errors, size

    cli, errors, size = run(loop, main())
    assert cli.events[0] == "made" and cli.events[-1] == "lost"
    assert "eof" not in cli.events
    assert isinstance(cli.exc, (ConnectionResetError, BrokenPipeError))
    assert errors == []
    assert size == 0


def test_writes_after_reset_are_dropped_with_warning(loop, caplog):
    caplog.set_level("WARNING", logger="asyncio")

    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        await reset_by_peer(loop, srv)
        await cli.wait_lost()
        counts = []
        for _ in range(7):
            cli.transport.write(b"into the void")
            counts.append(
                sum(r.getMessage() == "socket.send() raised exception." for r in caplog.records)
            )
        await net.close_all(server)
        return counts, cli.transport.get_write_buffer_size()

    counts, size = run(loop, main())
    assert counts == [0, 0, 0, 0, 1, 2, 3]
    assert size == 0


def test_writes_after_close_warn_after_threshold(loop, caplog):
    caplog.set_level("WARNING", logger="asyncio")

    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.close()
        counts = []
        for _ in range(7):
            cli.transport.write(b"late")
            counts.append(
                sum(r.getMessage() == "socket.send() raised exception." for r in caplog.records)
            )
        await cli.wait_lost()
        await srv.wait_lost()
        await net.close_all(server)
        return counts, bytes(srv.data)

    counts, got = run(loop, main())
    # close() counts as the first lost write; from the 5th on, each warns.
    assert counts == [0, 0, 0, 0, 1, 2, 3]
    assert got == b""


def test_peer_half_close_with_raw_socket(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        _, cli = await loop.create_connection(
            lambda: RecordingProtocol(loop, eof_result=True), *lsock.getsockname()
        )
        peer, _ = lsock.accept()
        lsock.close()
        peer.sendall(b"last words")
        peer.shutdown(socket.SHUT_WR)
        await cli.wait_event("eof")
        assert not cli.transport.is_closing()
        cli.transport.write(b"still talking")
        peer.settimeout(net.GUARD)
        got = b""
        while len(got) < 13:
            got += peer.recv(100)
        cli.transport.close()
        await cli.wait_lost()
        tail = peer.recv(100)
        peer.close()
        return cli, got, tail

    cli, got, tail = run(loop, main())
    assert bytes(cli.data) == b"last words"
    assert cli.events == ["made", "data", "eof", "lost"]
    assert got == b"still talking"
    assert tail == b""


def test_peer_closes_before_connection_made_runs(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        client = socket.create_connection(lsock.getsockname())
        conn, _ = lsock.accept()
        lsock.close()
        client.sendall(b"early")
        client.close()
        tr, p = await loop.connect_accepted_socket(lambda: RecordingProtocol(loop), conn)
        await p.wait_lost()
        return p

    p = run(loop, main())
    assert bytes(p.data) == b"early"
    assert p.events == ["made", "data", "eof", "lost"]


# ---------------------------------------------------------------------------
# a client that never reads
# ---------------------------------------------------------------------------


class Firehose(RecordingProtocol):
    """Writes `chunk` whenever it is allowed to, up to `total` bytes."""

    def __init__(self, loop, chunk, total):
        super().__init__(loop)
        self.chunk = chunk
        self.total = total
        self.sent = 0
        self.max_buffer = 0
        self.paused = False

    def connection_made(self, transport):
        super().connection_made(transport)
        self.pump()

    def pause_writing(self):
        super().pause_writing()
        self.paused = True

    def resume_writing(self):
        super().resume_writing()
        self.paused = False
        self.loop.call_soon(self.pump)

    def pump(self):
        while not self.paused and self.sent < self.total and not self.transport.is_closing():
            self.transport.write(self.chunk)
            self.sent += len(self.chunk)
            self.max_buffer = max(self.max_buffer, self.transport.get_write_buffer_size())
        if self.sent >= self.total and not self.transport.is_closing():
            self.transport.write_eof()


def test_client_that_never_reads_bounds_the_write_buffer(loop):
    chunk = net.payload(32 * 1024)

    async def main():
        served = await net.recording_server(
            loop, factory=lambda: Firehose(loop, chunk, 64 * 1024 * 1024)
        )
        _, cli = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port
        )
        cli.transport.pause_reading()
        srv = await served.first()
        await srv.wait_event("pause")
        await net.spin(20)
        state = (srv.paused, srv.max_buffer, srv.sent, srv.transport.get_write_buffer_size())
        # Now the client reads everything: the server resumes and finishes.
        cli.transport.resume_reading()
        await cli.wait_event("eof")
        await net.close_all(cli, served)
        return state, srv, cli

    (paused, max_buffer, sent_while_blocked, size), srv, cli = run(loop, main())
    assert paused is True
    assert sent_while_blocked < srv.total
    assert net.DEFAULT_HIGH_WATER < size <= net.DEFAULT_HIGH_WATER + len(chunk)
    assert max_buffer <= net.DEFAULT_HIGH_WATER + len(chunk)
    assert srv.pauses >= 1 and srv.resumes == srv.pauses
    assert len(cli.data) == srv.total
    assert bytes(cli.data[: len(chunk)]) == chunk


# ---------------------------------------------------------------------------
# fd exhaustion during accept
# ---------------------------------------------------------------------------


BACKLOG = 5


def test_emfile_during_accept_pauses_then_recovers(loop):
    async def main():
        errors = []
        loop.set_exception_handler(
            lambda lp, ctx: errors.append((ctx["message"], type(ctx.get("exception"))))
        )
        served = await net.recording_server(loop, backlog=BACKLOG)
        # Everything needed later is created before the fds run out.
        clients = [socket.socket() for _ in range(2)]
        for c in clients:
            c.setblocking(False)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        fillers = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(net.open_fds()) + 16, hard))
            while True:
                try:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
                except OSError:
                    break
            for c in clients:
                c.connect_ex(served.address)
            # accept() fails with EMFILE: reported once, then asyncio stops
            # accepting for a while instead of spinning on the ready socket.
            while not errors:
                await asyncio.sleep(0.005)
            first_burst = len(errors)
            for _ in range(200):
                await asyncio.sleep(0)
            errors_while_exhausted = list(errors)
            accepted_while_exhausted = len(served.protos)
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        while len(served.protos) < 2 or any(p.transport is None for p in served.protos):
            await asyncio.sleep(0.01)
        for c in clients:
            c.close()
        # and it serves new clients normally afterwards
        _, late = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port
        )
        while len(served.protos) < 3 or served.protos[2].transport is None:
            await asyncio.sleep(0.001)
        await net.close_all(late, served)
        return first_burst, errors_while_exhausted, accepted_while_exhausted, len(fillers)

    first_burst, errors, accepted, nfillers = run(loop, main())
    assert nfillers > 0
    assert accepted == 0
    assert set(errors) == {("socket.accept() out of system resource", OSError)}
    # asyncio's accept loop reports each failed accept() of the ready burst
    # (at most `backlog` of them), then stops watching the socket for a
    # second: 200 more loop iterations must not add a single attempt.
    assert 1 <= first_burst <= BACKLOG
    assert len(errors) == first_burst


# ---------------------------------------------------------------------------
# garbage TLS
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.0\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b"", b"\x00" * 4096],
    ids=["http", "truncated-record", "immediate-close", "zeros"],
)
def test_garbage_tls_handshake_server_keeps_serving(loop, garbage):
    tls = net.tls()

    async def main():
        errors = net.capture_errors(loop)
        served = await net.recording_server(loop, ssl=tls.server_ctx())
        _, bad = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port
        )
        if garbage:
            bad.transport.write(garbage)
            bad.transport.write_eof()
        else:
            bad.transport.close()
        await bad.wait_lost()
        # A good client is served normally afterwards.
        _, good = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port,
            ssl=tls.client_ctx(), server_hostname="localhost",
        )
        good.transport.write(b"fine")
        while not any(bytes(p.data) == b"fine" for p in served.protos):
            await asyncio.sleep(0.001)
        await net.close_all(good, served)
        return errors, served.protos, bad

    errors, protos, bad = run(loop, main())
    # The failed handshake is an OSError (ssl.SSLError): not reported to the
    # exception handler outside debug mode; the application protocol of the
    # bad connection never sees connection_made.
    assert errors == []
    assert [p.events for p in protos if p.events] == [["made", "data", "eof", "lost"]]
    assert bad.events[0] == "made" and bad.events[-1] == "lost"


def test_garbage_tls_in_debug_mode_is_logged(loop, caplog):
    tls = net.tls()
    loop.set_debug(True)
    caplog.set_level("DEBUG", logger="asyncio")

    async def main():
        errors = net.capture_errors(loop)
        served = await net.recording_server(loop, ssl=tls.server_ctx())
        _, bad = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port
        )
        bad.transport.write(b"GET / HTTP/1.0\r\n\r\n")
        await bad.wait_lost()
        while not errors:
            await asyncio.sleep(0.001)
        summary = summarize(errors)
        errors.clear()
        await net.close_all(served)
        return summary

    errors = run(loop, main())
    # In debug mode the failed incoming connection is reported.
    assert errors == [
        ("Error on transport creation for incoming connection", ssl.SSLError, FATAL_KEYS)
    ]
    assert any("SSL handshake failed" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------
# exceptions raised by protocol callbacks
# ---------------------------------------------------------------------------


def summarize(errors):
    return [(c["message"], type(c.get("exception")), sorted(c)) for c in errors]


FATAL_KEYS = ["exception", "message", "protocol", "transport"]


def test_data_received_exception(loop):
    class Bad(RecordingProtocol):
        def data_received(self, data):
            super().data_received(data)
            raise ZeroDivisionError("in data_received")

    async def main():
        errors = net.capture_errors(loop)
        srv, cli, server = await net.tcp_pair(loop, server_proto=lambda: Bad(loop))
        cli.transport.write(b"trigger")
        await srv.wait_lost()
        await cli.wait_lost()
        await net.close_all(server)
        ctx = errors[0]
        same = ctx["protocol"] is srv, ctx["transport"] is srv.transport
        return summarize(errors), srv, cli, *same

    errors, srv, cli, same_proto, same_transport = run(loop, main())
    assert errors == [
        ("Fatal error: protocol.data_received() call failed.", ZeroDivisionError, FATAL_KEYS)
    ]
    assert same_proto and same_transport
    assert srv.events == ["made", "data", "lost"]
    assert isinstance(srv.exc, ZeroDivisionError)
    assert cli.events[-1] == "lost"


def test_eof_received_exception(loop):
    class Bad(RecordingProtocol):
        def eof_received(self):
            super().eof_received()
            raise ZeroDivisionError("in eof_received")

    async def main():
        errors = net.capture_errors(loop)
        srv, cli, server = await net.tcp_pair(loop, server_proto=lambda: Bad(loop))
        cli.transport.write_eof()
        await srv.wait_lost()
        await cli.wait_lost()
        await net.close_all(server)
        return summarize(errors), srv

    errors, srv = run(loop, main())
    assert errors == [
        ("Fatal error: protocol.eof_received() call failed.", ZeroDivisionError, FATAL_KEYS)
    ]
    assert srv.events == ["made", "eof", "lost"]
    assert isinstance(srv.exc, ZeroDivisionError)


def test_connection_made_exception(loop):
    class Bad(RecordingProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            raise ZeroDivisionError("in connection_made")

    async def main():
        errors = net.capture_errors(loop)
        served = await net.recording_server(loop)
        tr, cli = await loop.create_connection(lambda: Bad(loop), "127.0.0.1", served.port)
        await net.spin()
        still_open = not tr.is_closing()
        srv = await served.first()
        srv.transport.write(b"still works")
        await cli.wait_bytes(11)
        await net.close_all(cli, served)
        return errors, still_open

    errors, still_open = run(loop, main())
    assert still_open
    assert [(type(c["exception"]), sorted(c)) for c in errors] == [
        (ZeroDivisionError, ["exception", "handle", "message"])
    ]
    assert errors[0]["message"].startswith("Exception in callback ")


def test_connection_lost_exception(loop):
    class Bad(RecordingProtocol):
        def connection_lost(self, exc):
            super().connection_lost(exc)
            raise ZeroDivisionError("in connection_lost")

    async def main():
        errors = net.capture_errors(loop)
        srv, cli, server = await net.tcp_pair(loop, client_proto=lambda: Bad(loop))
        cli.transport.close()
        await cli.wait_lost()
        await net.spin()
        fileno = cli.transport.get_extra_info("socket").fileno()
        await net.close_all(srv, server)
        return errors, fileno

    errors, fileno = run(loop, main())
    assert [(type(c["exception"]), sorted(c)) for c in errors] == [
        (ZeroDivisionError, ["exception", "handle", "message"])
    ]
    assert errors[0]["message"].startswith("Exception in callback ")
    assert fileno == -1  # the socket was closed all the same


@pytest.mark.parametrize("which", ["pause_writing", "resume_writing"])
def test_flow_control_callback_exception(loop, which):
    class Bad(RecordingProtocol):
        def pause_writing(self):
            super().pause_writing()
            if which == "pause_writing":
                raise ZeroDivisionError(which)

        def resume_writing(self):
            super().resume_writing()
            if which == "resume_writing":
                raise ZeroDivisionError(which)

    async def main():
        errors = net.capture_errors(loop)
        srv, cli, server = await net.tcp_pair(loop, client_proto=lambda: Bad(loop))
        srv.transport.pause_reading()
        cli.transport.set_write_buffer_limits(high=1)
        written = net.write_until_buffered(cli.transport)
        srv.transport.resume_reading()
        await cli.wait_event("resume")
        await srv.wait_bytes(len(written))
        await net.close_all(cli, srv, server)
        return summarize(errors), cli, bytes(srv.data) == written

    errors, cli, intact = run(loop, main())
    assert errors == [(f"protocol.{which}() failed", ZeroDivisionError, FATAL_KEYS)]
    assert cli.events == ["made", "pause", "resume", "lost"]
    assert cli.exc is None  # the connection survives
    assert intact


def test_non_contiguous_memoryview_write_is_fatal(loop):
    async def main():
        errors = net.capture_errors(loop)
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.write(memoryview(b"abcdef")[::2])
        await cli.wait_lost()
        await srv.wait_lost()
        await net.close_all(server)
        return summarize(errors), cli

    errors, cli = run(loop, main())
    assert errors == [("Fatal write error on socket transport", BufferError, FATAL_KEYS)]
    assert isinstance(cli.exc, BufferError)
    assert cli.events == ["made", "lost"]


# ---------------------------------------------------------------------------
# BufferedProtocol
# ---------------------------------------------------------------------------


def test_buffered_protocol_receives_everything(loop):
    data = net.payload(1024 * 1024, seed=12)

    async def main():
        srv, cli, server = await net.tcp_pair(
            loop, server_proto=lambda: RecordingBufferedProtocol(loop, size=1000)
        )
        cli.transport.write(data)
        cli.transport.write_eof()
        await srv.wait_lost()
        await cli.wait_lost()
        await net.close_all(server)
        return srv

    srv = run(loop, main())
    assert bytes(srv.data) == data
    assert max(srv.updates) <= 1000 and min(srv.updates) > 0
    assert set(srv.sizehints) == {-1}
    assert srv.events == ["made", "data", "eof", "lost"]


class BadBuffer(RecordingBufferedProtocol):
    def __init__(self, loop, mode):
        super().__init__(loop)
        self.mode = mode

    def get_buffer(self, sizehint):
        buf = super().get_buffer(sizehint)
        if self.mode == "raise":
            raise ZeroDivisionError("get_buffer")
        if self.mode == "empty":
            return bytearray()
        return buf

    def buffer_updated(self, nbytes):
        super().buffer_updated(nbytes)
        if self.mode == "updated":
            raise ZeroDivisionError("buffer_updated")


@pytest.mark.parametrize(
    "mode, message, exc_type",
    [
        ("raise", "Fatal error: protocol.get_buffer() call failed.", ZeroDivisionError),
        ("empty", "Fatal error: protocol.get_buffer() call failed.", RuntimeError),
        ("updated", "Fatal error: protocol.buffer_updated() call failed.", ZeroDivisionError),
    ],
)
def test_buffered_protocol_failures(loop, mode, message, exc_type):
    async def main():
        errors = net.capture_errors(loop)
        srv, cli, server = await net.tcp_pair(loop, server_proto=lambda: BadBuffer(loop, mode))
        cli.transport.write(b"payload")
        await srv.wait_lost()
        await cli.wait_lost()
        await net.close_all(server)
        texts = [str(c["exception"]) for c in errors]
        return summarize(errors), texts, srv

    errors, texts, srv = run(loop, main())
    assert errors == [(message, exc_type, FATAL_KEYS)]
    if mode == "empty":
        assert texts == ["get_buffer() returned an empty buffer"]
    assert isinstance(srv.exc, exc_type)
    assert srv.events[0] == "made" and srv.events[-1] == "lost"

"""TCP transports and create_connection: callbacks, writes, flow control,
extra info, argument errors."""

import array
import asyncio
import contextvars
import socket

import net_helpers as net
import pytest
from net_helpers import RecordingProtocol, run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


# ---------------------------------------------------------------------------
# callback order
# ---------------------------------------------------------------------------


def test_client_callbacks_in_order_when_server_writes_and_closes(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.write(b"hello")
        srv.transport.close()
        await cli.wait_lost()
        await srv.wait_lost()
        server.close()
        await server.wait_closed()
        return srv, cli

    srv, cli = run(loop, main())
    assert cli.events == ["made", "data", "eof", "lost"]
    assert bytes(cli.data) == b"hello"
    assert cli.exc is None
    assert srv.events == ["made", "lost"]
    assert srv.exc is None


def test_server_callbacks_in_order_when_client_writes_eof(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.write(b"abc")
        cli.transport.write_eof()
        await srv.wait_lost()
        await cli.wait_lost()
        await net.close_all(server)
        return srv, cli

    srv, cli = run(loop, main())
    # eof_received returned None: the server transport closed itself.
    assert srv.events == ["made", "data", "eof", "lost"]
    assert bytes(srv.data) == b"abc"
    assert srv.exc is None
    assert cli.events == ["made", "eof", "lost"]


def test_eof_received_true_keeps_connection_half_open(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(
            loop, server_proto=lambda: RecordingProtocol(loop, eof_result=True)
        )
        cli.transport.write(b"question")
        cli.transport.write_eof()
        await srv.wait_event("eof")
        await net.spin()
        assert not srv.transport.is_closing()
        assert not srv.lost
        srv.transport.write(b"answer after eof")
        await cli.wait_bytes(16)
        srv.transport.close()
        await cli.wait_lost()
        await srv.wait_lost()
        await net.close_all(server)
        return srv, cli

    srv, cli = run(loop, main())
    assert bytes(cli.data) == b"answer after eof"
    assert srv.events == ["made", "data", "eof", "lost"]
    assert cli.events == ["made", "data", "eof", "lost"]


@pytest.mark.parametrize("result", [None, False])
def test_eof_received_falsy_closes_transport(loop, result):
    async def main():
        srv, cli, server = await net.tcp_pair(
            loop, server_proto=lambda: RecordingProtocol(loop, eof_result=result)
        )
        cli.transport.write_eof()
        await srv.wait_lost()
        assert srv.transport.is_closing()
        await cli.wait_lost()
        await net.close_all(server)
        return srv

    srv = run(loop, main())
    assert srv.events == ["made", "eof", "lost"]


def test_connection_made_before_create_connection_returns(loop):
    async def main():
        served = await net.recording_server(loop)
        tr, proto = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port
        )
        assert proto.events == ["made"]
        assert proto.transport is tr
        assert tr.get_protocol() is proto
        await served.first()
        await net.close_all(proto, served)

    run(loop, main())


# ---------------------------------------------------------------------------
# write / writelines
# ---------------------------------------------------------------------------


async def _roundtrip(loop, send):
    """Runs `send(transport)` on the client, closes it, returns what the server got."""
    srv, cli, server = await net.tcp_pair(loop)
    send(cli.transport)
    cli.transport.close()
    await srv.wait_lost()
    await cli.wait_lost()
    await net.close_all(server)
    return bytes(srv.data), cli


@pytest.mark.parametrize(
    "data",
    [b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview"), memoryview(b"xxslicexx")[2:7]],
    ids=["bytes", "bytearray", "memoryview", "memoryview-slice"],
)
def test_write_bytes_like(loop, data):
    got, cli = run(loop, _roundtrip(loop, lambda t: t.write(data)))
    assert got == bytes(data)
    assert cli.exc is None


def test_write_memoryview_of_int_array_sends_all_bytes(loop):
    arr = array.array("i", [1, 2, 3, 0x01020304])
    got, cli = run(loop, _roundtrip(loop, lambda t: t.write(memoryview(arr))))
    assert got == arr.tobytes()


def test_write_bytearray_mutated_after_write_is_not_affected(loop):
    # Data the kernel took at once is gone; what is buffered must be a copy.
    def send(t):
        buf = bytearray(b"first")
        t.write(buf)
        buf[:] = b"XXXXX"

    got, _ = run(loop, _roundtrip(loop, send))
    assert got == b"first"


@pytest.mark.parametrize("bad", ["text", 123, None, [b"list"]], ids=["str", "int", "None", "list"])
def test_write_rejects_non_bytes(loop, bad):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        with pytest.raises(TypeError) as info:
            cli.transport.write(bad)
        await net.close_all(cli, srv, server)
        return str(info.value)

    msg = run(loop, main())
    assert msg == f"data argument must be a bytes-like object, not {type(bad).__name__!r}"


def test_write_by_keyword(loop):
    got, _ = run(loop, _roundtrip(loop, lambda t: t.write(data=b"keyword")))
    assert got == b"keyword"


WRONG_CALLS = [
    ("write", (), {}),
    ("write", (b"a", b"b"), {}),
    ("write", (), {"dat": b"x"}),
    ("write", (b"a",), {"data": b"b"}),
    ("is_closing", (1,), {}),
    ("is_closing", (), {"x": 1}),
    ("is_closing", (), {"self": 1}),
    ("close", (1,), {}),
    ("close", (), {"now": True}),
]


@pytest.mark.parametrize(("method", "args", "kwargs"), WRONG_CALLS, ids=repr)
def test_wrong_transport_call_raises_like_stock(method, args, kwargs, ferroloop_module, stock_loop):
    # The transports' write, is_closing and close are raw C methods on ferroloop
    # (no pyo3 argument handling): the stock transport's TypeError, word
    # for word.
    async def message():
        srv, cli, server = await net.tcp_pair(asyncio.get_running_loop())
        try:
            getattr(cli.transport, method)(*args, **kwargs)
        except TypeError as exc:
            return str(exc)
        finally:
            await net.close_all(cli, srv, server)
        return None

    ferro = ferroloop_module.new_event_loop()
    try:
        got = run(ferro, message())
    finally:
        ferro.close()
    expected = run(stock_loop, message())
    assert expected is not None and got == expected


def test_write_empty_is_a_no_op(loop):
    def send(t):
        t.write(b"")
        t.write(bytearray())
        assert t.get_write_buffer_size() == 0
        t.write(b"x")

    got, _ = run(loop, _roundtrip(loop, send))
    assert got == b"x"


def test_writelines_mixed_types(loop):
    parts = [b"a", bytearray(b"bc"), memoryview(b"def"), b"", b"g"]
    got, _ = run(loop, _roundtrip(loop, lambda t: t.writelines(parts)))
    assert got == b"abcdefg"


def test_writelines_generator_and_empty(loop):
    def send(t):
        t.writelines([])
        t.writelines(b"%d," % i for i in range(5))

    got, _ = run(loop, _roundtrip(loop, send))
    assert got == b"0,1,2,3,4,"


def test_writelines_rejects_str_items(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        with pytest.raises(TypeError):
            cli.transport.writelines([b"ok", "not bytes"])
        await net.close_all(cli, srv, server)

    run(loop, main())


def test_write_after_write_eof_raises(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.write_eof()
        with pytest.raises(RuntimeError) as w:
            cli.transport.write(b"late")
        with pytest.raises(RuntimeError) as wl:
            cli.transport.writelines([b"late"])
        await net.close_all(cli, srv, server)
        return str(w.value), str(wl.value)

    w, wl = run(loop, main())
    assert w == "Cannot call write() after write_eof()"
    # 3.12 gave socket transports their own writelines (sendmsg based);
    # before, the generic one joined the items and called write().
    assert wl == (
        "Cannot call writelines() after write_eof()"
        if net.PY312
        else "Cannot call write() after write_eof()"
    )


def test_write_eof_twice_and_can_write_eof(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(
            loop, server_proto=lambda: RecordingProtocol(loop, eof_result=True)
        )
        assert cli.transport.can_write_eof() is True
        cli.transport.write(b"data")
        cli.transport.write_eof()
        cli.transport.write_eof()
        await srv.wait_event("eof")
        assert not cli.transport.is_closing()
        await net.close_all(cli, srv, server)
        return srv

    srv = run(loop, main())
    assert bytes(srv.data) == b"data"
    assert srv.events == ["made", "data", "eof", "lost"]


def test_write_eof_with_buffered_data_sends_data_first(loop):
    big = net.payload(2 * 1024 * 1024)

    async def main():
        srv, cli, server = await net.tcp_pair(
            loop, server_proto=lambda: RecordingProtocol(loop, eof_result=True)
        )
        cli.transport.write(big)
        cli.transport.write_eof()
        await srv.wait_event("eof")
        await net.close_all(cli, srv, server)
        return srv

    srv = run(loop, main())
    assert bytes(srv.data) == big
    assert srv.events == ["made", "data", "eof", "lost"]


# ---------------------------------------------------------------------------
# close / abort
# ---------------------------------------------------------------------------


def test_close_flushes_buffered_data_then_connection_lost_none(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        big = net.write_until_buffered(cli.transport)
        cli.transport.close()
        assert cli.transport.is_closing()
        assert not cli.lost
        srv.transport.resume_reading()
        await srv.wait_lost()
        await cli.wait_lost()
        await net.close_all(server)
        return srv, cli, big

    srv, cli, big = run(loop, main())
    assert bytes(srv.data) == big
    assert cli.exc is None
    assert cli.events.count("lost") == 1


def test_connection_lost_is_deferred_after_close(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.close()
        # connection_lost is scheduled, never called from inside close().
        assert not cli.lost
        await cli.wait_lost()
        await srv.wait_lost()
        await net.close_all(server)
        return cli

    cli = run(loop, main())
    assert cli.events == ["made", "lost"]


def test_close_twice_and_abort_after_close_call_connection_lost_once(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.close()
        cli.transport.close()
        cli.transport.abort()
        await cli.wait_lost()
        await net.spin()
        await srv.wait_lost()
        await net.close_all(server)
        return cli

    cli = run(loop, main())
    assert cli.events == ["made", "lost"]
    assert cli.exc is None


def test_abort_discards_buffer_and_calls_connection_lost_none(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        big = net.write_until_buffered(cli.transport)
        cli.transport.abort()
        assert cli.transport.is_closing()
        await cli.wait_lost()
        assert cli.transport.get_write_buffer_size() == 0
        srv.transport.resume_reading()
        await srv.wait_lost()
        await net.close_all(server)
        return srv, cli, big

    srv, cli, big = run(loop, main())
    assert cli.exc is None
    assert cli.events == ["made", "lost"]
    assert len(srv.data) < len(big)
    assert bytes(srv.data) == big[: len(srv.data)]


def test_is_closing_false_while_open(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        states = [cli.transport.is_closing(), srv.transport.is_closing()]
        await net.close_all(cli, srv, server)
        states.append(cli.transport.is_closing())
        return states

    assert run(loop, main()) == [False, False, True]


# ---------------------------------------------------------------------------
# reading control
# ---------------------------------------------------------------------------


def test_pause_and_resume_reading(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        t = srv.transport
        assert t.is_reading() is True
        t.pause_reading()
        assert t.is_reading() is False
        t.pause_reading()  # idempotent
        cli.transport.write(b"while paused")
        await asyncio.sleep(0.05)
        await net.spin(10)
        paused_data = bytes(srv.data)
        t.resume_reading()
        assert t.is_reading() is True
        t.resume_reading()  # idempotent
        await srv.wait_bytes(12)
        await net.close_all(cli, srv, server)
        return paused_data, srv

    paused_data, srv = run(loop, main())
    assert paused_data == b""
    assert bytes(srv.data) == b"while paused"


def test_eof_not_delivered_while_paused(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        cli.transport.write(b"x")
        cli.transport.write_eof()
        await asyncio.sleep(0.05)
        await net.spin(10)
        events_paused = list(srv.events)
        srv.transport.resume_reading()
        await srv.wait_lost()
        await net.close_all(cli, server)
        return events_paused, srv

    events_paused, srv = run(loop, main())
    assert events_paused == ["made"]
    assert srv.events == ["made", "data", "eof", "lost"]


def test_is_reading_false_after_close(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.close()
        closing_state = cli.transport.is_reading()
        # pause/resume on a closing transport are silently ignored
        cli.transport.pause_reading()
        cli.transport.resume_reading()
        await net.close_all(cli, srv, server)
        return closing_state, cli.transport.is_reading()

    assert run(loop, main()) == (False, False)


# ---------------------------------------------------------------------------
# write flow control
# ---------------------------------------------------------------------------


def test_default_write_buffer_limits(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        limits = cli.transport.get_write_buffer_limits(), srv.transport.get_write_buffer_limits()
        size = cli.transport.get_write_buffer_size()
        await net.close_all(cli, srv, server)
        return limits, size

    limits, size = run(loop, main())
    assert limits == ((net.DEFAULT_LOW_WATER, net.DEFAULT_HIGH_WATER),) * 2
    assert size == 0


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"high": 1000}, (250, 1000)),
        ({"low": 100}, (100, 400)),
        ({"high": 500, "low": 20}, (20, 500)),
        ({"high": 0}, (0, 0)),
        ({"high": 7, "low": 7}, (7, 7)),
        ({}, (net.DEFAULT_LOW_WATER, net.DEFAULT_HIGH_WATER)),
    ],
)
def test_set_write_buffer_limits(loop, kwargs, expected):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        cli.transport.set_write_buffer_limits(high=1, low=0)
        cli.transport.set_write_buffer_limits(**kwargs)
        limits = cli.transport.get_write_buffer_limits()
        await net.close_all(cli, srv, server)
        return limits

    assert run(loop, main()) == expected


@pytest.mark.parametrize("kwargs", [{"high": 10, "low": 20}, {"high": -1}, {"low": -5, "high": 5}])
def test_set_write_buffer_limits_invalid(loop, kwargs):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        with pytest.raises(ValueError) as info:
            cli.transport.set_write_buffer_limits(**kwargs)
        limits = cli.transport.get_write_buffer_limits()
        await net.close_all(cli, srv, server)
        return str(info.value), limits

    msg, limits = run(loop, main())
    high = kwargs["high"]
    low = kwargs.get("low", high // 4)
    assert msg == f"high ({high!r}) must be >= low ({low!r}) must be >= 0"
    assert limits == (net.DEFAULT_LOW_WATER, net.DEFAULT_HIGH_WATER)


def test_pause_and_resume_writing_follow_the_water_marks(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        t = cli.transport
        t.set_write_buffer_limits(high=32 * 1024, low=8 * 1024)
        chunk = net.payload(16 * 1024)
        written = 0
        sizes = []
        while cli.pauses == 0:
            t.write(chunk)
            written += len(chunk)
            sizes.append(t.get_write_buffer_size())
            if written > 64 * 1024 * 1024:
                break
        assert cli.pauses == 1
        assert cli.buffer_at_pause[0] > 32 * 1024
        # Below the high-water mark no pause happened.
        assert all(s <= 32 * 1024 for s in sizes[:-1])
        # Writing more while paused does not call pause_writing again.
        t.write(chunk)
        assert cli.pauses == 1
        written += len(chunk)
        srv.transport.resume_reading()
        await cli.wait_event("resume")
        after_resume = t.get_write_buffer_size()
        await srv.wait_bytes(written)
        await net.spin()
        final_size = t.get_write_buffer_size()
        await net.close_all(cli, srv, server)
        return cli, after_resume, final_size, written, srv

    cli, after_resume, final_size, written, srv = run(loop, main())
    assert cli.events == ["made", "pause", "resume", "lost"]
    assert cli.resumes == 1
    assert after_resume <= 8 * 1024
    assert final_size == 0
    assert len(srv.data) == written


def test_reader_and_writer_handles_call_the_transport(loop):
    # The handles the loop keeps for a transport's fd show the transport's
    # own bound methods, as asyncio's do (`handle._callback.__self__`). The
    # writer's name varies: 3.12+ asyncio registers `_write_sendmsg`.
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        t = cli.transport
        fd = t.get_extra_info("socket").fileno()
        chunk = net.payload(256 * 1024)
        while cli.transport.get_write_buffer_size() == 0:
            cli.transport.write(chunk)
        reader, writer = loop._selector.get_key(fd).data
        shown = [
            (h._callback.__self__ is t, h._callback.__name__.startswith(prefix), h._args)
            for h, prefix in ((reader, "_read_ready"), (writer, "_write_"))
        ]
        srv.transport.resume_reading()
        await net.close_all(cli, srv, server)
        return shown

    assert run(loop, main()) == [(True, True, ()), (True, True, ())]


def test_pause_writing_with_zero_high_water_mark(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        cli.transport.set_write_buffer_limits(high=0)
        # Data the kernel accepts at once never reaches the buffer: no pause.
        cli.transport.write(b"small")
        assert cli.pauses == 0
        chunk = net.payload(256 * 1024)
        n = 0
        while cli.pauses == 0 and n < 400:
            cli.transport.write(chunk)
            n += 1
        srv.transport.resume_reading()
        await cli.wait_event("resume")
        await srv.wait_bytes(5 + n * len(chunk))
        await net.close_all(cli, srv, server)
        return cli

    cli = run(loop, main())
    assert cli.pauses == 1 and cli.resumes == 1
    assert cli.buffer_at_pause[0] > 0


def test_set_write_buffer_limits_can_trigger_pause_writing(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        srv.transport.pause_reading()
        chunk = net.payload(1024 * 1024)
        n = 0
        while cli.transport.get_write_buffer_size() == 0 and n < 64:
            cli.transport.write(chunk)
            n += 1
        assert cli.pauses == 0 or cli.transport.get_write_buffer_size() > net.DEFAULT_HIGH_WATER
        before = cli.pauses
        size = cli.transport.get_write_buffer_size()
        cli.transport.set_write_buffer_limits(high=size - 1 if size > 1 else 0)
        after = cli.pauses
        srv.transport.resume_reading()
        await srv.wait_bytes(n * len(chunk))
        await net.close_all(cli, srv, server)
        return before, after

    before, after = run(loop, main())
    assert after == max(before, 1)


# ---------------------------------------------------------------------------
# extra info
# ---------------------------------------------------------------------------


def test_get_extra_info_sockets_and_addresses(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        ct, st = cli.transport, srv.transport
        port = server.sockets[0].getsockname()[1]
        info = {
            "c_sockname": ct.get_extra_info("sockname"),
            "c_peername": ct.get_extra_info("peername"),
            "s_sockname": st.get_extra_info("sockname"),
            "s_peername": st.get_extra_info("peername"),
        }
        csock = ct.get_extra_info("socket")
        assert csock.family == socket.AF_INET
        assert csock.type == socket.SOCK_STREAM
        assert csock.getsockname() == info["c_sockname"]
        assert csock.getpeername() == info["c_peername"]
        assert csock.fileno() >= 0
        assert csock.gettimeout() == 0
        assert csock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert st.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        for key in ("sslcontext", "ssl_object", "peercert", "cipher", "compression", "pipe"):
            assert ct.get_extra_info(key) is None
            assert ct.get_extra_info(key, "dflt") == "dflt"
        assert ct.get_extra_info("no such key", 42) == 42
        await net.close_all(cli, srv, server)
        return info, port

    info, port = run(loop, main())
    assert info["c_peername"] == ("127.0.0.1", port)
    assert info["s_sockname"] == ("127.0.0.1", port)
    assert info["s_peername"] == info["c_sockname"]
    assert info["c_sockname"][0] == "127.0.0.1"


def test_extra_info_socket_is_not_closable_through_transport_socket(loop):
    # The transport owns the socket: the socket object in extra info must not
    # let callers steal or close it (asyncio hands out a TransportSocket).
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        tsock = cli.transport.get_extra_info("socket")
        assert not hasattr(tsock, "close")
        assert not hasattr(tsock, "detach")
        fileno = tsock.fileno()
        await net.close_all(cli, srv, server)
        return fileno, tsock.fileno()

    fileno, after = run(loop, main())
    assert fileno >= 0
    assert after == -1


def test_transport_repr_does_not_raise(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        texts = [repr(cli.transport), repr(srv.transport)]
        await net.close_all(cli, srv, server)
        texts.append(repr(cli.transport))
        return texts

    texts = run(loop, main())
    assert all(isinstance(t, str) and t for t in texts)


def test_get_and_set_protocol(loop):
    async def main():
        srv, cli, server = await net.tcp_pair(loop)
        other = RecordingProtocol(loop)
        other.transport = cli.transport
        cli.transport.set_protocol(other)
        assert cli.transport.get_protocol() is other
        srv.transport.write(b"to the new protocol")
        await other.wait_bytes(19)
        cli.transport.close()
        await other.wait_lost()
        await net.close_all(srv, server)
        return cli, other

    cli, other = run(loop, main())
    assert cli.events == ["made"]
    assert bytes(other.data) == b"to the new protocol"
    assert other.events == ["data", "lost"]


def test_data_received_runs_in_the_context_reading_started_in(loop):
    # The reader handle copies the context of the code that created the
    # connection; every read runs in that one copy, so what data_received
    # sets stays for the next read and never reaches the task.
    var = contextvars.ContextVar("var", default="unset")
    seen = []

    def on_data(proto, data):
        seen.append(var.get())
        var.set(f"read {len(seen)}")

    async def main():
        var.set("task")
        client = lambda: RecordingProtocol(loop, on_data=on_data)  # noqa: E731
        srv, cli, server = await net.tcp_pair(loop, client_proto=client)
        var.set("changed after connecting")
        for n, chunk in enumerate([b"one", b"two", b"three"]):
            srv.transport.write(chunk)
            await cli.wait(lambda _proto, n=n: len(seen) > n)
        await net.close_all(cli, srv, server)
        return var.get()

    assert run(loop, main()) == "changed after connecting"
    assert seen == ["task", "read 1", "read 2"]


# ---------------------------------------------------------------------------
# create_connection arguments
# ---------------------------------------------------------------------------


def test_create_connection_local_addr(loop):
    async def main():
        local = socket.socket()
        local.bind(("127.0.0.1", 0))
        local_port = local.getsockname()[1]
        local.close()
        served = await net.recording_server(loop)
        tr, proto = await loop.create_connection(
            lambda: RecordingProtocol(loop), "127.0.0.1", served.port,
            local_addr=("127.0.0.1", local_port),
        )
        name = tr.get_extra_info("sockname")
        await served.first()
        await net.close_all(proto, served)
        return name, local_port

    name, local_port = run(loop, main())
    assert name == ("127.0.0.1", local_port)


def test_create_connection_local_addr_in_use(loop, stock_loop, check_same_error):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:

        def attempt(lp):
            async def main():
                server = await lp.create_server(asyncio.Protocol, "127.0.0.1", 0)
                port = server.sockets[0].getsockname()[1]
                try:
                    await lp.create_connection(
                        asyncio.Protocol, "127.0.0.1", port, local_addr=busy.getsockname()
                    )
                finally:
                    server.close()
                    await server.wait_closed()

            run(lp, main())

        exc = check_same_error(attempt, loop, stock_loop)
    finally:
        busy.close()
    assert isinstance(exc, OSError)


def test_create_connection_with_sock(loop):
    async def main():
        served = await net.recording_server(loop)
        sock = socket.socket()
        sock.connect(served.address)
        assert sock.getblocking()
        tr, proto = await loop.create_connection(lambda: RecordingProtocol(loop), sock=sock)
        same = tr.get_extra_info("socket").fileno() == sock.fileno()
        blocking = sock.getblocking()
        await served.first()
        await net.close_all(proto, served)
        return same, blocking, sock.fileno()

    same, blocking, fileno_after = run(loop, main())
    assert same
    assert blocking is False
    assert fileno_after == -1  # the transport closed the socket it was given


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"host": "127.0.0.1", "port": 1, "sock": True},
            "host/port and sock can not be specified at the same time",
        ),
        ({}, "host and port was not specified and no sock specified"),
        (
            {"host": "127.0.0.1", "port": 1, "ssl_handshake_timeout": 1.0},
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        (
            {"host": "127.0.0.1", "port": 1, "server_hostname": "x"},
            "server_hostname is only meaningful with ssl",
        ),
        (
            {"sock": True, "ssl": True},
            "You must set server_hostname when using ssl without a host",
        ),
        (
            {"host": "127.0.0.1", "port": 1, "ssl_shutdown_timeout": 1.0},
            "ssl_shutdown_timeout is only meaningful with ssl",
        ),
    ],
    ids=["sock-and-host", "nothing", "handshake-timeout", "server-hostname", "ssl-sock",
         "shutdown-timeout"],
)
def test_create_connection_argument_errors(loop, kwargs, message):
    kwargs = dict(kwargs)
    sock = None
    if kwargs.get("sock"):
        sock = kwargs["sock"] = socket.socket()
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.create_connection(asyncio.Protocol, **kwargs))
    finally:
        if sock is not None:
            sock.close()
    assert str(info.value) == message


def test_create_connection_rejects_datagram_sock(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.create_connection(asyncio.Protocol, sock=sock))
        assert str(info.value) == f"A Stream Socket was expected, got {sock!r}"
    finally:
        sock.close()


def test_create_connection_happy_eyeballs_and_interleave(loop):
    async def main():
        served = await net.recording_server(loop)
        port = served.port
        tr, proto = await loop.create_connection(
            lambda: RecordingProtocol(loop), "localhost", port,
            happy_eyeballs_delay=0.25, interleave=1,
        )
        peer = tr.get_extra_info("peername")
        await served.first()
        await net.close_all(proto, served)
        return peer, port

    peer, port = run(loop, main())
    assert peer == ("127.0.0.1", port)


def test_create_connection_happy_eyeballs_refused(loop, stock_loop, check_same_error):
    with net.refusing_port() as port:

        def attempt(lp):
            run(lp, lp.create_connection(
                asyncio.Protocol, "127.0.0.1", port, happy_eyeballs_delay=0.1
            ))

        exc = check_same_error(attempt, loop, stock_loop)
    assert isinstance(exc, ConnectionRefusedError)


def test_create_connection_refused_same_error(loop, stock_loop, check_same_error):
    with net.refusing_port() as port:

        def attempt(lp):
            run(lp, lp.create_connection(asyncio.Protocol, "127.0.0.1", port))

        exc = check_same_error(attempt, loop, stock_loop)
    assert isinstance(exc, ConnectionRefusedError)
    assert exc.errno is not None


@pytest.mark.skipif(not net.PY312, reason="all_errors was added in 3.12")
def test_create_connection_all_errors_raises_exception_group(loop):
    with net.refusing_port() as port:
        with pytest.raises(ExceptionGroup) as info:
            run(loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", port, all_errors=True))
    group = info.value
    assert str(group).startswith("create_connection failed")
    assert [type(e) for e in group.exceptions] == [ConnectionRefusedError]


def test_create_connection_ipv6_loopback(loop):
    async def main():
        served = await net.recording_server(loop, "::1")
        port = served.port
        tr, proto = await loop.create_connection(lambda: RecordingProtocol(loop), "::1", port)
        info = tr.get_extra_info("peername"), tr.get_extra_info("socket").family
        await served.first()
        await net.close_all(proto, served)
        return info, port

    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6")
    (peer, family), port = run(loop, main())
    assert family == socket.AF_INET6
    assert peer[:2] == ("::1", port)


@pytest.mark.parametrize(
    "host, port, family",
    [("127.0.0.1", 80, socket.AF_INET6), ("::1", 80, socket.AF_INET),
     ("127.0.0.1", "no-such-service-name", 0)],
    ids=["v4-host-v6-family", "v6-host-v4-family", "bad-service"],
)
def test_create_connection_unresolvable_same_error(
    loop, stock_loop, check_same_error, host, port, family
):
    # Resolution failures that never leave this machine (no DNS query).
    def attempt(lp):
        run(lp, lp.create_connection(asyncio.Protocol, host, port, family=family))

    exc = check_same_error(attempt, loop, stock_loop)
    assert isinstance(exc, socket.gaierror)


def test_transport_collected_unclosed_warns_and_closes_its_socket(loop):
    # A transport dropped without close() (and not reading, so the loop
    # holds nothing of it) warns when collected and closes its socket, as
    # asyncio's __del__ does; ferroloop's __del__ is Rust that calls Python
    # only in this case.
    import gc
    import warnings

    async def main():
        served = await net.recording_server(loop)
        # Only the protocol is kept: it is the transport's last referrer.
        cli = (await loop.create_connection(lambda: RecordingProtocol(loop),
                                            *served.address))[1]
        srv = await served.first()
        cli.transport.pause_reading()
        text = repr(cli.transport)
        cli.transport = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del cli
            gc.collect()
        await srv.wait_lost()
        await net.close_all(served)
        return [str(w.message) for w in caught if w.category is ResourceWarning], text

    messages, text = run(loop, main())
    # The socket, in the same garbage cycle, may warn of itself too.
    assert f"unclosed transport {text}" in messages
    assert all(m.startswith("unclosed <socket.socket") for m in messages if "transport" not in m)

"""Datagram endpoints: create_datagram_endpoint and datagram transports."""

import asyncio
import socket

import net_helpers as net
import pytest
from net_helpers import RecordingDatagramProtocol, run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


async def endpoint(loop, **kw):
    return await loop.create_datagram_endpoint(lambda: RecordingDatagramProtocol(loop), **kw)


async def close_endpoints(*protos):
    for p in protos:
        p.transport.close()
    for p in protos:
        await p.wait_lost()


def test_local_addr_receives_datagrams_with_sender_address(loop):
    async def main():
        tr, server = await endpoint(loop, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        ctr, client = await endpoint(loop, local_addr=("127.0.0.1", 0))
        ctr.sendto(b"one", addr)
        ctr.sendto(bytearray(b"two"), addr)
        ctr.sendto(memoryview(b"three"), addr)
        await server.wait(lambda p: len(p.datagrams) == 3)
        sender = ctr.get_extra_info("sockname")
        await close_endpoints(server, client)
        return server, sender, addr

    server, sender, addr = run(loop, main())
    assert server.datagrams == [(b"one", sender), (b"two", sender), (b"three", sender)]
    assert server.events == ["made", "datagram", "datagram", "datagram", "lost"]
    assert server.exc is None
    assert addr[0] == "127.0.0.1" and addr[1] > 0


def test_remote_addr_sendto_without_address(loop):
    async def main():
        str_, server = await endpoint(loop, local_addr=("127.0.0.1", 0))
        addr = str_.get_extra_info("sockname")
        tr, client = await endpoint(loop, remote_addr=addr)
        assert tr.get_extra_info("peername") == addr
        tr.sendto(b"connected")
        tr.sendto(b"explicit same address", addr)
        await server.wait(lambda p: len(p.datagrams) == 2)
        # the server answers; the connected client receives it
        str_.sendto(b"reply", tr.get_extra_info("sockname"))
        await client.wait(lambda p: p.datagrams)
        await close_endpoints(server, client)
        return server.datagrams, client.datagrams, addr

    got, replies, addr = run(loop, main())
    assert [d for d, _ in got] == [b"connected", b"explicit same address"]
    assert replies == [(b"reply", addr)]


def test_remote_addr_rejects_other_address(loop):
    async def main():
        tr, client = await endpoint(loop, remote_addr=("127.0.0.1", 9))
        with pytest.raises(ValueError) as info:
            tr.sendto(b"x", ("127.0.0.1", 10))
        await close_endpoints(client)
        return str(info.value)

    assert run(loop, main()) == "Invalid address: must be None or ('127.0.0.1', 9)"


@pytest.mark.parametrize("bad", ["text", 5, None])
def test_sendto_rejects_non_bytes(loop, bad):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        with pytest.raises(TypeError) as info:
            tr.sendto(bad, tr.get_extra_info("sockname"))
        await close_endpoints(p)
        return str(info.value)

    assert run(loop, main()) == (
        f"data argument must be a bytes-like object, not {type(bad).__name__!r}"
    )


def test_sendto_empty_datagram(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        tr.sendto(b"", addr)
        tr.sendto(b"marker", addr)
        await p.wait(lambda p: any(d == b"marker" for d, _ in p.datagrams))
        await close_endpoints(p)
        return [d for d, _ in p.datagrams]

    # Up to 3.12 asyncio silently dropped empty datagrams; 3.13 sends them.
    assert run(loop, main()) == ([b"", b"marker"] if net.PY313 else [b"marker"])


def test_large_datagram_integrity(loop):
    data = net.payload(60000, seed=5)

    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr.sendto(data, tr.get_extra_info("sockname"))
        await p.wait(lambda p: p.datagrams)
        await close_endpoints(p)
        return p.datagrams[0][0]

    assert run(loop, main()) == data


def test_datagram_extra_info_and_buffer(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        sock = tr.get_extra_info("socket")
        info = (
            sock.family,
            sock.type,
            tr.get_extra_info("sockname") == sock.getsockname(),
            tr.get_extra_info("peername"),
            tr.get_write_buffer_size(),
            tr.is_closing(),
            tr.get_protocol() is p,
        )
        await close_endpoints(p)
        return info, tr.is_closing()

    info, closing = run(loop, main())
    assert info == (socket.AF_INET, socket.SOCK_DGRAM, True, None, 0, False, True)
    assert closing is True


def test_connection_made_before_endpoint_returns_and_lost_after_close(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        made = list(p.events)
        tr.close()
        assert tr.is_closing()
        not_yet = p.lost
        await p.wait_lost()
        tr.close()  # second close: nothing more
        await net.spin()
        return made, not_yet, p.events

    made, not_yet, events = run(loop, main())
    assert made == ["made"]
    assert not_yet is False
    assert events == ["made", "lost"]


def test_abort_calls_connection_lost_none(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr.abort()
        await p.wait_lost()
        return p.exc, p.events

    assert run(loop, main()) == (None, ["made", "lost"])


def test_error_received_for_refused_connected_datagram(loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
            closed.bind(("127.0.0.1", 0))
            addr = closed.getsockname()
        tr, p = await endpoint(loop, remote_addr=addr)
        for _ in range(3):
            tr.sendto(b"nobody listens")
            await asyncio.sleep(0.01)
            if p.errors:
                break
        await p.wait(lambda p: p.errors)
        still_open = not tr.is_closing()
        await close_endpoints(p)
        return p.errors, still_open, p.events

    errors, still_open, events = run(loop, main())
    assert isinstance(errors[0], ConnectionRefusedError)
    # error_received does not close the endpoint
    assert still_open
    assert events[0] == "made" and events[-1] == "lost" and "error" in events


def test_reuse_port_two_endpoints(loop):
    async def main():
        tr1, p1 = await endpoint(loop, local_addr=("127.0.0.1", 0), reuse_port=True)
        port = tr1.get_extra_info("sockname")[1]
        tr2, p2 = await endpoint(loop, local_addr=("127.0.0.1", port), reuse_port=True)
        opts = [
            t.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            for t in (tr1, tr2)
        ]
        same = tr2.get_extra_info("sockname")[1] == port
        await close_endpoints(p1, p2)
        return [bool(o) for o in opts], same

    assert run(loop, main()) == ([True, True], True)


@pytest.mark.parametrize("allow", [True, False])
def test_allow_broadcast_sets_option(loop, allow):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0), allow_broadcast=allow)
        opt = tr.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        await close_endpoints(p)
        return bool(opt)

    assert run(loop, main()) is allow


def test_reuse_address_is_not_a_parameter(loop):
    # Removed in 3.11 (it was a security problem with SO_REUSEADDR on UDP).
    with pytest.raises(TypeError) as info:
        run(loop, loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), reuse_address=True
        ))
    assert "unexpected keyword argument 'reuse_address'" in str(info.value)


def test_given_sock(loop):
    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        tr, p = await endpoint(loop, sock=sock)
        same = tr.get_extra_info("socket").fileno() == sock.fileno()
        blocking = sock.getblocking()
        tr.sendto(b"self", sock.getsockname())
        await p.wait(lambda p: p.datagrams)
        await close_endpoints(p)
        return same, blocking, p.datagrams[0][0], sock.fileno()

    assert run(loop, main()) == (True, False, b"self", -1)


def test_given_stream_sock_rejected(loop):
    sock = socket.socket()
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sock))
        # 3.13 reworded the message (the check is on SOCK_STREAM, not UDP).
        what = "A datagram socket" if net.PY313 else "A UDP Socket"
        assert str(info.value) == f"{what} was expected, got {sock!r}"
    finally:
        sock.close()


def test_given_sock_with_modifiers_rejected(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(ValueError) as info:
            run(loop, loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, sock=sock, local_addr=("127.0.0.1", 0),
                reuse_port=True,
            ))
    finally:
        sock.close()
    assert str(info.value) == (
        "socket modifier keyword arguments can not be used when sock is specified. "
        "(local_addr=('127.0.0.1', 0), reuse_port=True)"
    )


def test_no_address_and_no_family_rejected(loop):
    with pytest.raises(ValueError) as info:
        run(loop, loop.create_datagram_endpoint(asyncio.DatagramProtocol))
    assert str(info.value) == "unexpected address family"


def test_address_must_be_a_pair(loop):
    with pytest.raises(TypeError) as info:
        run(loop, loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr="127.0.0.1"
        ))
    assert str(info.value) == "2-tuple is expected"


def test_family_only_creates_unbound_endpoint(loop):
    async def main():
        rtr, receiver = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr, p = await endpoint(loop, family=socket.AF_INET)
        tr.sendto(b"from unbound", rtr.get_extra_info("sockname"))
        await receiver.wait(lambda r: r.datagrams)
        await close_endpoints(receiver, p)
        return receiver.datagrams[0][0]

    assert run(loop, main()) == b"from unbound"


def test_unix_datagram_endpoints(loop, tmp_path):
    server_path = str(tmp_path / "dgram.sock")
    client_path = str(tmp_path / "client.sock")

    async def main():
        tr, server = await endpoint(loop, local_addr=server_path, family=socket.AF_UNIX)
        ctr, client = await endpoint(
            loop, local_addr=client_path, remote_addr=server_path, family=socket.AF_UNIX
        )
        ctr.sendto(b"unix datagram")
        await server.wait(lambda p: p.datagrams)
        tr.sendto(b"answer", client_path)
        await client.wait(lambda p: p.datagrams)
        await close_endpoints(server, client)
        return server.datagrams, client.datagrams

    got, replies = run(loop, main())
    assert got == [(b"unix datagram", client_path)]
    assert replies == [(b"answer", server_path)]


def test_unix_datagram_requires_string_address(loop):
    with pytest.raises(TypeError) as info:
        run(loop, loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("x", 1), family=socket.AF_UNIX
        ))
    assert str(info.value) == "string is expected"


def test_datagram_received_exception_reaches_handler(loop):
    class Boom(RecordingDatagramProtocol):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            raise ZeroDivisionError("boom")

    async def main():
        errors = net.capture_errors(loop)
        tr, p = await loop.create_datagram_endpoint(
            lambda: Boom(loop), local_addr=("127.0.0.1", 0)
        )
        addr = tr.get_extra_info("sockname")
        tr.sendto(b"first", addr)
        await p.wait(lambda p: len(p.datagrams) == 1)
        await net.spin()
        tr.sendto(b"second", addr)
        await p.wait(lambda p: len(p.datagrams) == 2)
        await net.spin()
        still_open = not tr.is_closing()
        await close_endpoints(p)
        return errors, still_open

    errors, still_open = run(loop, main())
    assert still_open  # the endpoint survives the callback's exception
    assert len(errors) == 2
    assert all(isinstance(c.get("exception"), ZeroDivisionError) for c in errors)


def test_pause_writing_not_triggered_by_immediate_sends(loop):
    async def main():
        rtr, receiver = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr, p = await endpoint(loop, remote_addr=rtr.get_extra_info("sockname"))
        for i in range(50):
            tr.sendto(b"%d" % i)
        await receiver.wait(lambda r: len(r.datagrams) == 50)
        size = tr.get_write_buffer_size()
        await close_endpoints(receiver, p)
        return size, [d for d, _ in receiver.datagrams]

    size, data = run(loop, main())
    assert size == 0
    assert data == [b"%d" % i for i in range(50)]


def test_connected_sendto_after_close_warns_after_threshold(loop, caplog):
    async def main():
        tr, p = await endpoint(loop, remote_addr=("127.0.0.1", 9))
        tr.abort()
        await p.wait_lost()
        counts = []
        for _ in range(6):
            tr.sendto(b"late")
            counts.append(
                sum(r.getMessage() == "socket.send() raised exception." for r in caplog.records)
            )
        return counts

    caplog.set_level("WARNING", logger="asyncio")
    # abort() counts as the first lost write; from the 5th on, each warns.
    assert run(loop, main()) == [0, 0, 0, 0, 1, 2]

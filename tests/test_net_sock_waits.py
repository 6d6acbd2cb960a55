"""The waits of sock_recv, sock_recv_into, sock_sendall and sock_accept.

ferroloop registers these waits one-shot and leaves a socket parked in the
poller after a wait (src/core/registration.rs); asyncio adds and removes a
level-triggered reader each time. Nothing of that may show: these scenarios
(spurious wake-ups, sockets closed while or after waiting, fd numbers reused,
duplicated sockets, add_reader/remove_reader on the same fd, cancellation,
both directions waiting at once) must behave as on the stock loop.
"""

import asyncio
import os
import socket
import time

import net_helpers as net
import pytest
from net_helpers import run


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


def socketpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


@pytest.fixture
def pair():
    """A connected non-blocking Unix stream pair (wakes the peer at once, so
    readiness order is deterministic)."""
    a, b = socketpair()
    yield a, b
    a.close()
    b.close()


def socket_numbered(fd):
    """A new connected pair (new, peer) where `new` has the fd number `fd`,
    whether that number is free or names another file (which it replaces,
    as a number reused after a close would)."""
    c, d = socketpair()
    if c.fileno() == fd:
        return c, d
    if d.fileno() == fd:
        return d, c
    os.dup2(c.fileno(), fd)
    c.close()
    new = socket.socket(fileno=fd)
    new.setblocking(False)
    return new, d


def watched(loop, fd):
    """The (reader, writer) handles the loop shows for `fd`, or None."""
    try:
        key = loop._selector.get_key(fd)
    except KeyError:
        return None
    return key.data


def iterations(loop, seconds):
    """How many loop iterations pass in `seconds` with nothing to do: 1 or
    2 for a loop that sleeps in its poller, thousands for one that spins."""
    deadline = time.monotonic() + seconds
    loop.call_at(loop.time() + seconds, lambda: None)
    count = 0
    while time.monotonic() < deadline:
        loop._run_once()
        count += 1
    return count


def test_many_waits_in_a_row(loop, pair):
    a, b = pair

    async def main():
        got = []
        for i in range(50):
            buf = bytearray(10)
            recv = asyncio.ensure_future(
                loop.sock_recv(b, 10) if i % 2 else loop.sock_recv_into(b, buf)
            )
            await net.spin(2)
            assert not recv.done()
            a.send(b"%d" % i)
            result = await recv
            got.append(result if i % 2 else bytes(buf[:result]))
            assert watched(loop, b.fileno()) is None
        return got

    assert run(loop, main()) == [b"%d" % i for i in range(50)]


def test_spurious_wake_up_waits_on(loop, pair):
    # Data arrives for a waiting sock_recv, but a reader of another socket,
    # run first in the same iteration, takes it: the wait finds nothing and
    # must still see the data that comes next.
    a, b = pair
    c, d = socketpair()
    stolen = []

    def steal():
        loop.remove_reader(c)
        stolen.append(b.recv(100))

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        loop.add_reader(c, steal)
        d.send(b"!")  # c is ready first, so its reader runs first
        a.send(b"first")
        await asyncio.sleep(0.05)
        assert stolen == [b"first"]
        assert not recv.done()
        a.send(b"second")
        return await recv

    try:
        assert run(loop, main()) == b"second"
    finally:
        c.close()
        d.close()


def test_spurious_wake_up_of_sock_accept(loop):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    lsock.setblocking(False)
    c, d = socketpair()
    stolen = []
    clients = []

    def steal():
        loop.remove_reader(c)
        stolen.append(lsock.accept()[0])

    async def main():
        accept = asyncio.ensure_future(loop.sock_accept(lsock))
        await net.spin()
        loop.add_reader(c, steal)
        d.send(b"!")
        clients.append(socket.create_connection(lsock.getsockname()))
        await asyncio.sleep(0.05)
        assert len(stolen) == 1
        assert not accept.done()
        clients.append(socket.create_connection(lsock.getsockname()))
        conn, addr = await accept
        conn.close()
        return addr == clients[1].getsockname()

    try:
        assert run(loop, main()) is True
    finally:
        for s in [lsock, c, d, *stolen, *clients]:
            s.close()


def test_close_while_waiting_then_number_reused(loop):
    # As on the stock loop: closing a socket does not wake its wait (the
    # poller forgets a closed socket); cancelling it cleans up, and a new
    # socket that gets the same fd number works normally.
    a, b = socketpair()
    fd = b.fileno()

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        b.close()
        done, _ = await asyncio.wait([recv], timeout=0.05)
        assert not done
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        assert watched(loop, fd) is None
        # The same number, another socket.
        new, d = socket_numbered(fd)
        try:
            recv = asyncio.ensure_future(loop.sock_recv(new, 100))
            await net.spin()
            d.send(b"new socket")
            return await recv
        finally:
            new.close()
            d.close()

    try:
        assert run(loop, main()) == b"new socket"
    finally:
        a.close()


def test_close_right_after_a_wait_then_number_reused(loop):
    a, b = socketpair()
    fd = b.fileno()

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        a.send(b"one")
        assert await recv == b"one"
        b.close()
        a.close()
        new, d = socket_numbered(fd)
        try:
            got = []
            for word in (b"two", b"three"):
                recv = asyncio.ensure_future(loop.sock_recv(new, 100))
                await net.spin()
                d.send(word)
                got.append(await recv)
            return got
        finally:
            new.close()
            d.close()

    assert run(loop, main()) == [b"two", b"three"]


def test_duplicated_socket_closed_after_a_wait(loop):
    # A forked child (here: a dup) keeps the socket open after the program
    # closes it, so the poller may keep its registration: it must never be
    # reported, neither to a new socket with the same fd number nor as a
    # busy loop, whatever happens to the old socket (data, hang-up).
    a, b = socketpair()
    fd = b.fileno()
    keep = b.dup()
    calls = []

    async def wait_once():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        a.send(b"one")
        assert await recv == b"one"
        await net.spin()

    run(loop, wait_once())
    b.detach()  # closed by the replacement
    new, d = socket_numbered(fd)
    try:
        loop.add_reader(new, lambda: calls.append(new.recv(100)))
        a.send(b"to the old socket")
        assert iterations(loop, 0.1) < 10
        a.close()  # hang-up of the old socket
        assert iterations(loop, 0.1) < 10
        assert calls == []
        d.send(b"to the new socket")
        net.settle(loop)
        assert calls == [b"to the new socket"]
        assert loop.remove_reader(new) is True

        async def wait_new():
            recv = asyncio.ensure_future(loop.sock_recv(new, 100))
            await net.spin()
            d.send(b"again")
            return await recv

        assert run(loop, wait_new()) == b"again"
    finally:
        new.close()
        d.close()
        keep.close()


def test_duplicated_socket_closed_while_waiting(loop, loop_kind):
    a, b = socketpair()
    keep = b.dup()

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        b.close()
        a.send(b"data")
        # The registration outlives the fd; what the wait does then is up
        # to the kernel (stock asyncio: it fails with EBADF): it must end
        # or be cancellable, and the loop must not spin afterwards.
        done, _ = await asyncio.wait([recv], timeout=0.05)
        recv.cancel()
        try:
            await recv
        except (asyncio.CancelledError, OSError):
            pass

    try:
        run(loop, main())
        a.close()
        if loop_kind == "ferroloop":
            # The stock loop spins here: its level-triggered registration
            # outlives the fd, and every poll reports the hang-up.
            assert iterations(loop, 0.1) < 10
    finally:
        a.close()
        keep.close()


def test_add_reader_after_a_wait_is_level_triggered(loop, pair):
    a, b = pair
    calls = []

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        a.send(b"one")
        assert await recv == b"one"
        loop.add_reader(b, calls.append, "ready")
        a.send(b"two")
        await asyncio.sleep(0.01)
        await net.spin()
        # Called on every iteration while readable, the data left unread.
        assert len(calls) >= 2
        assert watched(loop, b.fileno())[0] is not None
        assert loop.remove_reader(b) is True
        assert loop.remove_reader(b) is False
        assert watched(loop, b.fileno()) is None
        n = len(calls)
        await net.spin()
        assert len(calls) == n
        return await loop.sock_recv(b, 100)

    assert run(loop, main()) == b"two"


def test_add_reader_replaces_a_waiting_sock_recv(loop, pair):
    a, b = pair
    calls = []

    def on_readable():
        calls.append(b.recv(100))
        loop.remove_reader(b)

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        reader, _ = watched(loop, b.fileno())
        loop.add_reader(b, on_readable)
        assert reader.cancelled()
        a.send(b"to the reader")
        await asyncio.sleep(0.01)
        await net.spin()
        assert calls == [b"to the reader"]
        assert not recv.done()
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        assert watched(loop, b.fileno()) is None

    run(loop, main())


def test_remove_reader_of_a_waiting_sock_recv(loop, pair):
    a, b = pair

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        assert loop.remove_reader(b) is True
        a.send(b"unseen")
        done, _ = await asyncio.wait([recv], timeout=0.05)
        assert not done
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        return await loop.sock_recv(b, 100)

    assert run(loop, main()) == b"unseen"


def test_timed_out_waits_then_data(loop, pair):
    a, b = pair

    async def main():
        for _ in range(5):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(loop.sock_recv(b, 100), 0.005)
            assert watched(loop, b.fileno()) is None
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        a.send(b"finally")
        return await recv

    assert run(loop, main()) == b"finally"


def test_recv_and_sendall_waiting_on_one_socket(loop, pair):
    # Both directions wait at once; one readiness must not swallow the
    # other's.
    a, b = pair
    data = net.payload(4 * 1024 * 1024, seed=5)

    async def main():
        send = asyncio.ensure_future(loop.sock_sendall(a, data))
        recv = asyncio.ensure_future(loop.sock_recv(a, 100))
        await net.spin()
        assert not send.done() and not recv.done()
        reader, writer = watched(loop, a.fileno())
        assert reader is not None and writer is not None
        b.send(b"ping")
        assert await recv == b"ping"
        got = bytearray()
        while len(got) < len(data):
            chunk = await loop.sock_recv(b, 1 << 20)
            assert chunk
            got += chunk
        await send
        # Again, readiness for reading arriving while the writer waits.
        recv = asyncio.ensure_future(loop.sock_recv(a, 100))
        send = asyncio.ensure_future(loop.sock_sendall(a, data))
        await net.spin()
        b.send(b"pong")
        assert await recv == b"pong"
        got2 = bytearray()
        while len(got2) < len(data):
            got2 += await loop.sock_recv(b, 1 << 20)
        await send
        return bytes(got), bytes(got2)

    assert run(loop, main()) == (data, data)


def test_transport_after_sock_recv_on_the_same_socket(loop):
    # A socket used with sock_recv, then handed to a transport, then closed.
    async def main():
        a, b = socketpair()
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        a.send(b"hello")
        assert await recv == b"hello"
        proto = net.RecordingProtocol(loop)
        transport, _ = await loop.connect_accepted_socket(lambda: proto, b)
        a.send(b"via transport")
        await proto.wait_bytes(len(b"via transport"))
        transport.close()
        await proto.wait_lost()
        a.close()
        return bytes(proto.data)

    assert run(loop, main()) == b"via transport"

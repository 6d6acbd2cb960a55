"""Edges of the one-call sock_recv / sock_recv_into / sock_sendall.

On ferroloop these try at once and start their wait in one Rust call; the
wait ends itself when it completes its future, and the awaiting coroutine
ends it when the future is cancelled (asyncio uses a done callback for
both). These scenarios pin down that nothing of that shows: concurrent
waits on one socket, a coroutine closed while waiting, a bytearray held by
a pending send, other bytes-like objects, errors on the wait path.
"""

import array
import asyncio
import errno
import socket

import net_helpers as net
import pytest
from net_helpers import run
from test_net_sock_waits import pair, watched  # noqa: F401  (pair: fixture)


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


def test_second_recv_replaces_first_then_first_cancelled(loop, pair):  # noqa: F811
    # The second wait replaces the first (its handle is cancelled, its
    # future stays pending); cancelling the first must not end the second.
    a, b = pair

    async def main():
        first = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        second = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert watched(loop, b.fileno()) is not None
        a.send(b"for the second")
        got = await second
        assert watched(loop, b.fileno()) is None
        return got

    assert run(loop, main()) == b"for the second"


def test_coroutine_closed_while_waiting(loop, pair):  # noqa: F811
    # Closing the coroutine leaves the wait as asyncio leaves it: installed
    # until its (orphaned) future completes.
    a, b = pair

    async def main():
        coro = loop.sock_recv(b, 100)
        fut = coro.send(None)
        coro.close()
        assert not fut.done()
        assert watched(loop, b.fileno()) is not None
        a.send(b"orphan")
        for _ in range(100):
            if fut.done():
                break
            await asyncio.sleep(0.001)
        await net.spin()
        assert watched(loop, b.fileno()) is None
        return fut.result()

    assert run(loop, main()) == b"orphan"


def test_recv_error_on_the_wait_path(loop):
    # The peer resets the connection while sock_recv waits: the error
    # completes the wait, which is gone afterwards.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    a = socket.create_connection(lsock.getsockname())
    b, _ = lsock.accept()
    b.setblocking(False)

    async def main():
        recv = asyncio.ensure_future(loop.sock_recv(b, 100))
        await net.spin()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        a.close()
        with pytest.raises(ConnectionResetError):
            await recv
        assert watched(loop, b.fileno()) is None

    try:
        run(loop, main())
    finally:
        for s in (lsock, a, b):
            s.close()


def test_pending_sendall_holds_a_bytearray(loop, pair):  # noqa: F811
    a, b = pair
    data = bytearray(net.payload(8 * 1024 * 1024, seed=3))

    async def main():
        send = asyncio.ensure_future(loop.sock_sendall(a, data))
        await net.spin()
        assert not send.done()
        with pytest.raises(BufferError):
            data.extend(b"more")
        got = bytearray()
        while len(got) < len(data):
            got += await loop.sock_recv(b, 1 << 20)
        await send
        data.extend(b"more")  # released once the send is over
        return bytes(got)

    expected = bytes(data)
    assert run(loop, main()) == expected


@pytest.mark.parametrize(
    "make",
    [memoryview, lambda d: array.array("B", d), lambda d: memoryview(d)[1:]],
    ids=["memoryview", "array", "slice"],
)
def test_sendall_other_bytes_like(loop, pair, make):  # noqa: F811
    a, b = pair
    data = net.payload(3 * 1024 * 1024, seed=4)
    obj = make(data)
    expected = bytes(obj)

    async def main():
        send = asyncio.ensure_future(loop.sock_sendall(a, obj))
        got = bytearray()
        while len(got) < len(expected):
            got += await loop.sock_recv(b, 1 << 20)
        assert await send is None
        return bytes(got)

    assert run(loop, main()) == expected


def test_recv_into_waits_then_fills(loop, pair):  # noqa: F811
    a, b = pair

    async def main():
        buf = bytearray(16)
        recv = asyncio.ensure_future(loop.sock_recv_into(b, buf))
        await net.spin()
        assert not recv.done()
        a.send(b"filled")
        n = await recv
        assert watched(loop, b.fileno()) is None
        a.shutdown(socket.SHUT_WR)
        eof = await loop.sock_recv_into(b, buf)
        return bytes(buf[:n]), eof

    assert run(loop, main()) == (b"filled", 0)


def test_recv_on_a_closed_socket(loop, pair):  # noqa: F811
    a, b = pair
    b.close()

    async def main():
        with pytest.raises(OSError) as info:
            await loop.sock_recv(b, 100)
        return info.value.errno

    assert run(loop, main()) == errno.EBADF


def test_drained_socket_with_data_already_there(loop, pair):  # noqa: F811
    # After a read that drained the socket, ferroloop's next read waits
    # before trying; data that is already queued must still come back, in
    # order, and a read of 0 bytes must still answer at once.
    a, b = pair

    async def main():
        got = []
        for i in range(3):
            recv = asyncio.ensure_future(loop.sock_recv(b, 100))
            await net.spin()
            a.send(b"wait %d" % i)
            got.append(await recv)  # drained: 6 of 100 bytes
            a.send(b"queued %d" % i)
            await asyncio.sleep(0.001)
            assert await loop.sock_recv(b, 0) == b""
            got.append(await loop.sock_recv(b, 100))
        buf = bytearray(100)
        a.send(b"into")
        await asyncio.sleep(0.001)
        n = await loop.sock_recv_into(b, buf)
        got.append(bytes(buf[:n]))
        a.send(b"again")
        await asyncio.sleep(0.001)
        n = await loop.sock_recv_into(b, buf)
        got.append(bytes(buf[:n]))
        a.shutdown(socket.SHUT_WR)
        got.append(await loop.sock_recv(b, 100))
        return got

    assert run(loop, main()) == [
        b"wait 0", b"queued 0", b"wait 1", b"queued 1", b"wait 2", b"queued 2",
        b"into", b"again", b"",
    ]


class _CountingFuture(asyncio.Future):
    """A future subclass, as a loop's `create_future` override may return."""


def test_waits_use_the_loops_create_future(loop, pair):  # noqa: F811
    # asyncio's sock_* make their futures with self.create_future(), so a
    # loop subclass that overrides it sees every wait (and its futures get
    # the results).
    a, b = pair
    base = type(loop)
    made = []

    class Loop(base):
        def create_future(self):
            fut = _CountingFuture(loop=self)
            made.append(fut)
            return fut

    sub = Loop()
    try:
        async def main():
            before = len(made)
            recv = asyncio.ensure_future(sub.sock_recv(b, 100))
            await net.spin()
            a.send(b"one")
            assert await recv == b"one"
            buf = bytearray(10)
            recv_into = asyncio.ensure_future(sub.sock_recv_into(b, buf))
            await net.spin()
            a.send(b"two")
            assert await recv_into == 3 and buf[:3] == b"two"
            big = b"x" * (8 << 20)
            send = asyncio.ensure_future(sub.sock_sendall(b, big))
            got = 0
            while got < len(big):
                await net.spin()
                try:
                    got += len(a.recv(1 << 20))
                except BlockingIOError:
                    pass
            assert await send is None
            return len(made) - before

        # One future per wait: recv, recv_into, and the rest of the send.
        assert run(sub, main()) == 3
    finally:
        sub.close()

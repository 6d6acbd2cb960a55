"""Large reads: the same bytes whichever way the loop reads them.

ferroloop reads a socket whose previous read was large (32 KiB or more)
straight into the `bytes` it hands over (allocated at the maximum asked and
shrunk, for maxima up to 64 KiB; sized by asking the kernel how much is
queued, above), and reads small amounts through a per-thread buffer and a
copy. The `sock_recv` edge cases run with both kinds of maximum.
These tests send messages around that threshold and around asyncio's
256 KiB `max_size`, in orders that switch between the two ways, plus the
cases where the kernel's count and what `recv` returns differ: a Unix
message carrying fds (the read stops short of the count), a TCP urgent
mark (the count is 0 with data readable) and EOF right after large data.
"""

import asyncio
import os
import socket

import net_helpers as net
import pytest
from net_helpers import run

THRESHOLD = 32 * 1024
MAX_SIZE = 256 * 1024

# Messages sent one at a time, each fully received before the next is sent:
# small and large ones interleaved, sizes on both sides of each limit.
SIZES = [
    1000, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 100, THRESHOLD + 1, 64 * 1024,
    100 * 1024, MAX_SIZE - 1, MAX_SIZE, MAX_SIZE + 1, 7, 100 * 1024, 1024 * 1024 + 7, 1,
]


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


def messages(sizes=SIZES):
    return [net.payload(size, seed=i) for i, size in enumerate(sizes)]


class Chunks(net.RecordingProtocol):
    """Records each data_received chunk's type and size as well."""

    def __init__(self, loop):
        super().__init__(loop)
        self.chunks = []

    def data_received(self, data):
        self.chunks.append((type(data), len(data)))
        super().data_received(data)


def check_chunks(proto):
    assert all(kind is bytes for kind, _ in proto.chunks)
    assert 0 < max(size for _, size in proto.chunks) <= MAX_SIZE


async def send_fds_message(sock, data, fds):
    """sendmsg with SCM_RIGHTS on a non-blocking Unix socket, then the rest."""
    sent = socket.send_fds(sock, [data], fds)
    await asyncio.get_running_loop().sock_sendall(sock, data[sent:])


def send_around_urgent_byte(sock, before, after):
    """Queues `before`, one urgent byte, `after`, all at once (so the first
    read stops at the urgent mark, where the kernel then counts 0 bytes
    queued although `after` is readable; the urgent byte is not inline)."""
    assert sock.send(before) == len(before)
    assert sock.send(b"!", socket.MSG_OOB) == 1
    assert sock.send(after) == len(after)


# ---------------------------------------------------------------------------
# data_received
# ---------------------------------------------------------------------------


def test_protocol_receives_each_message_intact(loop, tcp_socks):
    peer, sock = tcp_socks

    async def main():
        _, proto = await loop.create_connection(lambda: Chunks(loop), sock=sock)
        expected = bytearray()
        for msg in messages():
            await loop.sock_sendall(peer, msg)
            expected += msg
            await proto.wait_bytes(len(expected))
            assert proto.data == expected
        check_chunks(proto)
        proto.transport.close()
        await proto.wait_lost()

    run(loop, main())


def test_protocol_eof_right_after_large_data(loop, tcp_socks):
    peer, sock = tcp_socks
    first, last = messages([100 * 1024, MAX_SIZE + 3])

    async def main():
        _, proto = await loop.create_connection(lambda: Chunks(loop), sock=sock)
        await loop.sock_sendall(peer, first)
        await proto.wait_bytes(len(first))
        await loop.sock_sendall(peer, last)
        peer.shutdown(socket.SHUT_WR)
        await proto.wait_lost()
        return proto

    proto = run(loop, main())
    assert proto.data == first + last
    assert proto.events == ["made", "data", "eof", "lost"]
    assert proto.exc is None
    check_chunks(proto)


def test_protocol_reads_past_a_tcp_urgent_mark(loop, tcp_socks):
    peer, sock = tcp_socks
    first, before, after = messages([100 * 1024, 40 * 1024, 40 * 1024])

    async def main():
        _, proto = await loop.create_connection(lambda: Chunks(loop), sock=sock)
        await loop.sock_sendall(peer, first)
        await proto.wait_bytes(len(first))
        send_around_urgent_byte(peer, before, after)
        await proto.wait_bytes(len(first) + len(before) + len(after))
        proto.transport.close()
        await proto.wait_lost()
        return proto.data

    assert run(loop, main()) == first + before + after


def test_protocol_unix_read_stopping_short_of_the_queued_count(loop):
    # A Unix stream read stops after a message that carried fds, so it
    # returns less than FIONREAD counted (the fd is dropped by a plain recv).
    peer, sock = socket.socketpair()
    peer.setblocking(False)
    first, with_fd, rest = messages([64 * 1024, 40 * 1024, 40 * 1024])
    r, w = os.pipe()

    async def main():
        _, proto = await loop.create_unix_connection(lambda: Chunks(loop), sock=sock)
        for _ in range(2):
            await loop.sock_sendall(peer, first)
            await proto.wait_bytes(len(first))
            proto.data.clear()
            await send_fds_message(peer, with_fd, [r])
            await loop.sock_sendall(peer, rest)
            await proto.wait_bytes(len(with_fd) + len(rest))
            assert proto.data == with_fd + rest
            proto.data.clear()
        check_chunks(proto)
        proto.transport.close()
        await proto.wait_lost()

    try:
        run(loop, main())
    finally:
        peer.close()
        os.close(r)
        os.close(w)


# ---------------------------------------------------------------------------
# streams
# ---------------------------------------------------------------------------


def test_streams_read_each_message_intact(loop):
    run(loop, net.stream_messages(messages()))


def test_streams_large_transfer_then_eof(loop):
    data = net.payload(3 * MAX_SIZE + 12345, seed=3)

    async def handler(reader, writer):
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        got = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == data


# ---------------------------------------------------------------------------
# sock_recv
# ---------------------------------------------------------------------------


async def sock_recv_exactly(loop, sock, size, n):
    """sock_recv(sock, n) until `size` bytes arrived; checks every chunk."""
    got = bytearray()
    while len(got) < size:
        chunk = await loop.sock_recv(sock, n)
        assert type(chunk) is bytes
        assert 0 < len(chunk) <= n
        got += chunk
    return bytes(got)


@pytest.mark.parametrize("n", [1024, THRESHOLD - 1, THRESHOLD, 64 * 1024, MAX_SIZE, MAX_SIZE + 1])
def test_sock_recv_each_message_intact(loop, tcp_socks, n):
    peer, sock = tcp_socks

    async def main():
        for msg in messages():
            send = asyncio.ensure_future(loop.sock_sendall(peer, msg))
            assert await sock_recv_exactly(loop, sock, len(msg), n) == msg
            await send

    run(loop, main())


def test_sock_recv_small_n_between_large_reads(loop, tcp_socks):
    # A small read in between (a header, say) leaves the large reads alone.
    peer, sock = tcp_socks
    msgs = messages([100 * 1024, 10, 100 * 1024, 10, 100 * 1024])

    async def main():
        for msg in msgs:
            send = asyncio.ensure_future(loop.sock_sendall(peer, msg))
            n = 10 if len(msg) == 10 else 64 * 1024
            assert await sock_recv_exactly(loop, sock, len(msg), n) == msg
            await send

    run(loop, main())


@pytest.mark.parametrize("n", [64 * 1024, MAX_SIZE])
def test_sock_recv_eof_right_after_large_data(loop, tcp_socks, n):
    peer, sock = tcp_socks
    first, last = messages([100 * 1024, 70 * 1024])

    async def main():
        await loop.sock_sendall(peer, first)
        assert await sock_recv_exactly(loop, sock, len(first), n) == first
        await loop.sock_sendall(peer, last)
        peer.shutdown(socket.SHUT_WR)
        assert await sock_recv_exactly(loop, sock, len(last), n) == last
        assert await loop.sock_recv(sock, n) == b""
        assert await loop.sock_recv(sock, n) == b""

    run(loop, main())


@pytest.mark.parametrize("n", [64 * 1024, MAX_SIZE])
def test_sock_recv_reads_past_a_tcp_urgent_mark(loop, tcp_socks, n):
    peer, sock = tcp_socks
    first, before, after = messages([100 * 1024, 40 * 1024, 40 * 1024])

    async def main():
        await loop.sock_sendall(peer, first)
        assert await sock_recv_exactly(loop, sock, len(first), n) == first
        send_around_urgent_byte(peer, before, after)
        size = len(before) + len(after)
        return await sock_recv_exactly(loop, sock, size, n)

    assert run(loop, main()) == before + after


@pytest.mark.parametrize("n", [64 * 1024, MAX_SIZE])
def test_sock_recv_unix_read_stopping_short_of_the_queued_count(loop, n):
    peer, sock = socket.socketpair()
    for s in (peer, sock):
        s.setblocking(False)
    first, with_fd, rest = messages([64 * 1024, 40 * 1024, 40 * 1024])
    r, w = os.pipe()

    async def main():
        for _ in range(2):
            await loop.sock_sendall(peer, first)
            assert await sock_recv_exactly(loop, sock, len(first), n) == first
            await send_fds_message(peer, with_fd, [r])
            await loop.sock_sendall(peer, rest)
            size = len(with_fd) + len(rest)
            assert await sock_recv_exactly(loop, sock, size, n) == with_fd + rest

    try:
        run(loop, main())
    finally:
        for s in (peer, sock):
            s.close()
        os.close(r)
        os.close(w)


def test_sock_recv_udp_after_large_datagrams(loop):
    # Each recv returns one datagram, truncated to n; never more, never
    # merged, whichever way the loop reads.
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
    datagrams = messages([60000, 50000, 40000, 100, 60000, 65000])

    async def main():
        got = []
        for dgram in datagrams:
            a.sendto(dgram, b.getsockname())
        for _ in datagrams:
            got.append(await loop.sock_recv(b, 64 * 1024))
        for dgram in datagrams[:2]:
            a.sendto(dgram, b.getsockname())
        for _ in range(2):
            got.append(await loop.sock_recv(b, 45000))
        return got

    try:
        got = run(loop, main())
    finally:
        a.close()
        b.close()
    assert got == datagrams + [d[:45000] for d in datagrams[:2]]

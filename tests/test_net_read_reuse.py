"""Reads into a reused `bytes`: what the protocol sees stays what arrived.

ferroloop keeps the `bytes` a protocol's `data_received` let go of (nothing
else references it) and reads the next data into it. These tests send
messages one at a time in sizes that take each path (the same size again,
a bigger one, one much smaller than the kept object, tiny ones), while the
protocol keeps some chunks and drops others, hashes them (a `bytes` caches
its hash) and checks each one as it arrives: kept chunks must never change,
and every chunk must compare, hash and measure as a fresh `bytes` of the
data would.
"""

import asyncio
import socket

import net_helpers as net
import pytest
from net_helpers import run

SIZES = [
    1024, 1024, 1024, 4096, 4096, 1000, 900, 100, 2, 1, 3000, 4096, 10240, 10240,
    2000, 2600, 9000, 64 * 1024, 64 * 1024, 16 * 1024, 15 * 1024, 256 * 1024, 5, 1024,
]


@pytest.fixture(autouse=True)
def _no_fd_leak(loop, request):
    with net.no_fd_leak(loop, request.session):
        yield


class Checking(asyncio.Protocol):
    """Checks each chunk on arrival; keeps every third one."""

    def __init__(self, loop):
        self.received = bytearray()
        self.kept = []
        self.count = 0
        self.grew = asyncio.Event()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        assert type(data) is bytes
        fresh = bytes(bytearray(data))
        assert data == fresh and len(data) == len(fresh)
        assert hash(data) == hash(fresh)
        assert data.endswith(fresh[-1:]) and data[len(data):] == b""
        self.received += data
        if self.count % 3 == 0:
            self.kept.append((data, fresh))
        self.count += 1
        self.grew.set()

    def connection_lost(self, exc):
        self.lost.set_result(exc)


async def receive_all(loop, proto, peer, msgs):
    expected = bytearray(proto.received)
    for msg in msgs:
        await loop.sock_sendall(peer, msg)
        expected += msg
        while len(proto.received) < len(expected):
            proto.grew.clear()
            await proto.grew.wait()
        assert proto.received == expected
        for data, fresh in proto.kept:
            assert data == fresh and hash(data) == hash(fresh)


def test_protocol_chunks_stay_intact(loop, tcp_socks):
    peer, sock = tcp_socks
    msgs = [net.payload(size, seed=i) for i, size in enumerate(SIZES)]

    async def main():
        _, proto = await loop.create_connection(lambda: Checking(loop), sock=sock)
        await receive_all(loop, proto, peer, msgs)
        proto.transport.close()
        assert await proto.lost is None

    run(loop, main())


def test_two_connections_share_nothing(loop):
    # Two transports on one loop (one kept object per thread): chunks of
    # one never show up in the other, whatever the interleaving.
    async def main():
        pairs = [socket.socketpair() for _ in range(2)]
        protos = []
        for peer, sock in pairs:
            peer.setblocking(False)
            _, proto = await loop.create_unix_connection(lambda: Checking(loop), sock=sock)
            protos.append(proto)
        for i, size in enumerate(SIZES):
            for j, ((peer, _), proto) in enumerate(zip(pairs, protos)):
                await receive_all(loop, proto, peer, [net.payload(size + j, seed=2 * i + j)])
        for (peer, _), proto in zip(pairs, protos):
            proto.transport.close()
            assert await proto.lost is None
            peer.close()

    run(loop, main())


def test_streams_read_intact_while_chunks_are_dropped(loop):
    msgs = [net.payload(size, seed=i) for i, size in enumerate(SIZES)]

    async def main():
        # StreamReader copies each chunk and drops it, so later reads land in
        # it; what the client read earlier must stay intact meanwhile.
        assert await net.stream_messages(msgs) == msgs

    run(loop, main())

"""Shared helpers for the networking tests (tests/test_net_*.py).

Everything here works on any asyncio event loop: the tests run each scenario
on the stock loop and on ferroloop through the ``loop`` fixture.
"""

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import struct
import sys

import pytest

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)

# Hang guard for one scenario (not a timing assertion).
GUARD = 20.0

# asyncio's documented defaults for stream transports.
DEFAULT_HIGH_WATER = 64 * 1024
DEFAULT_LOW_WATER = 16 * 1024


def run(loop, coro, timeout=GUARD):
    """Runs `coro` to completion on `loop`, failing (not hanging) after `timeout`."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def settle(loop, rounds=5):
    """Lets the loop run the callbacks already scheduled (close, connection_lost)."""

    async def spin():
        for _ in range(rounds):
            await asyncio.sleep(0)

    loop.run_until_complete(spin())


async def spin(n=5):
    """Yields to the loop `n` times from inside a coroutine."""
    for _ in range(n):
        await asyncio.sleep(0)


def payload(size, seed=0):
    """Deterministic, non-repeating-looking bytes (catches reordering)."""
    block = bytes((i * 7 + seed) & 0xFF for i in range(251))
    reps = size // len(block) + 1
    return (block * reps)[:size]


# ---------------------------------------------------------------------------
# file descriptor leaks
# ---------------------------------------------------------------------------


def open_fds():
    """{fd: target} for the fds of this process (targets tell sockets apart)."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the fd listdir itself used, already closed
            pass
    return fds


@contextlib.contextmanager
def no_fd_leak(loop, session=None):
    """Fails if the block leaves fds open that were not open before it.

    Before comparing, the loop (if still usable) runs the callbacks already
    scheduled, so transports closed by the test finish closing.  Garbage is
    NOT collected first: a closed transport must have closed its socket
    explicitly, not left it to a finalizer.
    """
    before = open_fds()
    failed_before = session.testsfailed if session is not None else 0
    yield
    if session is not None and session.testsfailed > failed_before:
        return  # the test failed: its leftovers are not news
    if not loop.is_closed() and not loop.is_running():
        settle(loop)
    after = open_fds()
    leaked = {fd: target for fd, target in after.items() if before.get(fd) != target}
    assert not leaked, f"fds left open by the test: {leaked}"


# ---------------------------------------------------------------------------
# exception handler
# ---------------------------------------------------------------------------


def capture_errors(loop):
    """Installs an exception handler recording the context dicts."""
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    return contexts


# ---------------------------------------------------------------------------
# recording protocols
# ---------------------------------------------------------------------------


class Recorder:
    """Records protocol callbacks as `events` (data events merged) and lets
    coroutines wait for a condition on the recorder."""

    def __init__(self, loop):
        self.loop = loop
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.exc = "not lost"
        self._waiters = []

    def _record(self, name):
        if not (name == "data" and self.events and self.events[-1] == "data"):
            self.events.append(name)
        self._check()

    def _check(self):
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(self):
                fut.set_result(None)
                self._waiters.remove((pred, fut))

    async def wait(self, pred, timeout=GUARD):
        if pred(self):
            return
        fut = self.loop.create_future()
        self._waiters.append((pred, fut))
        await asyncio.wait_for(fut, timeout)

    async def wait_bytes(self, n):
        await self.wait(lambda p: len(p.data) >= n)

    async def wait_event(self, name):
        await self.wait(lambda p: name in p.events)

    async def wait_lost(self):
        await self.wait_event("lost")

    @property
    def lost(self):
        return "lost" in self.events


class RecordingProtocol(Recorder, asyncio.Protocol):
    """A stream protocol recording every callback.

    `eof_result` is what eof_received returns (True keeps the connection
    half-open).  `on_made(transport)` / `on_data(proto, data)` hooks let a
    test act from inside a callback (e.g. echo)."""

    def __init__(self, loop, eof_result=None, on_made=None, on_data=None):
        super().__init__(loop)
        self.eof_result = eof_result
        self.on_made = on_made
        self.on_data = on_data
        self.pauses = 0
        self.resumes = 0
        self.buffer_at_pause = []

    def connection_made(self, transport):
        self.transport = transport
        self._record("made")
        if self.on_made is not None:
            self.on_made(transport)

    def data_received(self, data):
        assert isinstance(data, bytes), type(data)
        self.data += data
        if self.on_data is not None:
            self.on_data(self, data)
        self._record("data")

    def eof_received(self):
        self._record("eof")
        return self.eof_result

    def connection_lost(self, exc):
        self.exc = exc
        self._record("lost")

    def pause_writing(self):
        self.pauses += 1
        self.buffer_at_pause.append(self.transport.get_write_buffer_size())
        self._record("pause")

    def resume_writing(self):
        self.resumes += 1
        self._record("resume")


class EchoProtocol(RecordingProtocol):
    """Echoes everything back; closes when the peer closes."""

    def __init__(self, loop, **kw):
        super().__init__(loop, on_data=lambda p, d: p.transport.write(d), **kw)


class RecordingBufferedProtocol(Recorder, asyncio.BufferedProtocol):
    """A BufferedProtocol handing out a fixed-size buffer."""

    def __init__(self, loop, size=1024):
        super().__init__(loop)
        self.buf = bytearray(size)
        self.sizehints = []
        self.updates = []

    def connection_made(self, transport):
        self.transport = transport
        self._record("made")

    def get_buffer(self, sizehint):
        self.sizehints.append(sizehint)
        return self.buf

    def buffer_updated(self, nbytes):
        self.updates.append(nbytes)
        self.data += self.buf[:nbytes]
        self._record("data")

    def eof_received(self):
        self._record("eof")

    def connection_lost(self, exc):
        self.exc = exc
        self._record("lost")


class RecordingDatagramProtocol(Recorder, asyncio.DatagramProtocol):
    def __init__(self, loop):
        super().__init__(loop)
        self.datagrams = []
        self.errors = []

    def connection_made(self, transport):
        self.transport = transport
        self._record("made")

    def datagram_received(self, data, addr):
        self.datagrams.append((data, addr))
        self._record("datagram")

    def error_received(self, exc):
        self.errors.append(exc)
        self._record("error")

    def connection_lost(self, exc):
        self.exc = exc
        self._record("lost")


# ---------------------------------------------------------------------------
# sockets and servers
# ---------------------------------------------------------------------------


async def stream_messages(msgs):
    """Sends `msgs` from an asyncio streams server to a streams client, one
    at a time (the next only once the client read the last), checks each on
    arrival and the EOF after them; returns the `bytes` the client read."""
    acks = asyncio.Queue()

    async def handler(reader, writer):
        for msg in msgs:
            writer.write(msg)
            await writer.drain()
            await acks.get()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
    got = []
    for msg in msgs:
        data = await reader.readexactly(len(msg))
        assert data == msg
        got.append(data)
        acks.put_nowait(None)
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return got


@contextlib.contextmanager
def socket_pair():
    """A connected non-blocking TCP pair (peer, loop's side) on 127.0.0.1,
    closed afterwards."""
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        a = socket.create_connection(lsock.getsockname())
        b, _ = lsock.accept()
    a.setblocking(False)
    b.setblocking(False)
    with a, b:
        yield a, b


@contextlib.contextmanager
def refusing_port():
    """A 127.0.0.1 port bound but not listening: connecting is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


async def tcp_pair(loop, server_proto=None, client_proto=None, **client_kw):
    """A connected (server protocol, client protocol, server) triple on 127.0.0.1."""
    server_protos = []

    def factory():
        p = server_proto() if server_proto else RecordingProtocol(loop)
        server_protos.append(p)
        return p

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(
        client_proto or (lambda: RecordingProtocol(loop)), "127.0.0.1", port, **client_kw
    )
    while not server_protos or server_protos[0].transport is None:
        await asyncio.sleep(0)
    return server_protos[0], client, server


class Served:
    """A server plus the protocols it created (see `recording_server`)."""

    def __init__(self, server, protos):
        self.server = server
        self.protos = protos

    @property
    def address(self):
        return self.server.sockets[0].getsockname()

    @property
    def port(self):
        return self.address[1]

    async def first(self):
        """The first server-side protocol, once its connection_made ran."""
        while not self.protos or self.protos[0].transport is None:
            await asyncio.sleep(0)
        return self.protos[0]


async def recording_server(loop, host="127.0.0.1", port=0, factory=None, unix=False, **kw):
    """A server whose protocols (RecordingProtocol by default) are recorded."""
    protos = []

    def make():
        p = factory() if factory else RecordingProtocol(loop)
        protos.append(p)
        return p

    if unix:
        server = await loop.create_unix_server(make, host, **kw)
    else:
        server = await loop.create_server(make, host, port, **kw)
    return Served(server, protos)


async def close_all(*things):
    """Closes servers/transports/recorders and waits for them to finish."""
    expanded = []
    for t in things:
        if isinstance(t, Served):
            expanded.extend([t.server, *t.protos])
        else:
            expanded.append(t)
    things = expanded
    for t in things:
        if t is None:
            continue
        if isinstance(t, asyncio.AbstractServer):
            t.close()
        elif isinstance(t, Recorder):
            if t.transport is not None:
                t.transport.close()
        else:
            t.close()
    for t in things:
        if isinstance(t, Recorder) and t.transport is not None:
            await t.wait_lost()
        elif isinstance(t, asyncio.AbstractServer):
            await t.wait_closed()


def fill_socket_buffers(sock):
    """Makes the kernel buffers of a non-blocking socket full; returns bytes sent."""
    total = 0
    chunk = b"x" * 65536
    while True:
        try:
            total += sock.send(chunk)
        except BlockingIOError:
            return total


# ---------------------------------------------------------------------------
# TLS material (generated once per process with trustme)
# ---------------------------------------------------------------------------

SERVER_NAMES = ("localhost", "127.0.0.1", "sni.example")


@functools.lru_cache(maxsize=None)
def _tls_material():
    trustme = pytest.importorskip(
        "trustme", reason="TLS tests need trustme (scripts/dev-env.sh installs it)"
    )
    ca = trustme.CA()
    server = ca.issue_cert(*SERVER_NAMES)
    client = ca.issue_cert("client@example.org")
    other_ca = trustme.CA()
    return ca, server, client, other_ca


class TLS:
    """Factories for fresh contexts (tests may mutate them)."""

    def __init__(self):
        self.ca, self.server_cert, self.client_cert, self.other_ca = _tls_material()

    def server_ctx(self, require_client_cert=False):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(ctx)
        if require_client_cert:
            self.ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_ctx(self, trusted=True, with_cert=False):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        (self.ca if trusted else self.other_ca).configure_trust(ctx)
        if with_cert:
            self.client_cert.configure_cert(ctx)
        return ctx


def tls():
    return TLS()


def write_until_buffered(transport, chunk_size=256 * 1024, limit=512):
    """Writes chunks until the transport buffers some (the peer must not be
    reading); returns the bytes written."""
    written = bytearray()
    for i in range(limit):
        chunk = payload(chunk_size, seed=i)
        transport.write(chunk)
        written += chunk
        if transport.get_write_buffer_size() > 0:
            return bytes(written)
    raise AssertionError("the kernel took everything: peer is reading?")


def rst_on_close(sock):
    """SO_LINGER 0: closing `sock` sends a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

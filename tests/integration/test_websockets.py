"""The websockets library's asyncio server and client (websockets.asyncio)."""

import asyncio
import os

import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

MiB = 1024 * 1024


async def handler(ws):
    """Echoes messages back; "close <code>" makes the server close with that
    code. Records how each connection ended in ws.server.closed_codes."""
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("close "):
                await ws.close(int(message.split()[1]), "server says bye")
                break
            await ws.send(message)
    finally:
        ws.server.closed_codes.append(ws.close_code)


async def with_server(client_code):
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=4 * MiB) as server:
        server.closed_codes = []
        port = server.sockets[0].getsockname()[1]
        result = await client_code(f"ws://127.0.0.1:{port}")
    # Leaving `async with` closed the server and waited for its handlers.
    return result, server.closed_codes


def test_echo_text_and_binary(run):
    messages = ["hello", b"\x00\x01\x02", "ünïcödé ✓", b"", "", os.urandom(3000)]

    async def client(url):
        async with websockets.connect(url) as ws:
            for message in messages:
                await ws.send(message)
            echoed = [await ws.recv() for _ in messages]
            # A ping is answered by the peer's pong.
            pong_waiter = await ws.ping()
            await pong_waiter
        return echoed, ws.close_code

    (echoed, close_code), server_codes = run(with_server(client))
    assert echoed == messages
    assert [type(m) for m in echoed] == [type(m) for m in messages]
    assert close_code == 1000
    assert server_codes == [1000]


def test_large_and_fragmented_messages(run):
    big = os.urandom(MiB)
    pieces = [os.urandom(64 * 1024) for _ in range(8)]

    async def fragments():
        for piece in pieces:
            yield piece

    async def client(url):
        async with websockets.connect(url, max_size=4 * MiB) as ws:
            await ws.send(big)
            got_big = await ws.recv()
            # An async iterable is sent as one message in several frames.
            await ws.send(fragments())
            got_fragmented = await ws.recv()
        return got_big, got_fragmented

    (got_big, got_fragmented), _ = run(with_server(client))
    assert got_big == big
    assert got_fragmented == b"".join(pieces)


def test_server_close_code(run):
    async def client(url):
        async with websockets.connect(url) as ws:
            await ws.send("close 4000")
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.recv()
        return closed.value.rcvd.code, closed.value.rcvd.reason

    (code, reason), server_codes = run(with_server(client))
    assert (code, reason) == (4000, "server says bye")
    assert server_codes == [4000]


def test_client_going_away(run):
    async def client(url):
        ws = await websockets.connect(url)
        await ws.send("one")
        assert await ws.recv() == "one"
        await ws.close(1001, "client leaves")
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        return ws.close_code

    close_code, server_codes = run(with_server(client))
    assert close_code == 1001
    assert server_codes == [1001]


def test_many_concurrent_clients(run):
    async def one_client(url, i):
        async with websockets.connect(url) as ws:
            for j in range(5):
                await ws.send(f"{i}:{j}")
                assert await ws.recv() == f"{i}:{j}"
        return i

    async def client(url):
        return await asyncio.gather(*(one_client(url, i) for i in range(25)))

    done, server_codes = run(with_server(client))
    assert done == list(range(25))
    assert server_codes == [1000] * 25


def test_tls(run, tls):
    big = os.urandom(MiB)

    async def main():
        async with websockets.serve(
            handler, "127.0.0.1", 0, ssl=tls.server_context(), max_size=4 * MiB
        ) as server:
            server.closed_codes = []
            port = server.sockets[0].getsockname()[1]
            url = f"wss://127.0.0.1:{port}"
            async with websockets.connect(url, ssl=tls.client_context(), max_size=4 * MiB) as ws:
                await ws.send("secret")
                text = await ws.recv()
                await ws.send(big)
                binary = await ws.recv()
        return text, binary, ws.close_code, server.closed_codes

    assert run(main()) == ("secret", big, 1000, [1000])

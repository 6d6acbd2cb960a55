"""aiohttp's server (aiohttp.web) and client (ClientSession) on one loop."""

import asyncio
import hashlib
import os

import aiohttp
import pytest
from aiohttp import web

STREAM_CHUNKS = 64
STREAM_CHUNK_SIZE = 16 * 1024


def stream_chunk(i):
    # Each chunk differs, so a lost, repeated or reordered chunk is visible.
    return bytes([i % 256]) * STREAM_CHUNK_SIZE


async def hello(request):
    return web.Response(text=f"hello {request.query.get('name', 'world')}")


async def stream(request):
    response = web.StreamResponse()
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    for i in range(STREAM_CHUNKS):
        await response.write(stream_chunk(i))
        # Yield between writes so chunks really go out one at a time.
        await asyncio.sleep(0)
    await response.write_eof()
    return response


async def echo(request):
    body = await request.read()
    return web.Response(
        body=body,
        headers={"X-Length": str(len(body)), "X-Sha256": hashlib.sha256(body).hexdigest()},
    )


async def ws_echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await ws.send_str(msg.data.upper())
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data[::-1])
    return ws


# How /endless ended, as seen by the server (a queue of exceptions).
ENDLESS_ENDINGS = web.AppKey("endless_endings", asyncio.Queue)
# Set by the client to let /stall answer.
STALL_RELEASE = web.AppKey("stall_release", asyncio.Event)


async def endless(request):
    """Streams until the client goes away, then records how writing failed."""
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        while True:
            await response.write(b"z" * 8192)
    except BaseException as exc:
        request.app[ENDLESS_ENDINGS].put_nowait(exc)
        raise


async def stall(request):
    await request.app[STALL_RELEASE].wait()
    return web.Response(text="late")


def make_app():
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/hello", hello)
    app.router.add_get("/stream", stream)
    app.router.add_post("/echo", echo)
    app.router.add_get("/ws", ws_echo)
    app.router.add_get("/endless", endless)
    app.router.add_get("/stall", stall)
    app[ENDLESS_ENDINGS] = asyncio.Queue()
    app[STALL_RELEASE] = asyncio.Event()
    return app


async def serve_and(client_code, ssl_context=None):
    """Starts the app on 127.0.0.1 (a free port), runs
    client_code(base_url, app) and shuts the server down cleanly whatever
    happens. With an SSL context, the server speaks HTTPS."""
    app = make_app()
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        host, port = runner.addresses[0][:2]
        scheme = "https" if ssl_context else "http"
        return await client_code(f"{scheme}://{host}:{port}", app)
    finally:
        await runner.cleanup()


def test_get_and_keepalive(run):
    async def client(base, app):
        # A connection limit below the request count forces connection reuse.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:

            async def get(i):
                async with session.get(f"{base}/hello", params={"name": str(i)}) as resp:
                    assert resp.status == 200
                    return await resp.text()

            return await asyncio.gather(*(get(i) for i in range(40)))

    assert run(serve_and(client)) == [f"hello {i}" for i in range(40)]


def test_streaming_response(run):
    async def client(base, app):
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/stream") as resp:
                assert resp.status == 200
                assert resp.headers["Transfer-Encoding"] == "chunked"
                return b"".join([chunk async for chunk in resp.content.iter_chunked(4096)])

    body = run(serve_and(client))
    assert body == b"".join(stream_chunk(i) for i in range(STREAM_CHUNKS))


def test_post_large_body(run):
    data = os.urandom(1024 * 1024 + 17)

    async def client(base, app):
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/echo", data=data) as resp:
                return resp.status, dict(resp.headers), await resp.read()

    status, headers, body = run(serve_and(client))
    assert status == 200
    assert headers["X-Length"] == str(len(data))
    assert headers["X-Sha256"] == hashlib.sha256(data).hexdigest()
    assert body == data


def test_websocket(run):
    big = os.urandom(512 * 1024)

    async def client(base, app):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{base}/ws") as ws:
                await ws.send_str("ping")
                text = await ws.receive_str()
                await ws.send_bytes(big)
                binary = await ws.receive_bytes()
                await ws.close()
                return text, binary, ws.close_code

    text, binary, close_code = run(serve_and(client))
    assert text == "PING"
    assert binary == big[::-1]
    assert close_code == aiohttp.WSCloseCode.OK


def test_https(run, tls):
    data = os.urandom(1024 * 1024)

    async def client(base, app):
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/hello", ssl=tls.client_context()) as resp:
                text = await resp.text()
            async with session.post(f"{base}/echo", data=data, ssl=tls.client_context()) as resp:
                body = await resp.read()
        return text, body

    text, body = run(serve_and(client, ssl_context=tls.server_context()))
    assert text == "hello world"
    assert body == data


def test_slow_reader(run):
    """The client reads a large streamed body in small pieces, yielding in
    between, so the data arrives faster than it is consumed (the flow
    control of both ends kicks in); the body must still arrive intact."""

    async def client(base, app):
        pieces = []
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/stream") as resp:
                while piece := await resp.content.read(1024):
                    pieces.append(piece)
                    await asyncio.sleep(0)
        return b"".join(pieces)

    assert run(serve_and(client)) == b"".join(stream_chunk(i) for i in range(STREAM_CHUNKS))


def test_client_disconnects_mid_stream(run):
    """A client that drops an endless response: the server's next write
    fails with a connection error, and the server keeps serving."""

    async def client(base, app):
        async with aiohttp.ClientSession() as session:
            resp = await session.get(f"{base}/endless")
            assert len(await resp.content.readexactly(100_000)) == 100_000
            resp.close()  # drops the connection: the body was not read to the end
            ending = await app[ENDLESS_ENDINGS].get()
            async with session.get(f"{base}/hello") as after:
                return ending, await after.text()

    ending, text_after = run(serve_and(client))
    # Reset while writing, or lost while waiting for the buffer to drain.
    assert isinstance(ending, ConnectionError), repr(ending)
    assert text_after == "hello world"


def test_read_timeout(run):
    """A server that does not answer in time: the client's sock_read timeout
    fires, then the same server answers once released."""

    async def client(base, app):
        async with aiohttp.ClientSession() as session:
            timeout = aiohttp.ClientTimeout(sock_read=0.2)
            with pytest.raises(asyncio.TimeoutError):
                await session.get(f"{base}/stall", timeout=timeout)
            app[STALL_RELEASE].set()
            async with session.get(f"{base}/stall") as resp:
                return await resp.text()

    assert run(serve_and(client)) == "late"


def test_connection_close_after_large_responses(run):
    """force_close: one connection per request, the server closing each
    right after a 1 MiB response, which must arrive whole before the close."""
    data = os.urandom(1024 * 1024)

    async def client(base, app):
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            bodies = []
            for _ in range(5):
                async with session.post(f"{base}/echo", data=data) as resp:
                    assert resp.headers.get("Connection", "").lower() == "close"
                    bodies.append(await resp.read())
            return bodies

    assert run(serve_and(client)) == [data] * 5


def test_many_simultaneous_connections(run):
    async def client(base, app):
        # No connection limit: every request gets a connection of its own.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def get(i):
                async with session.get(f"{base}/hello", params={"name": str(i)}) as resp:
                    return await resp.text()

            return await asyncio.gather(*(get(i) for i in range(150)))

    assert run(serve_and(client)) == [f"hello {i}" for i in range(150)]

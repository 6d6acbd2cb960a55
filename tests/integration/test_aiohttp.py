"""aiohttp's server (aiohttp.web) and client (ClientSession) on one loop."""

import asyncio
import hashlib
import os

import aiohttp
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


def make_app():
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/hello", hello)
    app.router.add_get("/stream", stream)
    app.router.add_post("/echo", echo)
    app.router.add_get("/ws", ws_echo)
    return app


async def serve_and(client_code):
    """Starts the app on 127.0.0.1 (a free port), runs client_code(base_url)
    and shuts the server down cleanly whatever happens."""
    runner = web.AppRunner(make_app())
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return await client_code(f"http://{host}:{port}")
    finally:
        await runner.cleanup()


def test_get_and_keepalive(run):
    async def client(base):
        # A connection limit below the request count forces connection reuse.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:

            async def get(i):
                async with session.get(f"{base}/hello", params={"name": str(i)}) as resp:
                    assert resp.status == 200
                    return await resp.text()

            return await asyncio.gather(*(get(i) for i in range(40)))

    assert run(serve_and(client)) == [f"hello {i}" for i in range(40)]


def test_streaming_response(run):
    async def client(base):
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/stream") as resp:
                assert resp.status == 200
                assert resp.headers["Transfer-Encoding"] == "chunked"
                return b"".join([chunk async for chunk in resp.content.iter_chunked(4096)])

    body = run(serve_and(client))
    assert body == b"".join(stream_chunk(i) for i in range(STREAM_CHUNKS))


def test_post_large_body(run):
    data = os.urandom(1024 * 1024 + 17)

    async def client(base):
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

    async def client(base):
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

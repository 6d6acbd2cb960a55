"""The Starlette app uvicorn serves in test_uvicorn.py (in-process, and by
`python -m uvicorn asgi_app:app` in a child process)."""

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

STREAM_CHUNKS = 50
STREAM_CHUNK_SIZE = 8 * 1024


def stream_chunk(i):
    # Each chunk differs, so a lost, repeated or reordered chunk is visible.
    return bytes([i % 256]) * STREAM_CHUNK_SIZE


@contextlib.asynccontextmanager
async def lifespan(app):
    # Proves the lifespan protocol ran on the serving loop.
    app.state.started_on = loop_name()
    yield


def loop_name():
    loop_type = type(asyncio.get_running_loop())
    return f"{loop_type.__module__}.{loop_type.__qualname__}"


async def info(request):
    return JSONResponse(
        {
            "loop": loop_name(),
            "started_on": request.app.state.started_on,
            "n": int(request.query_params.get("n", "0")),
        }
    )


async def stream(request):
    async def chunks():
        for i in range(STREAM_CHUNKS):
            yield stream_chunk(i)
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def echo(request):
    body = await request.body()
    return Response(body, media_type="application/octet-stream")


async def ws_echo(websocket):
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"][::-1])
        else:
            await websocket.send_bytes(message["bytes"][::-1])


app = Starlette(
    routes=[
        Route("/info", info),
        Route("/stream", stream),
        Route("/echo", echo, methods=["POST"]),
        WebSocketRoute("/ws", ws_echo),
    ],
    lifespan=lifespan,
)

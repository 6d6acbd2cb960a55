"""uvicorn serving a Starlette app (asgi_app.py), queried with httpx.

In-process: uvicorn.Server.serve() on the loop under test, with both of
uvicorn's HTTP implementations (httptools and h11). As a command: `python -m
uvicorn --loop <module>:new_event_loop`, uvicorn's way to take a custom loop
factory by import string, for ferroloop and (as the reference) for asyncio.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import uvicorn
import websockets
from asgi_app import STREAM_CHUNKS, app, loop_name, stream_chunk

HERE = os.path.dirname(os.path.abspath(__file__))
HTTP_IMPLEMENTATIONS = ["httptools", "h11"]


async def serve_and(http, sock, client_code, **options):
    """Serves the app with uvicorn on the listening socket, runs
    client_code(base_url) against it, then has uvicorn shut down as on
    Ctrl-C (should_exit) and checks it finished. Keywords go to uvicorn's
    Config (ssl_certfile/ssl_keyfile make it serve HTTPS)."""
    config = uvicorn.Config(app, http=http, lifespan="on", log_level="warning", **options)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    # uvicorn has no "started" event to await; poll its flag, and stop
    # polling if serve() ended early (its exception then surfaces).
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if serving.done():
        serving.result()
        raise AssertionError("uvicorn stopped before it started serving")
    host, port = sock.getsockname()
    scheme = "https" if "ssl_certfile" in options else "http"
    try:
        return await client_code(f"{scheme}://{host}:{port}")
    finally:
        server.should_exit = True
        await serving


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
def test_json_and_concurrency(run, listening_socket, http):
    async def client(base):
        async with httpx.AsyncClient(base_url=base) as http_client:

            async def get(n):
                resp = await http_client.get("/info", params={"n": n})
                assert resp.status_code == 200
                return resp.json()

            return loop_name(), await asyncio.gather(*(get(n) for n in range(30)))

    expected_loop, answers = run(serve_and(http, listening_socket, client))
    assert answers == [
        {"loop": expected_loop, "started_on": expected_loop, "n": n} for n in range(30)
    ]


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
def test_streaming_response(run, listening_socket, http):
    async def client(base):
        async with httpx.AsyncClient(base_url=base) as http_client:
            async with http_client.stream("GET", "/stream") as resp:
                assert resp.status_code == 200
                return b"".join([chunk async for chunk in resp.aiter_bytes()])

    body = run(serve_and(http, listening_socket, client))
    assert body == b"".join(stream_chunk(i) for i in range(STREAM_CHUNKS))


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
def test_post_large_body(run, listening_socket, http):
    data = os.urandom(1024 * 1024 + 3)

    async def client(base):
        async with httpx.AsyncClient(base_url=base) as http_client:
            resp = await http_client.post("/echo", content=data)
            return resp.status_code, resp.content

    status, body = run(serve_and(http, listening_socket, client))
    assert status == 200
    assert body == data


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
def test_connection_close(run, listening_socket, http):
    """`Connection: close` on every request: uvicorn closes the connection
    right after each response, which must still arrive whole."""
    data = os.urandom(1024 * 1024)

    async def client(base):
        async with httpx.AsyncClient(base_url=base, headers={"Connection": "close"}) as c:
            bodies = [(await c.post("/echo", content=data)).content for _ in range(4)]
            async with c.stream("GET", "/stream") as resp:
                streamed = b"".join([chunk async for chunk in resp.aiter_bytes()])
        return bodies, streamed

    bodies, streamed = run(serve_and(http, listening_socket, client))
    assert bodies == [data] * 4
    assert streamed == b"".join(stream_chunk(i) for i in range(STREAM_CHUNKS))


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
def test_websocket_route(run, listening_socket, http):
    blob = os.urandom(200 * 1024)

    async def client(base):
        async with websockets.connect(base.replace("http", "ws") + "/ws") as ws:
            await ws.send("abc")
            text = await ws.recv()
            await ws.send(blob)
            binary = await ws.recv()
        return text, binary, ws.close_code

    text, binary, close_code = run(serve_and(http, listening_socket, client))
    assert text == "cba"
    assert binary == blob[::-1]
    assert close_code == 1000


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
def test_https(run, listening_socket, http, tls):
    data = os.urandom(512 * 1024)

    async def client(base):
        async with httpx.AsyncClient(base_url=base, verify=tls.client_context()) as http_client:
            info = (await http_client.get("/info", params={"n": 1})).json()
            echoed = (await http_client.post("/echo", content=data)).content
        return info["n"], echoed

    n, echoed = run(
        serve_and(
            http, listening_socket, client, ssl_certfile=tls.certfile, ssl_keyfile=tls.keyfile
        )
    )
    assert n == 1
    assert echoed == data


def free_port():
    # The child binds it itself; a port just released by the kernel is not
    # handed out again at once, so the gap is harmless on loopback.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_uvicorn_command_with_loop_factory(run, loop_factory, pyrun):
    """`--loop asyncio:new_event_loop` / `--loop ferroloop:new_event_loop`:
    the served app must report that it runs on that loop, and uvicorn must
    shut down cleanly on SIGINT."""
    module = loop_factory.kind  # "asyncio" or "ferroloop", both have new_event_loop
    probe = loop_factory()
    expected_loop = f"{type(probe).__module__}.{type(probe).__qualname__}"
    probe.close()
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "asgi_app:app", "--app-dir", HERE,
        "--host", "127.0.0.1", "--port", str(port), "--http", "httptools",
        "--loop", f"{module}:new_event_loop", "--lifespan", "on",
    ]  # fmt: skip
    child = subprocess.Popen(
        command, env=pyrun.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output = []
        # Wait for uvicorn's own "ready" line (it logs it after binding).
        for line in child.stdout:
            output.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError("uvicorn exited before serving:\n" + "".join(output))

        async def query():
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http_client:
                info = (await http_client.get("/info", params={"n": 7})).json()
                echoed = (await http_client.post("/echo", content=b"x" * 100_000)).content
                return info, echoed

        info, echoed = run(query())
        child.send_signal(signal.SIGINT)
        rest, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    log = "".join(output) + rest
    assert info == {"loop": expected_loop, "started_on": expected_loop, "n": 7}, log
    assert echoed == b"x" * 100_000
    assert child.returncode == 0, log
    assert "Finished server process" in log, log

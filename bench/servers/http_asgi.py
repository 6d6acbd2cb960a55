"""Plaintext ASGI app for uvicorn: the same 1 KiB body on every request.

Run by bench/http.py as `python -m uvicorn http_asgi:app --app-dir bench/servers ...`.
"""

BODY = b"x" * 1024
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"),
                (b"content-length", str(len(BODY)).encode())],
}
BODY_MESSAGE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":  # uvicorn runs with --lifespan off; nothing else comes
        return
    await send(START)
    await send(BODY_MESSAGE)

"""Fixtures for the integration tests: real libraries, real servers, loopback.

Every test takes ``loop_factory`` (from tests/conftest.py), so it runs twice:
on the stock asyncio loop, the reference, and on ferroloop. ``run`` drives a
coroutine the way applications do, through ``asyncio.Runner(loop_factory=...)``.

PostgreSQL and Redis are started by ``scripts/services.sh start`` (which
scripts/test.sh runs). A test needing one that is not reachable is skipped
with the reason, unless FERROLOOP_REQUIRE_SERVICES=1 (set by scripts/test.sh)
turns that into a failure, so CI cannot pass by skipping.
"""

import asyncio
import dataclasses
import importlib.util
import os
import socket
import ssl
import subprocess

import pytest

# Say how to get the libraries, rather than fail on the first import.
_LIBRARIES = (
    "aiohttp", "asyncpg", "h11", "httptools", "httpx", "redis", "starlette", "uvicorn", "websockets"
)  # fmt: skip
_missing = [name for name in _LIBRARIES if importlib.util.find_spec(name) is None]
if _missing:
    raise ImportError(
        f"the integration tests need {', '.join(_missing)}: install them with "
        "`scripts/integration-deps.sh <python version>` (tests/integration/requirements.txt)"
    )

HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("FERROLOOP_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("FERROLOOP_REDIS_PORT", "56379"))
# The role and database scripts/services.sh creates.
PG_USER = "ferroloop"
PG_PASSWORD = "ferroloop"
PG_DATABASE = "ferroloop_test"


@pytest.fixture
def run(loop_factory):
    """``run(coro)``: runs the coroutine to completion on a loop of the kind
    under test and returns its result (the loop is closed afterwards)."""

    def run(coro):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro)

    return run


def _require_service(name, port):
    # A plain blocking connect, so the probe does not depend on either loop.
    try:
        socket.create_connection((HOST, port), timeout=5).close()
    except OSError as exc:
        reason = (
            f"{name} is not reachable on {HOST}:{port} ({exc}); "
            "start it with `scripts/services.sh start`"
        )
        if os.environ.get("FERROLOOP_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres():
    """Connection keywords for asyncpg.connect / create_pool."""
    _require_service("PostgreSQL", PG_PORT)
    # ssl=False: asyncpg's default ("prefer") would go through TLS, as the
    # server offers it; tests that want TLS ask for it.
    return dict(
        host=HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, database=PG_DATABASE, ssl=False
    )


@pytest.fixture(scope="session")
def redis_url():
    _require_service("Redis", REDIS_PORT)
    return f"redis://{HOST}:{REDIS_PORT}/0"


@pytest.fixture
def listening_socket():
    """A TCP socket listening on 127.0.0.1 on a free port, for servers that
    accept a ready socket (no port race). Closed after the test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(128)
    yield sock
    sock.close()


@dataclasses.dataclass(frozen=True)
class Tls:
    certfile: str
    keyfile: str

    def server_context(self):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context

    def client_context(self):
        """Verifies the server's certificate and host name (127.0.0.1)."""
        return ssl.create_default_context(cafile=self.certfile)


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and localhost, made by the
    openssl command (Debian's openssl package)."""
    directory = tmp_path_factory.mktemp("tls")
    certfile, keyfile = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", keyfile, "-out", certfile, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return Tls(certfile, keyfile)

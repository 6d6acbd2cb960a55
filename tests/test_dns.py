"""Name resolution: loop.getaddrinfo / loop.getnameinfo must agree with the
socket module (only local names/addresses are used: no network needed)."""

import asyncio
import socket

import pytest


@pytest.mark.parametrize(
    "host, port, kwargs",
    [
        ("127.0.0.1", 80, {}),
        ("localhost", 8080, {}),
        ("localhost", "53", {"family": socket.AF_INET, "type": socket.SOCK_DGRAM}),
        (None, 8000, {"flags": socket.AI_PASSIVE, "type": socket.SOCK_STREAM}),
        ("::1", None, {"family": socket.AF_INET6}),
        (b"127.0.0.1", b"80", {}),
    ],
    ids=["ipv4", "localhost", "kwargs", "passive", "ipv6", "bytes"],
)
def test_getaddrinfo_matches_socket_module(loop, host, port, kwargs):
    try:
        expected = socket.getaddrinfo(host, port, **kwargs)
    except socket.gaierror as exc:  # e.g. no IPv6 on this machine
        pytest.skip(f"socket.getaddrinfo itself fails here: {exc}")
    got = loop.run_until_complete(loop.getaddrinfo(host, port, **kwargs))
    assert got == expected


def test_getaddrinfo_result_types(loop):
    got = loop.run_until_complete(loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM))
    assert isinstance(got, list) and got
    family, type_, proto, canonname, sockaddr = got[0]
    assert isinstance(family, socket.AddressFamily) and family == socket.AF_INET
    assert isinstance(type_, socket.SocketKind) and type_ == socket.SOCK_STREAM
    assert isinstance(proto, int)
    assert isinstance(canonname, str)
    assert sockaddr == ("127.0.0.1", 80)


def test_getaddrinfo_error_is_gaierror(loop):
    expected = None
    try:
        socket.getaddrinfo("localhost", 80, flags=socket.AI_NUMERICHOST)
    except socket.gaierror as exc:
        expected = exc
    assert expected is not None
    with pytest.raises(socket.gaierror) as excinfo:
        loop.run_until_complete(loop.getaddrinfo("localhost", 80, flags=socket.AI_NUMERICHOST))
    assert excinfo.value.errno == expected.errno
    assert str(excinfo.value) == str(expected)

    with pytest.raises(socket.gaierror) as expected:
        socket.getaddrinfo("127.0.0.1", "no-such-service-xyz", type=socket.SOCK_STREAM)
    with pytest.raises(socket.gaierror) as excinfo:
        loop.run_until_complete(
            loop.getaddrinfo("127.0.0.1", "no-such-service-xyz", type=socket.SOCK_STREAM)
        )
    assert excinfo.value.errno == expected.value.errno


def test_getaddrinfo_bad_host_type(loop, stock_loop):
    with pytest.raises(TypeError) as expected:
        stock_loop.run_until_complete(stock_loop.getaddrinfo(123, 80))
    with pytest.raises(TypeError) as got:
        loop.run_until_complete(loop.getaddrinfo(123, 80))
    assert str(got.value) == str(expected.value)


def test_getaddrinfo_many_concurrent(loop):
    async def main():
        return await asyncio.gather(*(loop.getaddrinfo("127.0.0.1", p) for p in range(1, 31)))

    results = loop.run_until_complete(main())
    assert results == [socket.getaddrinfo("127.0.0.1", p) for p in range(1, 31)]


@pytest.mark.parametrize(
    "sockaddr, flags",
    [
        (("127.0.0.1", 53), socket.NI_DGRAM),
        (("::1", 80, 0, 0), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    ],
    ids=["ipv4", "ipv6"],
)
def test_getnameinfo_matches_socket_module(loop, sockaddr, flags):
    try:
        expected = socket.getnameinfo(sockaddr, flags)
    except (socket.gaierror, OSError) as exc:
        pytest.skip(f"socket.getnameinfo itself fails here: {exc}")
    got = loop.run_until_complete(loop.getnameinfo(sockaddr, flags))
    assert got == expected


def test_getnameinfo_default_flags(loop):
    got = loop.run_until_complete(loop.getnameinfo(("127.0.0.1", 80)))
    assert got == socket.getnameinfo(("127.0.0.1", 80), 0)


def test_getaddrinfo_on_closed_loop(loop):
    loop.close()
    awaitable = None
    with pytest.raises(RuntimeError) as excinfo:
        # Either when called or when first awaited (stock: a coroutine that
        # calls run_in_executor, which checks the loop).
        awaitable = loop.getaddrinfo("127.0.0.1", 80)
        awaitable.__await__().send(None)
    if asyncio.iscoroutine(awaitable):
        awaitable.close()
    assert str(excinfo.value) == "Event loop is closed"

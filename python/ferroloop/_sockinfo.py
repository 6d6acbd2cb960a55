"""A socket's family and type as plain ints, for the per-connection paths.

The ``socket.socket`` properties ``family`` and ``type`` convert the ints
to ``AddressFamily``/``SocketKind`` enums, ~1 µs each; a server used to
pay four per accepted connection. These read the C members directly.
"""

import _socket
import socket
from asyncio import base_events

family_of = _socket.socket.family.__get__
type_of = _socket.socket.type.__get__
INET_FAMILIES = (int(socket.AF_INET), int(socket.AF_INET6))


def set_nodelay(sock):
    """asyncio's ``base_events._set_nodelay``: TCP_NODELAY on TCP sockets
    (so small writes go out at once rather than waiting for an ACK)."""
    if not isinstance(sock, _socket.socket):
        base_events._set_nodelay(sock)  # duck-typed: asyncio's own check
    elif (family_of(sock) in INET_FAMILIES and type_of(sock) == socket.SOCK_STREAM
            and sock.proto == socket.IPPROTO_TCP):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

"""Networking: connections, servers, datagrams, pipes, TLS, sendfile, sock_*.

The orchestration methods (``create_connection`` with happy eyeballs,
``create_server``, ``start_tls``, ``sendfile``'s fallback, the ``sock_*``
coroutines, ...) are asyncio's own functions, bound to this loop. They
validate arguments and raise exactly what the running interpreter's asyncio
raises, version by version, and they reach the loop only through its public
methods and the transport-factory hooks defined here. Nothing in asyncio is
modified: the functions are looked up and stored as attributes of this
class, as any method is.

Where the time goes is ferroloop's own: the socket transport
(``_transports.py``, on the Rust ``StreamCore``); ``sock_recv``,
``sock_recv_into`` and ``sock_sendall``, which on plain non-blocking sockets
try at once and start their wait in one Rust call (no exception when
nothing has arrived yet, a Rust wake-up that ends its own wait; see
src/transports/sock_fast.rs); and the waits of those and of
``sock_accept``, registered as one-shot waits (one syscall per wait instead
of two, see src/core/registration.rs). Datagram and pipe transports are asyncio's
classes on ferroloop's fd watchers.
"""

import errno
import functools
import os
import socket
import weakref
from asyncio import base_events, constants, selector_events, sslproto, trsock, unix_events
from asyncio.log import logger

from . import _pipes, _sockinfo
from ._ferroloop import accept_now, sock_recv_into_now, sock_recv_now
from ._selector_view import SelectorView
from ._transports import SocketTransport

_Base = base_events.BaseEventLoop
_Selector = selector_events.BaseSelectorEventLoop
_Unix = unix_events._UnixSelectorEventLoop


def init_network_state(loop):
    """The attributes asyncio's borrowed methods expect on the loop."""
    # fd -> transport, weakly: add_reader and sock_* refuse an fd that a
    # live transport owns, and a forgotten transport may still be collected.
    loop._transports = weakref.WeakValueDictionary()
    # 3.13's create_unix_server records its sockets here (cleanup_socket).
    loop._unix_server_sockets = {}


class NetworkMixin:
    """asyncio's network half on ferroloop's transports."""

    @property
    def _selector(self):
        """Read-only view of the fd watchers, as the selector loop's (which
        drops its selector on close)."""
        return None if self.is_closed() else SelectorView(self)

    # fd watchers, public spelling: checks that no transport owns the fd.
    add_reader = _Selector.add_reader
    add_writer = _Selector.add_writer
    remove_reader = _Selector.remove_reader
    remove_writer = _Selector.remove_writer

    # Connections and servers.
    create_connection = _Base.create_connection
    _connect_sock = _Base._connect_sock
    _ensure_resolved = _Base._ensure_resolved
    _create_connection_transport = _Base._create_connection_transport
    create_server = _Base.create_server
    _create_server_getaddrinfo = _Base._create_server_getaddrinfo
    connect_accepted_socket = _Base.connect_accepted_socket
    create_unix_connection = _Unix.create_unix_connection
    create_unix_server = _Unix.create_unix_server
    _start_serving = _Selector._start_serving
    _accept_connection2 = _Selector._accept_connection2

    # Datagrams and pipes.
    create_datagram_endpoint = _Base.create_datagram_endpoint
    connect_read_pipe = _Base.connect_read_pipe
    connect_write_pipe = _Base.connect_write_pipe

    # TLS and sendfile.
    start_tls = _Base.start_tls
    sendfile = _Base.sendfile
    _sendfile_fallback = _Base._sendfile_fallback
    _sendfile_native = _Selector._sendfile_native
    _check_sendfile_params = _Base._check_sendfile_params
    sock_sendfile = _Base.sock_sendfile
    _sock_sendfile_fallback = _Base._sock_sendfile_fallback
    _sock_sendfile_native = _Unix._sock_sendfile_native
    _sock_sendfile_native_impl = _Unix._sock_sendfile_native_impl
    _sock_sendfile_update_filepos = _Unix._sock_sendfile_update_filepos
    _sock_add_cancellation_callback = _Unix._sock_add_cancellation_callback

    # The sock_* coroutines (sock_recv, sock_recv_into, sock_sendall and
    # sock_accept are below).
    _sock_recv = _Selector._sock_recv
    _sock_read_done = _Selector._sock_read_done
    _sock_recv_into = _Selector._sock_recv_into
    sock_recvfrom = _Selector.sock_recvfrom
    _sock_recvfrom = _Selector._sock_recvfrom
    sock_recvfrom_into = _Selector.sock_recvfrom_into
    _sock_recvfrom_into = _Selector._sock_recvfrom_into
    _sock_sendall = _Selector._sock_sendall
    sock_sendto = _Selector.sock_sendto
    _sock_sendto = _Selector._sock_sendto
    _sock_write_done = _Selector._sock_write_done
    sock_connect = _Selector.sock_connect
    _sock_connect = _Selector._sock_connect
    _sock_connect_cb = _Selector._sock_connect_cb

    def _ensure_fd_no_transport(self, fd):
        """Raises RuntimeError if a transport that is not closing owns `fd`,
        as the selector loop does (same messages), without its KeyError
        round trip: sock_recv calls this each time it has to wait."""
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        ref = self._transports.data.get(fileno)
        transport = ref() if ref is not None else None
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    # sock_recv, sock_recv_into and sock_sendall: one Rust call tries at
    # once and, if that would block, starts the wait and answers its future
    # (src/transports/sock_fast.rs); the wait's wake-up ends itself. Only a
    # wait given up (cancelled, or its coroutine closed) is ended here. For
    # what the Rust call does not handle (NotImplemented: debug mode, socket
    # subclasses, timeouts, other buffer types) the *_slow coroutines do
    # what asyncio does.

    async def sock_recv(self, sock, n):
        """Receive up to `n` bytes from the non-blocking socket `sock`."""
        result = self._sock_recv_fast(sock, n)
        if result.__class__ is bytes:
            return result
        if result is NotImplemented:
            return await self._sock_recv_slow(sock, n)
        try:
            return await result
        except BaseException:
            self._sock_wait_abandoned(sock, result)
            raise

    async def sock_recv_into(self, sock, buf):
        """Receive into the writable buffer `buf`; returns the byte count."""
        result = self._sock_recv_into_fast(sock, buf)
        if result.__class__ is int:
            return result
        if result is NotImplemented:
            return await self._sock_recv_into_slow(sock, buf)
        try:
            return await result
        except BaseException:
            self._sock_wait_abandoned(sock, result)
            raise

    async def sock_sendall(self, sock, data):
        """Send all of `data` to the non-blocking socket `sock`."""
        result = self._sock_sendall_fast(sock, data)
        if result is None:
            return None
        if result is NotImplemented:
            return await self._sock_sendall_slow(sock, data)
        try:
            return await result
        except BaseException:
            self._sock_wait_abandoned(sock, result)
            raise

    async def _sock_recv_slow(self, sock, n):
        base_events._check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        data = sock_recv_now(sock, n)
        if data is not None:
            return data
        return await self._sock_read_later(sock, self._sock_recv, n)

    async def _sock_recv_into_slow(self, sock, buf):
        base_events._check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        nbytes = sock_recv_into_now(sock, buf)
        if nbytes is not None:
            return nbytes
        return await self._sock_read_later(sock, self._sock_recv_into, buf)

    def _sock_read_later(self, sock, reader, arg):
        """A future that `reader(fut, sock, arg)` completes once `sock` is
        readable; the reader is removed when the future is done, cancelled
        included (asyncio's second half of sock_recv, with a one-shot
        wait)."""
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle = self._add_reader_until(fd, fut, reader, fut, sock, arg)
        fut.add_done_callback(functools.partial(self._sock_read_done, fd, handle=handle))
        return fut

    def _sock_write_later(self, sock, writer, *args):
        """A future that `writer(fut, sock, *args)` completes once `sock` is
        writable (it may take several wake-ups); the writer is removed when
        the future is done, cancelled included."""
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        handle = self._add_writer_until(fd, fut, writer, fut, sock, *args)
        fut.add_done_callback(functools.partial(self._sock_write_done, fd, handle=handle))
        return fut

    async def _sock_sendall_slow(self, sock, data):
        base_events._check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent == len(data):
            return None
        # asyncio's _sock_sendall sends the rest as the socket drains; the
        # one-element list is the position it advances.
        view = memoryview(data)
        return await self._sock_write_later(sock, self._sock_sendall, view, [sent])

    async def sock_accept(self, sock):
        """Accept a connection on the non-blocking listening socket `sock`;
        returns `(conn, address)` with `conn` non-blocking."""
        base_events._check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        try:
            return _accept_nonblocking(sock)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_read_later(sock, self._sock_accept_ready, None)

    def _sock_accept_ready(self, fut, sock, _unused):
        """sock_accept's wake-up: completes `fut` with the accepted pair or
        the error; a wake-up with nothing to accept keeps waiting."""
        if fut.done():
            return  # cancelled: a connection accepted now would be lost
        try:
            pair = _accept_nonblocking(sock)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(pair)

    def _accept_connection(
        self,
        protocol_factory,
        sock,
        sslcontext=None,
        server=None,
        backlog=100,
        ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout=constants.SSL_SHUTDOWN_TIMEOUT,
    ):
        """The listening socket's reader: accepts up to `backlog` connections
        and starts a task per connection, as asyncio's (the same on 3.11 to
        3.13), with the accept in Rust for TCP listeners: `accept_now`
        returns None where `sock.accept()` raises BlockingIOError, and skips
        the enum conversions of the `socket.socket` wrapper."""
        family = _sockinfo.family_of(sock) if sock.__class__ is socket.socket else None
        if family not in _sockinfo.INET_FAMILIES:
            return _Selector._accept_connection(
                self, protocol_factory, sock, sslcontext, server, backlog,
                ssl_handshake_timeout, ssl_shutdown_timeout,
            )
        fd = sock.fileno()
        for _ in range(backlog):
            try:
                accepted = accept_now(fd)
                if accepted is None:
                    return None
                conn_fd, addr = accepted
                # What sock.accept() returns (a socket.socket of the
                # listener's family, type and protocol), made non-blocking
                # as asyncio then makes it: the fd already is, and
                # SOCK_NONBLOCK in the type sets the object's timeout to 0
                # without the ioctl of conn.setblocking(False).
                conn = socket.socket(family, _sockinfo.type_of(sock) | socket.SOCK_NONBLOCK,
                                     sock.proto, conn_fd)
                if self._debug:
                    logger.debug("%r got a new connection from %r: %r", server, addr, conn)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return None
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise  # the loop logs it and carries on, as asyncio's
                # Linux keeps reporting the socket ready: stop watching it
                # for a while, as asyncio does.
                self.call_exception_handler({
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": trsock.TransportSocket(sock),
                })
                self._remove_reader(fd)
                self.call_later(
                    constants.ACCEPT_RETRY_DELAY, self._start_serving, protocol_factory,
                    sock, sslcontext, server, backlog, ssl_handshake_timeout,
                    ssl_shutdown_timeout,
                )
            else:
                extra = {"peername": addr}
                accept = self._accept_connection2(
                    protocol_factory, conn, extra, sslcontext, server,
                    ssl_handshake_timeout, ssl_shutdown_timeout,
                )
                self.create_task(accept)
        return None

    def _stop_serving(self, sock):
        """Stops accepting on a listening socket and closes it; a Unix
        socket file this loop created is removed if it is still ours."""
        path = None
        # Only 3.13's create_unix_server (cleanup_socket=True) records sockets.
        inode = self._unix_server_sockets.pop(sock, None)
        if inode is not None:
            path = sock.getsockname()
        self._remove_reader(sock.fileno())
        sock.close()
        if path is not None:
            _unlink_if_same_inode(path, inode)

    # Transport factories, called by the methods above.

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(
        self,
        rawsock,
        protocol,
        sslcontext,
        waiter=None,
        *,
        server_side=False,
        server_hostname=None,
        extra=None,
        server=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
        call_connection_made=True,
    ):
        # TLS is CPython's own: SSLProtocol drives an in-memory ssl.SSLObject
        # and sits between our socket transport and the user's protocol.
        ssl_protocol = sslproto.SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        self._make_socket_transport(rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    def _make_datagram_transport(self, sock, protocol, address=None, waiter=None, extra=None):
        return selector_events._SelectorDatagramTransport(
            self, sock, protocol, address, waiter, extra
        )

    # A pipe to one of the loop's children may grow under load (_pipes.py).
    def _make_read_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        if pipe in self._child_pipes:
            cls = _pipes.GrowingReadPipeTransport
        else:
            cls = unix_events._UnixReadPipeTransport
        return cls(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        if pipe in self._child_pipes:
            cls = _pipes.GrowingWritePipeTransport
        else:
            cls = unix_events._UnixWritePipeTransport
        return cls(self, pipe, protocol, waiter, extra)


_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _unlink_if_same_inode(path, inode):
    """Removes the socket file at `path` unless another one replaced it."""
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        base_events.logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)


def _accept_nonblocking(sock):
    """`sock.accept()`, with the new connection made non-blocking."""
    conn, address = sock.accept()
    conn.setblocking(False)
    return conn, address

"""The TCP/Unix socket transport: an ``asyncio.Transport`` whose state and
hot paths (reads, writes, flow control, closing) are the Rust ``StreamCore``.

Why two objects: ``asyncio.BaseTransport`` has ``__slots__``, and CPython
cannot lay out a class that derives from it and from a Rust class too. So
the transport users see is this Python class, and it owns a ``StreamCore``.
The loop's reader and writer handles call the core directly, and ``write``,
``is_closing``, ``close`` and ``__del__`` are Rust methods of this class
that reach the core through its ``_core`` slot, so the per-message calls
never run a Python frame. Everything here runs once per connection or on rare paths.
"""

import inspect
import sys
import warnings
import weakref
from asyncio import base_events, constants, futures, transports, trsock
from asyncio.log import logger

from . import _sockinfo
from ._ferroloop import StreamCore, _install_transport_methods

# 3.13's Server tracks its transports (for close_clients); before, it counts.
_SERVER_TRACKS_TRANSPORTS = "transport" in inspect.signature(base_events.Server._attach).parameters


# 3.12 gave writelines() its own checks and messages; before, it was write().
_WRITELINES_CHECKS_ITSELF = sys.version_info >= (3, 12)


def _detach_from_server(server, transport):
    if _SERVER_TRACKS_TRANSPORTS:
        server._detach(transport)
    else:
        server._detach()


class SocketTransport(transports._FlowControlMixin):
    """A connected stream socket (TCP or Unix) as an asyncio transport.

    Derives from asyncio's ``_FlowControlMixin`` only to be recognised as a
    flow-controlled transport (sendfile's fallback checks for it); the
    flow control itself is the core's, and the properties below shadow the
    mixin's slots.
    """

    __slots__ = ("_core", "_server", "__weakref__", "__dict__")

    max_size = 256 * 1024  # bytes asked of recv() per read, as asyncio
    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        # Runs once per connection, so the helpers are inline (each call is
        # a Python frame): what BaseTransport.__init__ does, then what
        # asyncio's _SelectorTransport.__init__ does.
        self._extra = extra = {} if extra is None else extra
        extra["socket"] = trsock.TransportSocket(sock)
        try:
            extra["sockname"] = sock.getsockname()
        except OSError:
            extra["sockname"] = None
        if "peername" not in extra:
            try:
                extra["peername"] = sock.getpeername()
            except OSError:
                extra["peername"] = None
        core = StreamCore(loop, self, sock, protocol)
        self._core = core
        self._server = server
        if server is not None:
            if _SERVER_TRACKS_TRANSPORTS:
                server._attach(self)
            else:
                server._attach()
        # Registered as asyncio's loop._transports[fd] = self registers it,
        # but with a plain weak reference: the WeakValueDictionary's own
        # costs three Python calls now and one when the transport dies. The
        # entry goes at connection loss (below); one left by a transport
        # collected unclosed reads as absent, as the dictionary's would.
        loop._transports.data[core._sock_fd] = weakref.ref(self)
        _sockinfo.set_nodelay(sock)
        loop.call_soon(protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(core._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def __repr__(self):
        core = getattr(self, "_core", None)
        info = [type(self).__name__]
        if core is None or core._sock is None:
            info.append("closed")
        elif core._closing:
            info.append("closing")
        if core is not None:
            info.append(f"fd={core._sock_fd}")
            loop = core._loop
            if loop is not None and not loop.is_closed():
                reading, writing = core._polling()
                info.append("read=polling" if reading else "read=idle")
                state = "polling" if writing else "idle"
                info.append(f"write=<{state}, bufsize={core.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    # __del__ is in Rust (see the end of this file): it returns at once
    # when the socket is closed, and calls this otherwise.
    def _finalize_unclosed(self, _warn=warnings.warn):
        _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
        sock = self._core._take_socket()
        if sock is not None:
            sock.close()
        server = getattr(self, "_server", None)
        if server is not None:
            _detach_from_server(server, self)

    # The asyncio.Transport API, forwarded to the core.

    def get_protocol(self):
        return self._core.get_protocol()

    def set_protocol(self, protocol):
        self._core.set_protocol(protocol)

    def is_reading(self):
        return self._core.is_reading()

    def pause_reading(self):
        if self._core.pause_reading():
            self._debug_log("%r pauses reading")

    def resume_reading(self):
        if self._core.resume_reading():
            self._debug_log("%r resumes reading")

    def abort(self):
        self._core.abort()

    def write_eof(self):
        self._core.write_eof()

    def can_write_eof(self):
        return True

    def writelines(self, list_of_data):
        # One write of the joined data: the same bytes in one send, and the
        # flow control of write().
        if _WRITELINES_CHECKS_ITSELF:
            core = self._core
            if core._eof:
                raise RuntimeError("Cannot call writelines() after write_eof()")
            if core._empty_waiter is not None:
                raise RuntimeError("unable to writelines; sendfile is in progress")
            if not list_of_data:
                return
            # memoryview() raises asyncio's TypeError for a bad item.
            list_of_data = map(memoryview, list_of_data)
        self.write(b"".join(list_of_data))

    def get_write_buffer_size(self):
        return self._core.get_write_buffer_size()

    # The marks exactly as given (any numbers, as asyncio keeps them); the
    # core compares against whole byte counts.
    _exact_limits = None

    def get_write_buffer_limits(self):
        if self._exact_limits is not None:
            return self._exact_limits
        return self._core.get_write_buffer_limits()

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._exact_limits = (low, high)
        # Byte counts are whole: size > 10.5 iff size > 10, size <= 2.5 iff
        # size <= 2; beyond a machine word a mark can never be reached.
        self._core._set_write_buffer_limits(int(min(high, sys.maxsize)), int(min(low, sys.maxsize)))

    # Called by the core and by asyncio's own code (sslproto, sendfile).

    def _debug_log(self, fmt):
        loop = self._core._loop
        if loop is not None and loop.get_debug():
            logger.debug(fmt, self)

    def _fatal_error(self, exc, message="Fatal error on transport"):
        loop = self._core._loop
        if isinstance(exc, OSError):
            if loop is not None and loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=exc)
        elif loop is not None:
            loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._core.get_protocol(),
                }
            )
        self._core._force_close(exc)

    def _force_close(self, exc):
        self._core._force_close(exc)

    def _call_connection_lost(self, exc):
        core = self._core
        try:
            protocol = core.get_protocol()
            if core._protocol_connected and protocol is not None:
                protocol.connection_lost(exc)
        finally:
            loop = core._loop
            sock = core._take_socket()
            if sock is not None:
                if loop is not None:
                    # Unregistered (see __init__), unless another owns the fd.
                    registered, fd = loop._transports.data, sock.fileno()
                    ref = registered.get(fd)
                    if ref is not None and ref() is self:
                        del registered[fd]
                sock.close()
            server = self._server
            if server is not None:
                if _SERVER_TRACKS_TRANSPORTS:
                    server._detach(self)
                else:
                    server._detach()
                self._server = None
        waiter = core._empty_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("Connection is closed by peer"))

    def _make_empty_waiter(self):
        return self._core._make_empty_waiter()

    def _reset_empty_waiter(self):
        self._core._reset_empty_waiter()

    def _read_ready(self):
        self._core._read_ready()

    def _write_ready(self):
        self._core._write_ready()

    # State asyncio's code and tests read.
    _sock = property(lambda self: self._core._sock)
    _sock_fd = property(lambda self: self._core._sock_fd)
    _loop = property(lambda self: self._core._loop)
    _protocol = property(lambda self: self._core.get_protocol())
    _closing = property(lambda self: self._core._closing)
    _conn_lost = property(lambda self: self._core._conn_lost)
    _paused = property(lambda self: self._core._paused)
    _eof = property(lambda self: self._core._eof)
    _protocol_paused = property(lambda self: self._core._protocol_paused)
    _empty_waiter = property(lambda self: self._core._empty_waiter)


# `write(data)`, `is_closing()`, `close()` and `__del__`, in Rust
# (src/transports/transport_methods.rs).
_install_transport_methods(SocketTransport)

"""Unix signals: ``add_signal_handler`` / ``remove_signal_handler``.

As in asyncio, Python's C-level handler writes the signal number to a
wake-up socket (``signal.set_wakeup_fd``); the loop watches that socket and
runs the registered callback as an ordinary callback on the next
iteration, in the context captured when the handler was added.
"""

import contextvars
import errno
import signal
import socket
import sys
import warnings

from ._errors import logger
from ._support import is_coroutine_like


def _noop_handler(signum, frame):
    """Installed with signal.signal(): the real work happens in the loop."""


def _check_signal(sig):
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


class SignalsMixin:
    """The signal part of ``ferroloop.Loop``."""

    def add_signal_handler(self, sig, callback, *args):
        if is_coroutine_like(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        self._check_closed()
        wakeup = self._signal_wakeup_socket()
        try:
            signal.set_wakeup_fd(wakeup.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        self._signal_handlers[sig] = (callback, args, contextvars.copy_context())
        try:
            signal.signal(sig, _noop_handler)
            # Let interrupted system calls restart instead of failing EINTR.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._clear_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught")
            raise

    def remove_signal_handler(self, sig):
        """Remove the handler for `sig`; True if there was one."""
        _check_signal(sig)
        if self._signal_handlers.pop(sig, None) is None:
            return False
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught")
            raise
        if not self._signal_handlers:
            self._clear_wakeup_fd()
        return True

    def _clear_wakeup_fd(self):
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError) as exc:
            logger.info("set_wakeup_fd(-1) failed: %s", exc)

    def _signal_wakeup_socket(self):
        """The write end of the wake-up socket pair, made on first use."""
        if self._signal_sockets is None:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._signal_sockets = (reader, writer)
            self._add_reader(reader.fileno(), self._read_signal_numbers)
        return self._signal_sockets[1]

    def _read_signal_numbers(self):
        reader = self._signal_sockets[0]
        while True:
            try:
                data = reader.recv(4096)
            except InterruptedError:
                continue
            except BlockingIOError:
                return
            if not data:
                return
            for signum in data:
                registered = self._signal_handlers.get(signum)
                if registered is not None:
                    callback, args, context = registered
                    self.call_soon(callback, *args, context=context)

    def _close_signal_handling(self):
        """Part of close(): remove our handlers and the wake-up sockets."""
        if self._signal_handlers:
            if sys.is_finalizing():
                warnings.warn(
                    f"Closing the loop {self!r} on interpreter shutdown stage, "
                    "skipping signal handlers removal",
                    ResourceWarning,
                    source=self,
                )
                self._signal_handlers.clear()
            else:
                for sig in list(self._signal_handlers):
                    self.remove_signal_handler(sig)
        if self._signal_sockets is not None:
            reader, writer = self._signal_sockets
            self._signal_sockets = None
            self._remove_reader(reader.fileno())
            reader.close()
            writer.close()

"""Pipe transports for the pipes a child process is connected through:
asyncio's own pipe transports, plus growing the kernel pipe once it is the
bottleneck.

Why: a Linux pipe holds 64 KiB, so a bulk transfer to or from a child costs
a read or write syscall and a loop wake-up per 64 KiB on each side, and the
two processes take turns more than they work. A pipe grown to 256 KiB
(``fcntl(F_SETPIPE_SZ)``) moves the same data in far fewer turns
(docs/benchmarks.md).

Only pipes that ``subprocess.Popen`` created for the loop (``stdin=PIPE``
and so on) grow, and only once one is seen full: a child that prints a few
lines keeps its 64 KiB pipe. Pipes the user hands to ``connect_read_pipe``
are never touched.

The kernel charges pipe capacity to the user (``pipe-user-pages-soft``,
64 MiB by default); once a user is over it, every new pipe of theirs, in
any process, gets only two pages. So this process never holds more than an
eighth of that limit in grown pipes, returns it when a pipe closes, and
leaves a pipe as it is when the kernel refuses.
"""

import fcntl
import os
import struct
import threading
import weakref
from asyncio import unix_events
from termios import FIONREAD

# As much as one read takes (the transports' max_size): one read still
# empties the pipe, as with 64 KiB, so output and the exit are reported in
# the same order and flow control overshoots by no more than on the stock
# loop. (A 1 MiB pipe moves more per turn, but then one read leaves data
# behind.)
GROWN_PIPE_SIZE = unix_events._UnixReadPipeTransport.max_size
_BUDGET_SHARE = 8  # the part of the user's pipe limit this process may use
_DEFAULT_SOFT_PAGES = 16384  # Linux's default pipe-user-pages-soft


def _read_int(path, default):
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return default


class _PipeBudget:
    """How many bytes of grown pipes this process may still hold."""

    def __init__(self):
        self._lock = threading.Lock()  # loops may run in several threads
        soft_pages = _read_int("/proc/sys/fs/pipe-user-pages-soft", _DEFAULT_SOFT_PAGES)
        # 0 means no limit; stay modest all the same.
        limit = (soft_pages or _DEFAULT_SOFT_PAGES) * os.sysconf("SC_PAGE_SIZE")
        self._left = limit // _BUDGET_SHARE

    def take(self, nbytes):
        with self._lock:
            if nbytes > self._left:
                return False
            self._left -= nbytes
            return True

    def give_back(self, nbytes):
        with self._lock:
            self._left += nbytes


_budget = _PipeBudget()
_target_size = min(GROWN_PIPE_SIZE, _read_int("/proc/sys/fs/pipe-max-size", GROWN_PIPE_SIZE))


class _Growth:
    """One pipe's growth: tried at most once, its budget returned once."""

    __slots__ = ("tried", "taken")

    def __init__(self):
        self.tried = False
        self.taken = 0

    def grow(self, fd):
        """Grows the pipe behind `fd` if the budget and the kernel allow;
        returns whether it did."""
        self.tried = True
        try:
            extra = _target_size - fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        except OSError:
            return False
        if extra <= 0 or not _budget.take(extra):
            return False
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _target_size)
        except OSError:  # EPERM: the user is over their pipe limit
            _budget.give_back(extra)
            return False
        self.taken = extra
        return True

    def release(self):
        taken, self.taken = self.taken, 0
        if taken:
            _budget.give_back(taken)


class _GrowthTracking:
    """What both growing transports share: a `_Growth` whose budget goes
    back when the pipe closes."""

    def __init__(self, *args, **kwargs):
        self._growth = _Growth()
        # The pipe closes in _call_connection_lost; a transport dropped
        # without closing closes its pipe when it is collected.
        weakref.finalize(self, self._growth.release)
        super().__init__(*args, **kwargs)

    def _call_connection_lost(self, exc):
        try:
            super()._call_connection_lost(exc)
        finally:
            self._growth.release()


class GrowingReadPipeTransport(_GrowthTracking, unix_events._UnixReadPipeTransport):
    """Reads a child's output; grows the pipe the first time it is full."""

    _default_size = None  # the pipe's size before growing, once read

    def _read_ready(self):
        if not self._growth.tried:
            self._grow_if_full()
        super()._read_ready()

    def _grow_if_full(self):
        """One ioctl per read until the pipe has grown (or could not)."""
        try:
            if self._default_size is None:
                self._default_size = fcntl.fcntl(self._fileno, fcntl.F_GETPIPE_SZ)
            (queued,) = struct.unpack("i", fcntl.ioctl(self._fileno, FIONREAD, b"\0" * 4))
        except OSError:
            return  # the read reports what is wrong
        if queued >= self._default_size:
            self._growth.grow(self._fileno)


class GrowingWritePipeTransport(_GrowthTracking, unix_events._UnixWritePipeTransport):
    """Feeds a child's input; grows the pipe the first time a write finds
    it full."""

    def write(self, data):
        super().write(data)
        if not self._growth.tried and self.get_write_buffer_size() and self._fileno is not None:
            self._growth.grow(self._fileno)

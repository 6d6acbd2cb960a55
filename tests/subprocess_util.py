"""Helpers shared by the test_subprocess_*.py files (not a test module).

The children are small shell commands (``/bin/sh``, ``cat``, ``head``):
spawning a Python interpreter costs ~20x more, and the suite has to stay
fast on a shared 2-core machine.
"""

import asyncio
import os
import time

SH = "/bin/sh"

# Hang guard only: a healthy test finishes in well under a second.
HANG_GUARD = 10


def run(loop, coro, timeout=HANG_GUARD):
    """Runs `coro` on `loop`, failing instead of hanging if it never ends."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def proc_stat(pid):
    """(state letter, parent pid) of `pid`, or None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def is_our_zombie(pid):
    stat = proc_stat(pid)
    return stat is not None and stat == ("Z", os.getpid())


def is_our_child(pid):
    """True while `pid` is a child of this process (running or a zombie)."""
    stat = proc_stat(pid)
    return stat is not None and stat[1] == os.getpid()


def our_zombies():
    """Pids of this process's children that have exited but were not reaped."""
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit()
                  and is_our_zombie(int(name)))


def wait_until_reaped(pids, timeout=5.0):
    """Waits (bounded) until none of `pids` is a child of this process any
    more; returns the ones that still are, with their state letters."""
    deadline = time.monotonic() + timeout
    while True:
        stats = {pid: proc_stat(pid) for pid in pids}  # one read each: no race
        left = {pid: st[0] for pid, st in stats.items() if st and st[1] == os.getpid()}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def children_with_marker(marker):
    """Pids of this process's children whose command line contains `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if marker.encode() in cmdline and is_our_child(int(name)):
            found.append(int(name))
    return found


def open_fds():
    """The file descriptors this process has open right now."""
    return set(int(fd) for fd in os.listdir("/proc/self/fd"))


class Recorder(asyncio.SubprocessProtocol):
    """A SubprocessProtocol that records its callbacks, in order.

    Data is recorded as ("data", fd, bytes); consecutive chunks for the same
    fd are merged, because how a stream is split into reads is up to the OS.
    `done` resolves at connection_lost, the last callback asyncio makes.
    """

    def __init__(self, loop):
        self.events = []
        self.transport = None
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append(("made",))

    def pipe_data_received(self, fd, data):
        last = self.events[-1] if self.events else None
        if last is not None and last[:2] == ("data", fd):
            self.events[-1] = ("data", fd, last[2] + data)
        else:
            self.events.append(("data", fd, data))

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append(("exited", self.transport.get_returncode()))

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        if not self.done.done():
            self.done.set_result(None)

    def data(self, fd):
        return b"".join(e[2] for e in self.events if e[:2] == ("data", fd))

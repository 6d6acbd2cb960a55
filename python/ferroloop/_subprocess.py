"""Subprocesses: spawning through ``subprocess.Popen``, exit notification
through a pidfd.

``subprocess_exec``/``subprocess_shell`` are asyncio's own (they validate
arguments exactly as the running interpreter's asyncio does), and so is the
transport, asyncio's ``_UnixSubprocessTransport``: it spawns with
``subprocess.Popen``, so every Popen keyword works, and connects the child's
pipes through the loop's pipe transports.

What differs from the stock loop is how the child's exit is noticed. The
stock loop asks a child watcher (a SIGCHLD handler or a thread per child);
ferroloop watches a pidfd (``os.pidfd_open``) like any other fd, so the
loop sets no signal handler (``add_signal_handler(SIGCHLD, ...)`` stays the
user's), needs no thread, and works in any thread. Where pidfds are missing
(Linux < 5.3), a thread per child waits instead.
"""

import os
import threading
from asyncio import base_events, unix_events
from asyncio.log import logger

_WAIT_BY_PIDFD = hasattr(os, "P_PIDFD") and hasattr(os, "waitid")

_Base = base_events.BaseEventLoop


def init_subprocess_state(loop):
    # pid -> pidfd of the children whose exit the loop is watching.
    loop._child_pidfds = {}
    # The pipes Popen made for children whose pipe transports are being
    # connected: these may grow under load (_pipes.py).
    loop._child_pipes = set()


def _reap(pid, *, warn=True):
    """Waits for `pid` and returns its return code; 255 when someone else
    reaped it first (a user's own SIGCHLD handler, say), as asyncio does."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        if warn:
            logger.warning(
                "child process pid %d exit status already read: will report returncode 255", pid
            )
        return 255
    return os.waitstatus_to_exitcode(status)


def _reap_exited(pid, pidfd):
    """Reaps the child whose pidfd reported its exit, without blocking.

    Through the pidfd where the kernel allows (Linux 5.4): waiting by pid
    could, if someone else reaped our child and its pid went to another
    child of ours, block the loop until that one exits.
    """
    if _WAIT_BY_PIDFD:
        try:
            info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            info = None
        except OSError:
            pass  # an older kernel refused P_PIDFD: wait by pid below
        else:
            if info is None:
                return _reap(pid)  # reports 255, with asyncio's warning
            if info.si_code == os.CLD_EXITED:
                return info.si_status
            return -info.si_status  # killed or dumped by a signal
    return _reap(pid)


def _reap_in_background(pid):
    """Reaps a child nobody waits for any more, so it leaves no zombie (its
    transport may already have reaped it: nothing to report then)."""
    threading.Thread(
        target=_reap, args=(pid,), kwargs={"warn": False}, name=f"ferroloop-reap-{pid}", daemon=True
    ).start()


class SubprocessMixin:
    """asyncio's subprocess API on pidfd exit notification."""

    subprocess_exec = _Base.subprocess_exec
    subprocess_shell = _Base.subprocess_shell
    _log_subprocess = _Base._log_subprocess

    async def _make_subprocess_transport(
        self, protocol, args, shell, stdin, stdout, stderr, bufsize, extra=None, **kwargs
    ):
        waiter = self.create_future()
        transport = unix_events._UnixSubprocessTransport(
            self,
            protocol,
            args,
            shell,
            stdin,
            stdout,
            stderr,
            bufsize,
            waiter=waiter,
            extra=extra,
            **kwargs,
        )
        self._watch_child(transport.get_pid(), transport)
        proc = transport._proc
        pipes = [p for p in (proc.stdin, proc.stdout, proc.stderr) if p is not None]
        self._child_pipes.update(pipes)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        finally:
            # Connected by now (or given up): forget them, so that no other
            # object ever matches.
            self._child_pipes.difference_update(pipes)
        return transport

    def _watch_child(self, pid, transport):
        """Arranges for `transport._process_exited(code)` once `pid` exits."""
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            # No pidfd support (or the child is already gone): wait in a
            # thread, which also copes with a child reaped by someone else.
            threading.Thread(
                target=self._wait_in_thread,
                args=(pid, transport),
                name=f"ferroloop-waitpid-{pid}",
                daemon=True,
            ).start()
            return
        self._child_pidfds[pid] = pidfd
        self._add_reader(pidfd, self._child_exited, pid, transport)

    def _child_exited(self, pid, transport):
        """The child's pidfd became readable: it exited."""
        pidfd = self._child_pidfds.pop(pid, None)
        if pidfd is None:
            return
        self._remove_reader(pidfd)
        try:
            returncode = _reap_exited(pid, pidfd)
        finally:
            os.close(pidfd)
        # One iteration later, as with the stock loop's child watchers, so
        # that output the pipes already hold is delivered first.
        self.call_soon(transport._process_exited, returncode)

    def _wait_in_thread(self, pid, transport):
        returncode = _reap(pid)
        try:
            self.call_soon_threadsafe(transport._process_exited, returncode)
        except RuntimeError:
            pass  # the loop was closed meanwhile; nobody is listening

    def _close_child_watching(self):
        """On loop close: children still running are handed to reaper
        threads, so none is left a zombie."""
        children, self._child_pidfds = self._child_pidfds, {}
        for pid, pidfd in children.items():
            self._remove_reader(pidfd)
            os.close(pidfd)
            _reap_in_background(pid)

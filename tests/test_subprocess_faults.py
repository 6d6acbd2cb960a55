"""Subprocess faults and bad input: spawn failures, children killed by
signals or closing their pipes early, writes to a child that is gone,
cancellation, and closing the loop while children still run."""

import asyncio
import errno
import gc
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from asyncio.subprocess import DEVNULL, PIPE

import pytest
from subprocess_util import (
    SH,
    children_with_marker,
    is_our_child,
    open_fds,
    run,
    wait_until_reaped,
)


def spawn_error(loop, *args, **kwargs):
    """The exception create_subprocess_exec(*args, **kwargs) raises on `loop`."""
    async def main():
        await asyncio.create_subprocess_exec(*args, stdout=PIPE, stderr=PIPE, **kwargs)

    with pytest.raises(Exception) as info:
        run(loop, main())
    return info.value


def describe(exc):
    return type(exc), getattr(exc, "errno", None), getattr(exc, "filename", None), str(exc)


def test_missing_executable_same_error_as_stock(loop, stock_loop):
    name = "/nonexistent/ferroloop-no-such-program"
    expected = spawn_error(stock_loop, name, "arg")
    assert isinstance(expected, FileNotFoundError) and expected.errno == errno.ENOENT
    assert describe(spawn_error(loop, name, "arg")) == describe(expected)


def test_missing_executable_on_path_same_error_as_stock(loop, stock_loop):
    name = "ferroloop-no-such-program-on-path"
    expected = spawn_error(stock_loop, name)
    assert isinstance(expected, FileNotFoundError)
    assert describe(spawn_error(loop, name)) == describe(expected)


def test_not_executable_same_error_as_stock(loop, stock_loop, tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho no\n")
    script.chmod(0o644)  # no x bit: execve fails with EACCES, even for root
    expected = spawn_error(stock_loop, str(script))
    assert isinstance(expected, PermissionError)
    assert describe(spawn_error(loop, str(script))) == describe(expected)


def test_missing_cwd_same_error_as_stock(loop, stock_loop, tmp_path):
    cwd = tmp_path / "gone"
    expected = spawn_error(stock_loop, "true", cwd=cwd)
    assert isinstance(expected, FileNotFoundError)
    assert describe(spawn_error(loop, "true", cwd=cwd)) == describe(expected)


def test_preexec_fn_that_raises_same_error_as_stock(loop, stock_loop):
    def boom():
        raise ValueError("in preexec_fn")

    expected = spawn_error(stock_loop, "true", preexec_fn=boom)
    assert isinstance(expected, subprocess.SubprocessError)
    assert describe(spawn_error(loop, "true", preexec_fn=boom)) == describe(expected)


def test_failed_spawns_leak_no_fds(loop):
    spawn_error(loop, "/nonexistent/warm-up")  # lazily created loop fds, if any
    gc.collect()
    before = open_fds()
    for _ in range(20):
        spawn_error(loop, "/nonexistent/program")
    gc.collect()
    assert open_fds() == before


def test_missing_command_in_shell_exits_127(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "ferroloop-no-such-command", stdout=PIPE, stderr=PIPE)
        out, err = await proc.communicate()
        return out, b"not found" in err, proc.returncode

    assert run(loop, main()) == (b"", True, 127)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1])
def test_child_killed_by_signal_has_negative_returncode(loop, sig):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", f"echo before; kill -{sig.name[3:]} $$; echo after", stdout=PIPE)
        out, _ = await proc.communicate()
        return out, proc.returncode

    assert run(loop, main()) == (b"before\n", -sig)


def test_child_killed_from_outside(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", "echo ready; exec sleep 30", stdout=PIPE)
        assert await proc.stdout.readline() == b"ready\n"
        os.kill(proc.pid, signal.SIGTERM)
        return await proc.wait(), await proc.stdout.read()

    assert run(loop, main()) == (-signal.SIGTERM, b"")


def test_child_closes_stdout_early(loop):
    # EOF on stdout while the child is still running and still writing to
    # stderr; it exits only when told to.
    async def main():
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", "echo out; exec >&-; echo err1 >&2; read x; echo err2 >&2; exit 4",
            stdin=PIPE, stdout=PIPE, stderr=PIPE)
        lines = [await proc.stdout.readline(), await proc.stdout.readline()]
        first_err = await proc.stderr.readline()
        running = proc.returncode is None
        out, err = await proc.communicate(b"go\n")
        return lines, first_err, running, out, err, proc.returncode

    assert run(loop, main()) == ([b"out\n", b""], b"err1\n", True, b"", b"err2\n", 4)


def test_communicate_with_child_that_stops_reading(loop):
    # head reads 10 bytes and exits; the rest of the input hits a closed
    # pipe. communicate() swallows the BrokenPipeError, as asyncio does.
    async def main():
        proc = await asyncio.create_subprocess_exec(
            "head", "-c", "10", stdin=PIPE, stdout=PIPE)
        out, err = await proc.communicate(b"0123456789" * 1_000_000)
        return out, err, proc.returncode

    assert run(loop, main()) == (b"0123456789", None, 0)


def _record_handler_calls(loop):
    calls = []
    loop.set_exception_handler(lambda lp, ctx: calls.append(ctx))
    return calls


def test_write_and_drain_after_child_exited(loop):
    # Depending on when the end of the pipe is noticed, drain() either
    # returns or raises ConnectionResetError: the stock loop does both too
    # (run it in a loop to see). Any other outcome, or an error reaching
    # the exception handler, is a bug.
    async def main():
        handler_calls = _record_handler_calls(loop)
        outcomes = set()
        for _ in range(5):
            proc = await asyncio.create_subprocess_exec("true", stdin=PIPE)
            await proc.wait()
            proc.stdin.write(b"x")
            try:
                await proc.stdin.drain()
            except ConnectionResetError as exc:
                outcomes.add(type(exc))
            else:
                outcomes.add(None)
            assert proc.stdin.is_closing()
        return outcomes, handler_calls

    outcomes, handler_calls = run(loop, main())
    assert outcomes <= {None, ConnectionResetError}
    assert handler_calls == []


def test_large_write_to_exiting_child_raises_broken_pipe_or_nothing(loop):
    async def main():
        handler_calls = _record_handler_calls(loop)
        outcomes = set()
        for _ in range(5):
            proc = await asyncio.create_subprocess_exec("true", stdin=PIPE)
            proc.stdin.write(b"x" * (1 << 20))  # more than a pipe holds
            try:
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                outcomes.add(type(exc))
            else:
                outcomes.add(None)
            assert await proc.wait() == 0
        return outcomes, handler_calls

    outcomes, handler_calls = run(loop, main())
    assert outcomes <= {None, BrokenPipeError, ConnectionResetError}
    assert handler_calls == []  # OSErrors on pipes are not "unexpected" errors


def test_child_reaped_by_someone_else_reports_255(loop_kind, loop, caplog):
    # A user's own os.waitpid() (in a SIGCHLD handler, say) can take the
    # exit status first: asyncio then reports 255 and logs a warning.
    if loop_kind == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("stock asyncio 3.11 waits in a thread (ThreadedChildWatcher), which "
                    "races with our waitpid(): the outcome is not deterministic there")

    async def main():
        proc = await asyncio.create_subprocess_exec(SH, "-c", "read x; exit 3", stdin=PIPE)
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        # Blocking, on purpose: the loop cannot run (and reap) meanwhile.
        _, status = os.waitpid(proc.pid, 0)
        return os.waitstatus_to_exitcode(status), await proc.wait()

    with caplog.at_level("WARNING", logger="asyncio"):
        assert run(loop, main()) == (3, 255)
    assert "exit status already read" in caplog.text


def test_cancel_communicate(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", "echo partial; exec sleep 30", stdin=PIPE, stdout=PIPE)
        assert await proc.stdout.readline() == b"partial\n"
        task = asyncio.ensure_future(proc.communicate(b"input"))
        await asyncio.sleep(0.05)  # let communicate() block on the output
        task.cancel()
        await asyncio.wait([task])
        still_running = proc.returncode is None and is_our_child(proc.pid)
        proc.kill()
        return task.cancelled(), still_running, await proc.wait()

    assert run(loop, main()) == (True, True, -signal.SIGKILL)


def test_communicate_timeout_then_kill(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec("sleep", "30", stdout=PIPE)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(proc.communicate(), 0.05)
        proc.kill()
        out, _ = await proc.communicate()
        return out, proc.returncode

    assert run(loop, main()) == (b"", -signal.SIGKILL)


def test_cancelled_wait_does_not_lose_the_exit(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE)
        waiter = asyncio.ensure_future(proc.wait())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.wait([waiter])
        proc.stdin.close()
        return waiter.cancelled(), await proc.wait()

    assert run(loop, main()) == (True, 0)


def test_cancelled_spawn_kills_and_reaps_the_child(loop):
    # Cancelled while asyncio connects the pipes (after Popen started the
    # child): the child must be killed and reaped, not left behind.
    marker = f"ferroloop-cancelled-{uuid.uuid4().hex}"

    async def main():
        # `exec`: no grandchild that would keep the pipe open after the kill.
        task = asyncio.ensure_future(asyncio.create_subprocess_exec(
            SH, "-c", "exec sleep 30", marker, stdout=PIPE))
        await asyncio.sleep(0)  # the task is now inside subprocess_exec
        task.cancel()
        # (not `pytest.raises(CancelledError)`: it would also swallow the
        # hang guard's cancellation)
        await asyncio.wait([task])
        return task.cancelled()

    assert run(loop, main()) is True
    # No bounded wait needed for the kill: the cancelled call waited for it.
    assert children_with_marker(marker) == []


def _spawn_unfinished(loop, marker):
    """Starts a child with no pipes that exits by itself after 0.3 s."""
    async def main():
        return await asyncio.create_subprocess_exec(
            SH, "-c", "sleep 0.3", marker, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)

    return run(loop, main())


def test_close_loop_with_running_child_warns(loop):
    # The usual shape: asyncio.run() returns while a child still runs, and
    # the Process object goes away with the loop: a ResourceWarning says so.
    proc = _spawn_unfinished(loop, f"ferroloop-unfinished-{uuid.uuid4().hex}")
    pid = proc.pid
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del proc
        gc.collect()  # the transport and its protocol form a cycle
        # Stock 3.11's watcher thread holds the transport until the exit,
        # and lets go of it only when the thread ends, just after the reap.
        wait_until_reaped([pid], timeout=2)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(
                t.name.startswith("asyncio-waitpid-") for t in threading.enumerate()):
            time.sleep(0.01)
        gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert any("unclosed transport" in m for m in messages), messages


STOCK_LEAVES_ZOMBIE = (
    "stock asyncio 3.12+ (PidfdChildWatcher) forgets the child at loop close: it stays a "
    "zombie until subprocess.Popen's next spawn reaps it, so only the ferroloop half "
    "(and stock 3.11's thread watcher) are held to this")


@pytest.mark.parametrize("keep_process_object", [False, True])
def test_close_loop_with_running_child_leaves_no_zombie(loop_kind, loop, keep_process_object):
    if loop_kind == "asyncio" and sys.version_info >= (3, 12):
        pytest.skip(STOCK_LEAVES_ZOMBIE)
    proc = _spawn_unfinished(loop, f"ferroloop-unfinished-{uuid.uuid4().hex}")
    pid = proc.pid
    loop.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # checked in the test above
        if not keep_process_object:
            del proc
            gc.collect()
        assert wait_until_reaped([pid]) == {}
        proc = None
        gc.collect()

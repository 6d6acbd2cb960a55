"""Unix signal handlers: add_signal_handler / remove_signal_handler, and
Ctrl-C (SIGINT) reaching a loop that sleeps in its poller."""

import asyncio
import os
import signal
import subprocess
import threading
import time

import pytest

SIGUSR1 = signal.SIGUSR1
SIGUSR2 = signal.SIGUSR2


def wait_for(loop, fut, seconds=10):
    return loop.run_until_complete(asyncio.wait_for(fut, seconds))


def _set_once(fut, value):
    if not fut.done():
        fut.set_result(value)


def test_signal_handler_called_with_args(loop):
    got = loop.create_future()
    loop.add_signal_handler(SIGUSR1, lambda *args: _set_once(got, args), "a", 2)
    loop.call_soon(os.kill, os.getpid(), SIGUSR1)
    assert wait_for(loop, got) == ("a", 2)
    assert loop.remove_signal_handler(SIGUSR1) is True


def test_signal_handler_runs_in_loop_thread_as_callback(loop):
    got = loop.create_future()

    def handler():
        _set_once(got, (threading.get_ident(), asyncio.get_running_loop()))

    loop.add_signal_handler(SIGUSR1, handler)
    loop.call_soon(os.kill, os.getpid(), SIGUSR1)
    ident, running = wait_for(loop, got)
    assert ident == threading.get_ident()
    assert running is loop
    loop.remove_signal_handler(SIGUSR1)


def test_signal_received_before_loop_runs(loop):
    calls = []
    loop.add_signal_handler(SIGUSR1, calls.append, "sig")
    os.kill(os.getpid(), SIGUSR1)
    assert calls == []  # never called synchronously from the C signal handler

    async def until_called():
        while not calls:
            await asyncio.sleep(0.001)

    wait_for(loop, until_called())
    assert calls == ["sig"]
    loop.remove_signal_handler(SIGUSR1)


def test_signal_wakes_up_idle_loop(loop):
    # The loop blocks in its poller with nothing scheduled; a signal sent from
    # another thread must wake it up.  The watchdog only detects a hang.
    state = {"watchdog": False}
    loop.add_signal_handler(SIGUSR1, loop.stop)
    killer = threading.Thread(target=lambda: (time.sleep(0.05), os.kill(os.getpid(), SIGUSR1)))
    watchdog = loop.call_later(10, lambda: (state.update(watchdog=True), loop.stop()))
    killer.start()
    try:
        loop.run_forever()
    finally:
        killer.join()
    watchdog.cancel()
    assert state["watchdog"] is False
    loop.remove_signal_handler(SIGUSR1)


def test_two_different_signals(loop):
    got = []
    done = loop.create_future()

    def handler(name):
        got.append(name)
        if len(set(got)) == 2:
            _set_once(done, None)

    loop.add_signal_handler(SIGUSR1, handler, "usr1")
    loop.add_signal_handler(SIGUSR2, handler, "usr2")
    loop.call_soon(os.kill, os.getpid(), SIGUSR1)
    loop.call_soon(os.kill, os.getpid(), SIGUSR2)
    wait_for(loop, done)
    assert set(got) == {"usr1", "usr2"}
    assert loop.remove_signal_handler(SIGUSR1) is True
    assert loop.remove_signal_handler(SIGUSR2) is True


def test_replacing_signal_handler(loop):
    got = loop.create_future()
    loop.add_signal_handler(SIGUSR1, lambda: _set_once(got, "old"))
    loop.add_signal_handler(SIGUSR1, lambda: _set_once(got, "new"))
    loop.call_soon(os.kill, os.getpid(), SIGUSR1)
    assert wait_for(loop, got) == "new"
    assert loop.remove_signal_handler(SIGUSR1) is True
    assert loop.remove_signal_handler(SIGUSR1) is False


def test_remove_signal_handler_return_values_and_restores_default(loop):
    assert loop.remove_signal_handler(SIGUSR1) is False
    loop.add_signal_handler(SIGUSR1, lambda: None)
    assert signal.getsignal(SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
    assert loop.remove_signal_handler(SIGUSR1) is True
    assert signal.getsignal(SIGUSR1) == signal.SIG_DFL
    assert loop.remove_signal_handler(SIGUSR1) is False


def test_remove_sigint_handler_restores_default_int_handler(loop):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_close_removes_signal_handlers(loop):
    loop.add_signal_handler(SIGUSR1, lambda: None)
    loop.close()
    assert signal.getsignal(SIGUSR1) == signal.SIG_DFL


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def _noop():
    pass


async def _coro_func():
    pass


BAD_SIGNALS = [
    (999, ValueError, "invalid signal number 999"),
    (0, ValueError, "invalid signal number 0"),
    (-1, ValueError, "invalid signal number -1"),
    (signal.SIGKILL, RuntimeError, f"sig {int(signal.SIGKILL)} cannot be caught"),
    (signal.SIGSTOP, RuntimeError, f"sig {int(signal.SIGSTOP)} cannot be caught"),
    ("SIGUSR1", TypeError, "sig must be an int, not 'SIGUSR1'"),
    (1.0, TypeError, "sig must be an int, not 1.0"),
]


def test_add_signal_handler_bad_signal(loop, stock_loop, check_same_error):
    for sig, expected_type, expected_msg in BAD_SIGNALS:
        exc = check_same_error(lambda lp: lp.add_signal_handler(sig, _noop), loop, stock_loop)
        assert (type(exc), str(exc)) == (expected_type, expected_msg)


def test_remove_signal_handler_bad_signal(loop, stock_loop, check_same_error):
    for sig in (999, "SIGUSR1"):
        check_same_error(lambda lp: lp.remove_signal_handler(sig), loop, stock_loop)


def test_sigkill_failure_leaves_no_handler(loop):
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, _noop)
    assert loop.remove_signal_handler(signal.SIGKILL) is False


def test_add_signal_handler_rejects_coroutines(loop, stock_loop, check_same_error):
    def with_function(lp):
        lp.add_signal_handler(SIGUSR1, _coro_func)

    def with_object(lp):
        coro = _coro_func()
        try:
            lp.add_signal_handler(SIGUSR1, coro)
        finally:
            coro.close()

    for attempt in (with_function, with_object):
        exc = check_same_error(attempt, loop, stock_loop)
        assert type(exc) is TypeError
        assert str(exc) == "coroutines cannot be used with add_signal_handler()"
    assert loop.remove_signal_handler(SIGUSR1) is False


def test_add_signal_handler_on_closed_loop(loop, stock_loop, check_same_error):
    loop.close()
    stock_loop.close()
    exc = check_same_error(lambda lp: lp.add_signal_handler(SIGUSR1, _noop), loop, stock_loop)
    assert str(exc) == "Event loop is closed"


def test_add_signal_handler_from_non_main_thread(loop, stock_loop):
    def attempt(lp):
        box = {}

        def target():
            try:
                lp.add_signal_handler(SIGUSR1, _noop)
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                box["exc"] = exc

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        return box.get("exc")

    expected = attempt(stock_loop)
    got = attempt(loop)
    assert type(expected) is RuntimeError
    assert type(got) is RuntimeError
    assert str(got) == str(expected)
    assert signal.getsignal(SIGUSR1) == signal.SIG_DFL


# ---------------------------------------------------------------------------
# SIGINT / Ctrl-C in a child process
# ---------------------------------------------------------------------------

RUN_FOREVER_SCRIPT = """
import sys
loop = new_loop()
loop.call_soon(lambda: print("ready", flush=True))
try:
    loop.run_forever()
finally:
    loop.close()
print("not reached")
"""

RUNNER_SCRIPT = """
import asyncio

async def main():
    print("ready", flush=True)
    await asyncio.sleep(100)

with asyncio.Runner(loop_factory=new_loop) as runner:
    runner.run(main())
print("not reached")
"""

RUN_UNTIL_COMPLETE_SCRIPT = """
import asyncio
loop = new_loop()

async def main():
    print("ready", flush=True)
    await asyncio.sleep(100)

try:
    loop.run_until_complete(main())
finally:
    loop.close()
print("not reached")
"""


# A loop that spends its time waiting for executor round trips (ferroloop
# spins part of that time instead of sleeping in a syscall a signal would
# interrupt: see src/eventloop/spin.rs).
ROUND_TRIPS_SCRIPT = """
import asyncio, time
loop = new_loop()

async def main():
    print("ready", flush=True)
    while True:
        await asyncio.to_thread(time.sleep, 0.0002)

try:
    loop.run_until_complete(main())
finally:
    loop.close()
print("not reached")
"""


@pytest.mark.parametrize(
    "script",
    [RUN_FOREVER_SCRIPT, RUN_UNTIL_COMPLETE_SCRIPT, RUNNER_SCRIPT, ROUND_TRIPS_SCRIPT],
    ids=["run_forever", "run_until_complete", "asyncio.Runner", "executor round trips"],
)
def test_sigint_interrupts_sleeping_loop(pyrun, script):
    proc = pyrun.popen(script)
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"child did not get ready: {line + out!r}\n{err}")
        time.sleep(0.1)  # let the loop block in its poller
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("SIGINT did not stop the loop within 10 s")
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert elapsed < 10
    assert "not reached" not in stdout
    assert "KeyboardInterrupt" in stderr, stderr
    assert proc.returncode != 0

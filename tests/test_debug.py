"""Debug mode: get/set_debug, environment switches, slow callback warnings,
thread checks and handle representations."""

import logging
import re
import threading
import time

import pytest

NON_THREAD_SAFE = (
    "Non-thread-safe operation invoked on an event loop other than the current one"
)


def run_once(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_debug_default_matches_stock(loop, stock_loop):
    assert loop.get_debug() is stock_loop.get_debug()


def test_set_debug_and_get_debug(loop):
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False
    seen = []

    def toggle():
        loop.set_debug(True)
        seen.append(loop.get_debug())

    loop.call_soon(toggle)
    run_once(loop)
    assert seen == [True]
    assert loop.get_debug() is True


DEBUG_SCRIPT = """
lp = new_loop()
try:
    print("DEBUG", lp.get_debug())
finally:
    lp.close()
"""


@pytest.mark.parametrize(
    "python_args, env, expected",
    [
        ((), {}, "DEBUG False"),
        ((), {"PYTHONASYNCIODEBUG": "1"}, "DEBUG True"),
        (("-X", "dev"), {}, "DEBUG True"),
        ((), {"PYTHONDEVMODE": "1"}, "DEBUG True"),
    ],
    ids=["default", "PYTHONASYNCIODEBUG", "X-dev", "PYTHONDEVMODE"],
)
def test_debug_enabled_by_environment(pyrun, python_args, env, expected):
    proc = pyrun.run(DEBUG_SCRIPT, python_args=python_args, env=pyrun.env(**env))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == expected


def test_slow_callback_duration_attribute(loop):
    assert loop.slow_callback_duration == 0.1
    loop.slow_callback_duration = 0.25
    assert loop.slow_callback_duration == 0.25


def test_slow_callback_warning_in_debug_mode(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    def slow_callback():
        time.sleep(0.05)

    handle = loop.call_soon(slow_callback)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run_once(loop)
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    slow = [m for m in messages if m.startswith("Executing ")]
    assert len(slow) == 1, messages
    match = re.fullmatch(r"Executing (.*) took (\d+\.\d{3}) seconds", slow[0], re.S)
    assert match, slow[0]
    assert match.group(1) == repr(handle)
    assert "slow_callback" in match.group(1)
    assert float(match.group(2)) >= 0.01
    record = [r for r in caplog.records if r.getMessage() == slow[0]][0]
    assert record.levelname == "WARNING"


def test_no_slow_callback_warning_without_debug(loop, caplog):
    loop.set_debug(False)
    loop.slow_callback_duration = 0.01
    loop.call_soon(time.sleep, 0.05)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run_once(loop)
    assert not [r for r in caplog.records if r.getMessage().startswith("Executing ")]


def _from_other_thread(fn):
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            box["exc"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return box


def test_non_threadsafe_call_from_other_thread_raises_in_debug(loop):
    loop.set_debug(True)
    schedulers = {
        "call_soon": lambda: loop.call_soon(print),
        "call_later": lambda: loop.call_later(10, print),
        "call_at": lambda: loop.call_at(loop.time() + 10, print),
    }
    results = {}

    def from_loop():
        for name, schedule in schedulers.items():
            exc = _from_other_thread(schedule).get("exc")
            results[name] = (type(exc).__name__, str(exc))

    loop.call_soon(from_loop)
    run_once(loop)
    assert results == {name: ("RuntimeError", NON_THREAD_SAFE) for name in schedulers}


def test_thread_checks_in_debug_mode_allow_legitimate_calls(loop):
    loop.set_debug(True)
    calls = []
    # call_soon from another thread is fine while the loop is not running ...
    assert "exc" not in _from_other_thread(lambda: loop.call_soon(calls.append, "not-running"))
    # ... and call_soon_threadsafe is always fine.
    results = []
    loop.call_soon(
        lambda: results.append(
            _from_other_thread(lambda: loop.call_soon_threadsafe(calls.append, "threadsafe"))
        )
    )
    run_once(loop)
    run_once(loop)
    assert "exc" not in results[0]
    assert calls == ["not-running", "threadsafe"]


def _make_handles(lp):
    """Create handles from fixed source lines, so reprs are comparable."""

    def callback(*args):
        pass

    soon = lp.call_soon(callback, 1, "two")
    soon_noargs = lp.call_soon(callback)
    cancelled = lp.call_soon(callback, 3)
    cancelled.cancel()
    timer = lp.call_later(3600, callback, 4)
    return soon, soon_noargs, cancelled, timer


def test_handle_repr_matches_stock(loop, stock_loop):
    # The handle repr shows up in log messages ("handle: <Handle ...>",
    # "Executing <Handle ...> took ..."), so it should be the same.
    when = re.compile(r"when=[0-9.e+-]+")
    for debug in (False, True):
        loop.set_debug(debug)
        stock_loop.set_debug(debug)
        expected = [when.sub("when=W", repr(h)) for h in _make_handles(stock_loop)]
        got = [when.sub("when=W", repr(h)) for h in _make_handles(loop)]
        assert got == expected, f"debug={debug}"
        assert got[0].startswith("<Handle ")
        assert got[2].startswith("<Handle cancelled")
        assert got[3].startswith("<TimerHandle when=W")


def test_debug_mode_exception_context_has_source_traceback(loop):
    loop.set_debug(True)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def failing():
        raise ValueError("x")

    loop.call_soon(failing)
    run_once(loop)
    assert len(contexts) == 1
    tb = contexts[0]["source_traceback"]
    assert tb, "debug mode records where the handle was created"
    assert tb[-1].name == "test_debug_mode_exception_context_has_source_traceback"


def test_debug_mode_warns_about_never_awaited_coroutine_origin(loop_factory, recwarn):
    import gc

    async def never_awaited():
        pass

    lp = loop_factory()
    lp.set_debug(True)

    async def main():
        never_awaited()  # noqa: RUF006 - deliberately not awaited

    lp.run_until_complete(main())
    gc.collect()
    msgs = [str(w.message) for w in recwarn.list if issubclass(w.category, RuntimeWarning)]
    assert any("was never awaited" in m and "Coroutine created at" in m for m in msgs), msgs

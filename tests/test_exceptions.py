"""Exception handling: default/custom exception handlers, errors in callbacks,
and BaseExceptions (KeyboardInterrupt, SystemExit) escaping the loop."""

import asyncio
import contextvars
import gc
import logging
import sys

import pytest

var = contextvars.ContextVar("var", default="default")


def run_once(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def asyncio_records(caplog, fn, lp):
    """Run fn(lp) and return what it logged on the "asyncio" logger."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        fn(lp)
    records = [
        (
            r.name,
            r.levelname,
            r.getMessage(),
            type(r.exc_info[1]) if r.exc_info else None,
            str(r.exc_info[1]) if r.exc_info else None,
        )
        for r in caplog.records
        if r.name == "asyncio"
    ]
    caplog.clear()
    return records


def same_log_as_stock(caplog, fn, loop, stock_loop):
    expected = asyncio_records(caplog, fn, stock_loop)
    got = asyncio_records(caplog, fn, loop)
    assert got == expected
    return got


# ---------------------------------------------------------------------------
# default exception handler
# ---------------------------------------------------------------------------


def test_call_exception_handler_default_logs_message_and_extra_keys(loop, stock_loop, caplog):
    def scenario(lp):
        lp.call_exception_handler({"message": "something broke", "zeta": [1, 2], "alpha": "a"})

    records = same_log_as_stock(caplog, scenario, loop, stock_loop)
    # Literal format used by asyncio: message, then "key: repr(value)" lines
    # in sorted key order.
    assert records == [
        ("asyncio", "ERROR", "something broke\nalpha: 'a'\nzeta: [1, 2]", None, None)
    ]


def test_call_exception_handler_default_logs_exception_info(loop, stock_loop, caplog):
    exc = ZeroDivisionError("division")

    def scenario(lp):
        lp.call_exception_handler({"message": "with exception", "exception": exc})

    records = same_log_as_stock(caplog, scenario, loop, stock_loop)
    assert records == [("asyncio", "ERROR", "with exception", ZeroDivisionError, "division")]


def test_call_exception_handler_default_message_when_missing(loop, stock_loop, caplog):
    def scenario(lp):
        lp.call_exception_handler({"exception": KeyError("k")})
        lp.call_exception_handler({"message": ""})

    records = same_log_as_stock(caplog, scenario, loop, stock_loop)
    assert [r[2] for r in records] == [
        "Unhandled exception in event loop",
        "Unhandled exception in event loop",
    ]


def test_exception_in_callback_logged_like_stock(loop, stock_loop, caplog):
    def scenario(lp):
        def failing_callback(arg):
            raise ZeroDivisionError("in callback")

        lp.call_soon(failing_callback, 1)
        run_once(lp)

    records = same_log_as_stock(caplog, scenario, loop, stock_loop)
    assert len(records) == 1
    name, level, message, exc_type, exc_str = records[0]
    assert (name, level) == ("asyncio", "ERROR")
    assert (exc_type, exc_str) == (ZeroDivisionError, "in callback")
    first_line, second_line = message.split("\n")
    assert first_line.startswith("Exception in callback ")
    assert "failing_callback" in first_line
    assert second_line.startswith("handle: <Handle ")


def test_exception_in_timer_callback_logged_like_stock(loop, stock_loop, caplog):
    def scenario(lp):
        def failing_timer():
            raise RuntimeError("in timer")

        lp.call_later(0, failing_timer)
        run_once(lp)

    records = asyncio_records(caplog, scenario, stock_loop)
    got = asyncio_records(caplog, scenario, loop)
    assert len(got) == len(records) == 1
    # The handle line contains "when=<float>", which differs between runs.
    strip = lambda msg: msg.split("\n")[0]  # noqa: E731
    assert strip(got[0][2]) == strip(records[0][2])
    assert got[0][2].split("\n")[1].startswith("handle: <TimerHandle when=")
    assert got[0][3:] == (RuntimeError, "in timer")


def test_loop_keeps_running_after_callback_exception(loop, caplog):
    out = []

    def bad():
        raise ValueError("x")

    loop.call_soon(bad)
    loop.call_soon(out.append, "after")
    with caplog.at_level(logging.CRITICAL, logger="asyncio"):
        run_once(loop)
    run_once(loop)
    assert out == ["after"]
    assert loop.is_running() is False


# ---------------------------------------------------------------------------
# custom exception handlers
# ---------------------------------------------------------------------------


def test_set_and_get_exception_handler(loop):
    def handler(lp, context):
        pass

    assert loop.get_exception_handler() is None
    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_set_exception_handler_rejects_non_callable(loop, stock_loop, check_same_error):
    exc = check_same_error(lambda lp: lp.set_exception_handler("nope"), loop, stock_loop)
    assert isinstance(exc, TypeError)
    assert str(exc) == "A callable object or None is expected, got 'nope'"
    assert loop.get_exception_handler() is None


def test_custom_handler_receives_loop_and_context(loop):
    calls = []
    loop.set_exception_handler(lambda lp, ctx: calls.append((lp, ctx)))
    ctx = {"message": "custom", "extra": 1}
    loop.call_exception_handler(ctx)
    assert len(calls) == 1
    assert calls[0][0] is loop
    assert calls[0][1]["message"] == "custom" and calls[0][1]["extra"] == 1


def test_callback_exception_context_matches_stock(loop, stock_loop):
    def scenario(lp):
        contexts = []
        lp.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))

        def failing_callback(a, b):
            raise KeyError("cb")

        handle = lp.call_soon(failing_callback, 1, "two")
        run_once(lp)
        assert len(contexts) == 1
        return contexts[0], handle

    expected, _ = scenario(stock_loop)
    context, handle = scenario(loop)
    assert sorted(context) == sorted(expected) == ["exception", "handle", "message"]
    assert context["message"] == expected["message"]
    assert context["message"].startswith("Exception in callback ")
    assert "failing_callback" in context["message"]
    assert type(context["exception"]) is KeyError
    assert context["handle"] is handle


def test_timer_callback_exception_context(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def failing_timer():
        raise ValueError("t")

    handle = loop.call_later(0, failing_timer)
    run_once(loop)
    assert len(contexts) == 1
    assert contexts[0]["handle"] is handle
    assert contexts[0]["handle"].when() == handle.when()
    assert isinstance(contexts[0]["exception"], ValueError)


def test_handler_that_raises_falls_back_to_default_handler(loop, stock_loop, caplog):
    def scenario(lp):
        def bad_handler(_loop, ctx):
            raise RuntimeError("handler failed")

        lp.set_exception_handler(bad_handler)
        lp.call_exception_handler({"message": "original"})

    records = same_log_as_stock(caplog, scenario, loop, stock_loop)
    assert records == [
        (
            "asyncio",
            "ERROR",
            "Unhandled error in exception handler\ncontext: {'message': 'original'}",
            RuntimeError,
            "handler failed",
        )
    ]


def test_handler_that_raises_for_callback_error_loop_continues(loop, caplog):
    out = []

    def bad_handler(lp, ctx):
        raise RuntimeError("handler failed")

    def bad_callback():
        raise ValueError("cb")

    loop.set_exception_handler(bad_handler)
    loop.call_soon(bad_callback)
    loop.call_soon(out.append, "still-running")
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_once(loop)
    assert out == ["still-running"]
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert len(messages) == 1
    assert messages[0].startswith("Unhandled error in exception handler\ncontext: {")


def test_handler_can_delegate_to_default(loop, stock_loop, caplog):
    def scenario(lp):
        def handler(handler_loop, ctx):
            handler_loop.default_exception_handler(dict(ctx, note="delegated"))

        lp.set_exception_handler(handler)
        lp.call_exception_handler({"message": "msg"})

    records = same_log_as_stock(caplog, scenario, loop, stock_loop)
    assert records == [("asyncio", "ERROR", "msg\nnote: 'delegated'", None, None)]


def test_unretrieved_task_exception_reaches_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def fail():
        raise ValueError("never retrieved")

    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0.001))
    assert task.done()
    del task
    gc.collect()
    assert len(contexts) == 1
    assert contexts[0]["message"] == "Task exception was never retrieved"
    assert isinstance(contexts[0]["exception"], ValueError)
    assert isinstance(contexts[0]["future"], asyncio.Task)


@pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="custom exception handlers run in the handle's/task's context since 3.12",
)
def test_custom_handler_runs_in_callback_context(loop):
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(var.get()))
    ctx = contextvars.copy_context()
    ctx.run(var.set, "callback-context")

    def failing():
        raise ValueError("x")

    loop.call_soon(failing, context=ctx)
    run_once(loop)
    assert seen == ["callback-context"]


# ---------------------------------------------------------------------------
# BaseExceptions escape the loop
# ---------------------------------------------------------------------------


BASE_EXCEPTIONS = (KeyboardInterrupt, SystemExit)


def _raise(exc_type):
    raise exc_type()


def test_base_exception_in_callback_propagates_from_run_forever(loop):
    for exc_type in BASE_EXCEPTIONS:
        out = []

        def raiser():
            raise exc_type("stop now")

        loop.call_soon(raiser)
        with pytest.raises(exc_type):
            loop.run_forever()
        assert loop.is_running() is False
        assert asyncio._get_running_loop() is None
        # The loop is still usable afterwards.
        loop.call_soon(out.append, "again")
        run_once(loop)
        assert "again" in out


def test_base_exception_in_timer_propagates(loop):
    for exc_type in BASE_EXCEPTIONS:
        loop.call_later(0.001, _raise, exc_type)
        with pytest.raises(exc_type):
            loop.run_forever()
        assert loop.is_running() is False


def test_base_exception_in_coroutine_propagates_from_run_until_complete(loop):
    for exc_type in BASE_EXCEPTIONS:

        async def main():
            await asyncio.sleep(0)
            raise exc_type()

        with pytest.raises(exc_type):
            loop.run_until_complete(main())
        assert loop.is_running() is False
        assert loop.run_until_complete(asyncio.sleep(0, result="usable")) == "usable"


def test_keyboard_interrupt_in_callback_does_not_reach_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def raiser():
        raise KeyboardInterrupt

    loop.call_soon(raiser)
    loop.call_soon(contexts.append, "pending")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert contexts == []
    # Callbacks that were scheduled after the raising one are not lost.
    run_once(loop)
    assert contexts == ["pending"]


def test_keyboard_interrupt_from_exception_handler_propagates(loop):
    def handler(lp, ctx):
        raise KeyboardInterrupt

    def failing():
        raise ValueError("x")

    loop.set_exception_handler(handler)
    loop.call_soon(failing)
    with pytest.raises(KeyboardInterrupt):
        run_once(loop)
    assert loop.is_running() is False

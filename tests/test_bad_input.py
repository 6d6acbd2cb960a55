"""Bad arguments to the loop's scheduling API.

Note on stock asyncio: callbacks are only validated (callable, not a
coroutine) in debug mode.  Outside debug mode a non-callable is accepted and
fails when the loop runs it; those errors reach the exception handler.
Expected messages are computed on the stock loop where that is possible.
"""

import asyncio

import pytest


def run_once(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


async def coro_func():
    pass


SCHEDULERS = {
    "call_soon": lambda lp, cb: lp.call_soon(cb),
    "call_later": lambda lp, cb: lp.call_later(1, cb),
    "call_at": lambda lp, cb: lp.call_at(lp.time() + 1, cb),
    "call_soon_threadsafe": lambda lp, cb: lp.call_soon_threadsafe(cb),
}


def _errors_like_stock(check_same_error, loop, stock_loop, cases):
    """check_same_error() for every (name, fn) case; returns {name: exc}."""
    loop.set_debug(True)
    stock_loop.set_debug(True)
    return {name: check_same_error(fn, loop, stock_loop) for name, fn in cases}


def test_non_callable_rejected_in_debug_mode(loop, stock_loop, check_same_error):
    cases = [
        (f"{method}({bad!r})", lambda lp, m=method, b=bad: SCHEDULERS[m](lp, b))
        for method in sorted(SCHEDULERS)
        for bad in (42, "not callable", None)
    ]
    errors = _errors_like_stock(check_same_error, loop, stock_loop, cases)
    for name, exc in errors.items():
        assert type(exc) is TypeError, name
        assert str(exc).startswith("a callable object was expected by "), name
    assert str(errors["call_soon(42)"]) == "a callable object was expected by call_soon(), got 42"
    run_once(loop)


def test_coroutines_rejected_in_debug_mode(loop, stock_loop, check_same_error):
    def with_coro_object(method):
        def attempt(lp):
            coro = coro_func()
            try:
                SCHEDULERS[method](lp, coro)
            finally:
                coro.close()

        return attempt

    cases = [
        (f"{m}(coroutine function)", lambda lp, m=m: SCHEDULERS[m](lp, coro_func))
        for m in SCHEDULERS
    ]
    cases += [(f"{m}(coroutine object)", with_coro_object(m)) for m in SCHEDULERS]
    errors = _errors_like_stock(check_same_error, loop, stock_loop, cases)
    for name, exc in errors.items():
        assert type(exc) is TypeError, name
        assert str(exc).startswith("coroutines cannot be used with "), name


def test_run_in_executor_coroutine_function_rejected_in_debug_mode(
    loop, stock_loop, check_same_error
):
    loop.set_debug(True)
    stock_loop.set_debug(True)
    exc = check_same_error(lambda lp: lp.run_in_executor(None, coro_func), loop, stock_loop)
    assert str(exc) == "coroutines cannot be used with run_in_executor()"


def test_non_callable_outside_debug_mode_fails_when_run(loop, stock_loop):
    # Stock asyncio does not validate callbacks outside debug mode: the call
    # is accepted and the TypeError surfaces in the exception handler.
    def scenario(lp):
        lp.set_debug(False)
        contexts = []
        lp.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))
        handle = lp.call_soon(42)
        run_once(lp)
        return handle, contexts

    _, expected = scenario(stock_loop)
    handle, contexts = scenario(loop)
    assert len(contexts) == len(expected) == 1
    assert contexts[0]["message"] == expected[0]["message"]
    assert type(contexts[0]["exception"]) is TypeError
    assert str(contexts[0]["exception"]) == str(expected[0]["exception"])
    assert contexts[0]["handle"] is handle


def test_call_later_delay_none(loop, stock_loop, check_same_error):
    exc = check_same_error(lambda lp: lp.call_later(None, print), loop, stock_loop)
    assert type(exc) is TypeError
    assert str(exc) == "delay must not be None"


def test_call_at_when_none(loop, stock_loop, check_same_error):
    exc = check_same_error(lambda lp: lp.call_at(None, print), loop, stock_loop)
    assert type(exc) is TypeError
    assert str(exc) == "when cannot be None"


def test_call_later_non_number_delay(loop):
    for delay in ("1", b"1", [1], object()):
        with pytest.raises(TypeError):
            loop.call_later(delay, print)
    run_once(loop)


def test_create_task_non_coroutine(loop, stock_loop, check_same_error):
    exc = check_same_error(lambda lp: lp.create_task(42), loop, stock_loop)
    assert type(exc) is TypeError
    assert str(exc) == "a coroutine was expected, got 42"
    exc = check_same_error(lambda lp: lp.create_task(coro_func), loop, stock_loop)
    assert type(exc) is TypeError


def test_run_until_complete_non_awaitable(loop, stock_loop, check_same_error):
    exc = check_same_error(lambda lp: lp.run_until_complete(42), loop, stock_loop)
    assert type(exc) is TypeError
    assert str(exc) == "An asyncio.Future, a coroutine or an awaitable is required"
    assert loop.is_running() is False
    # The loop is still usable.
    assert loop.run_until_complete(asyncio.sleep(0, result=1)) == 1

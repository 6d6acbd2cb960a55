"""Running, stopping and closing loops; run_until_complete; running-loop state."""

import asyncio
import sys
import weakref

import pytest

CLOSED = "Event loop is closed"
ALREADY_RUNNING = "This event loop is already running"
ANOTHER_RUNNING = "Cannot run the event loop while another loop is running"


def run_once(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


# ---------------------------------------------------------------------------
# basic properties
# ---------------------------------------------------------------------------


def test_loop_is_an_abstract_event_loop(loop):
    assert isinstance(loop, asyncio.AbstractEventLoop)
    assert loop.is_running() is False
    assert loop.is_closed() is False


def test_loop_has_dict_and_supports_weakref(loop):
    loop.some_attribute = 42
    assert loop.some_attribute == 42
    assert "some_attribute" in loop.__dict__
    ref = weakref.ref(loop)
    assert ref() is loop


def test_is_running_inside_callback_and_coroutine(loop):
    seen = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    run_once(loop)

    async def main():
        return loop.is_running()

    assert loop.run_until_complete(main()) is True
    assert seen == [True]
    assert loop.is_running() is False


def test_get_running_loop_in_callback(loop):
    seen = []
    loop.call_soon(lambda: seen.append(asyncio.get_running_loop()))
    loop.call_soon(lambda: seen.append(asyncio.get_event_loop()))
    loop.call_soon(lambda: seen.append(asyncio._get_running_loop()))
    run_once(loop)
    assert seen == [loop, loop, loop]
    assert all(s is loop for s in seen)


def test_get_running_loop_in_coroutine_and_timer(loop):
    seen = []

    async def main():
        seen.append(asyncio.get_running_loop())
        fut = loop.create_future()

        def timer():
            seen.append(asyncio.get_running_loop())
            fut.set_result(None)

        loop.call_later(0.001, timer)
        await fut
        seen.append(asyncio.get_event_loop())

    loop.run_until_complete(main())
    assert len(seen) == 3 and all(s is loop for s in seen)


def test_no_running_loop_outside(loop):
    loop.run_until_complete(asyncio.sleep(0))
    assert asyncio._get_running_loop() is None
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()


def test_set_event_loop_makes_get_event_loop_return_it(loop):
    asyncio.set_event_loop(loop)
    try:
        assert asyncio.get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)


# ---------------------------------------------------------------------------
# run_forever / stop
# ---------------------------------------------------------------------------


def test_run_forever_until_stop(loop):
    out = []

    def step(i):
        out.append(i)
        if i == 5:
            loop.stop()
        else:
            loop.call_soon(step, i + 1)

    loop.call_soon(step, 0)
    assert loop.run_forever() is None
    assert out == [0, 1, 2, 3, 4, 5]
    assert loop.is_running() is False


def test_stop_before_run_forever_runs_one_iteration(loop):
    out = []
    loop.call_soon(out.append, 1)
    loop.call_soon(lambda: loop.call_soon(out.append, "next-iteration"))
    loop.stop()
    loop.run_forever()
    assert out == [1]
    loop.stop()
    loop.run_forever()  # nothing scheduled but "next-iteration": must not block
    assert out == [1, "next-iteration"]


def test_stop_inside_callback_finishes_current_iteration(loop):
    out = []

    def stopper():
        out.append("stop")
        loop.stop()

    def later():
        out.append("same-iteration")
        loop.call_soon(out.append, "next-iteration")

    loop.call_soon(stopper)
    loop.call_soon(later)
    loop.run_forever()
    assert out == ["stop", "same-iteration"]
    run_once(loop)
    assert out == ["stop", "same-iteration", "next-iteration"]


def test_stop_flag_is_reset_after_run_forever(loop):
    loop.stop()
    loop.stop()
    loop.run_forever()
    # Next run_forever must not stop immediately: it keeps going until the
    # timer stops it.
    out = []
    loop.call_soon(out.append, 1)
    loop.call_soon(lambda: loop.call_soon(out.append, 2))
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert out == [1, 2]


def test_run_forever_reentry_raises(loop):
    errors = []

    def reenter():
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))

    loop.call_soon(reenter)
    run_once(loop)
    assert errors == [ALREADY_RUNNING]


# ---------------------------------------------------------------------------
# run_until_complete
# ---------------------------------------------------------------------------


def test_run_until_complete_coroutine(loop):
    async def main(x):
        await asyncio.sleep(0)
        return x * 2

    assert loop.run_until_complete(main(21)) == 42


def test_run_until_complete_future(loop):
    fut = loop.create_future()
    loop.call_later(0.001, fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_task(loop):
    async def main():
        return "task-result"

    task = loop.create_task(main())
    assert loop.run_until_complete(task) == "task-result"
    assert task.done()


def test_run_until_complete_awaitable_object_and_done_future(loop):
    class Awaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "awaited"

    assert loop.run_until_complete(Awaitable()) == "awaited"
    fut = loop.create_future()
    fut.set_result(7)
    assert loop.run_until_complete(fut) == 7


def test_run_until_complete_propagates_exception(loop):
    async def main():
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(main())
    assert loop.is_running() is False


def test_run_until_complete_cancelled_future_raises_cancelled(loop):
    fut = loop.create_future()
    loop.call_soon(fut.cancel)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(fut)


def test_run_until_complete_stopped_before_done(loop):
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError) as excinfo:
        loop.run_until_complete(fut)
    assert str(excinfo.value) == "Event loop stopped before Future completed."
    fut.cancel()


def test_run_until_complete_reentry_raises(loop):
    async def main():
        inner = loop.create_future()
        with pytest.raises(RuntimeError) as excinfo:
            loop.run_until_complete(inner)
        return str(excinfo.value)

    assert loop.run_until_complete(main()) == ALREADY_RUNNING


def test_run_until_complete_future_of_other_loop(loop, loop_factory):
    other = loop_factory()
    fut = other.create_future()
    with pytest.raises(ValueError) as excinfo:
        loop.run_until_complete(fut)
    assert str(excinfo.value) == (
        "The future belongs to a different loop than the one specified as the loop argument"
    )


def test_run_until_complete_future_of_stock_loop(loop, stock_loop):
    fut = stock_loop.create_future()
    with pytest.raises(ValueError, match="different loop"):
        loop.run_until_complete(fut)


# ---------------------------------------------------------------------------
# nesting with other loops
# ---------------------------------------------------------------------------


def test_cannot_run_loop_while_another_loop_runs(loop, loop_factory):
    other = loop_factory()

    async def main():
        fut = other.create_future()
        errors = []
        for run in (lambda: other.run_until_complete(fut), other.run_forever):
            try:
                run()
            except RuntimeError as exc:
                errors.append(str(exc))
        return errors

    assert loop.run_until_complete(main()) == [ANOTHER_RUNNING, ANOTHER_RUNNING]
    assert other.is_running() is False


@pytest.mark.parametrize("outer", ["tested", "stock"])
def test_running_loop_is_shared_with_stock_asyncio(loop, stock_loop, outer):
    # The "running loop" slot is asyncio's: whichever implementation runs
    # first, the other must refuse to run inside it.
    outer_loop, inner_loop = (loop, stock_loop) if outer == "tested" else (stock_loop, loop)

    async def main():
        assert asyncio.get_running_loop() is outer_loop
        with pytest.raises(RuntimeError) as excinfo:
            inner_loop.run_until_complete(inner_loop.create_future())
        return str(excinfo.value)

    assert outer_loop.run_until_complete(main()) == ANOTHER_RUNNING
    assert asyncio._get_running_loop() is None


def test_loops_can_run_one_after_another(loop, loop_factory):
    other = loop_factory()

    async def which():
        return asyncio.get_running_loop()

    assert loop.run_until_complete(which()) is loop
    assert other.run_until_complete(which()) is other
    assert loop.run_until_complete(which()) is loop


def test_loops_in_different_threads(loop_factory):
    import threading

    results = {}

    def worker(i):
        lp = loop_factory()

        async def main():
            await asyncio.sleep(0.01)
            return asyncio.get_running_loop() is lp

        results[i] = lp.run_until_complete(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {0: True, 1: True, 2: True, 3: True}


# ---------------------------------------------------------------------------
# closing
# ---------------------------------------------------------------------------


def test_close_sets_is_closed_and_twice_is_ok(loop):
    loop.close()
    assert loop.is_closed() is True
    assert loop.is_running() is False
    loop.close()
    assert loop.is_closed() is True


def test_private_closed_attribute_follows_close(loop):
    # Code written for the stock loop reads its private `_closed` (uvloop's
    # own test suite does, on both loops).
    assert loop._closed is False
    loop.close()
    assert loop._closed is True


def test_close_while_running_raises(loop):
    errors = []

    def try_close():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(str(exc))

    loop.call_soon(try_close)
    run_once(loop)
    assert errors == ["Cannot close a running event loop"]
    assert loop.is_closed() is False


def test_close_discards_pending_callbacks(loop):
    calls = []
    loop.call_soon(calls.append, 1)
    loop.call_later(0, calls.append, 2)
    loop.close()
    assert calls == []


async def _coro():
    return None


def _closed_loop_operations():
    def run_until_complete_coro(lp):
        coro = _coro()
        try:
            lp.run_until_complete(coro)
        finally:
            coro.close()

    def create_task(lp):
        coro = _coro()
        try:
            lp.create_task(coro)
        finally:
            coro.close()

    return {
        "call_soon": lambda lp: lp.call_soon(print),
        "call_later": lambda lp: lp.call_later(1, print),
        "call_at": lambda lp: lp.call_at(lp.time() + 1, print),
        "call_soon_threadsafe": lambda lp: lp.call_soon_threadsafe(print),
        "run_forever": lambda lp: lp.run_forever(),
        "run_until_complete_future": lambda lp: lp.run_until_complete(lp.create_future()),
        "run_until_complete_coro": run_until_complete_coro,
        "create_task": create_task,
        "run_in_executor": lambda lp: lp.run_in_executor(None, print),
    }


def test_operations_on_closed_loop_raise(loop):
    loop.close()
    errors = {}
    for name, op in _closed_loop_operations().items():
        try:
            op(loop)
        except Exception as exc:  # noqa: BLE001 - collected for one comparison
            errors[name] = (type(exc).__name__, str(exc))
        else:
            errors[name] = None
    assert errors == {name: ("RuntimeError", CLOSED) for name in _closed_loop_operations()}


def test_stop_on_closed_loop_does_not_raise(loop, stock_loop):
    stock_loop.close()
    stock_loop.stop()
    loop.close()
    loop.stop()


# ---------------------------------------------------------------------------
# asyncio.Runner / asyncio.run with loop_factory
# ---------------------------------------------------------------------------


def test_runner_with_loop_factory(loop_factory):
    async def main():
        return asyncio.get_running_loop()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        lp = runner.get_loop()
        assert runner.run(main()) is lp
        assert runner.run(main()) is lp
    assert lp.is_closed()


def test_runner_propagates_exceptions_and_debug(loop_factory):
    async def main():
        assert asyncio.get_running_loop().get_debug() is True
        raise KeyError("x")

    with asyncio.Runner(loop_factory=loop_factory, debug=True) as runner:
        with pytest.raises(KeyError):
            runner.run(main())


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is new in 3.12")
def test_asyncio_run_with_loop_factory(loop_factory):
    created = []

    def factory():
        lp = loop_factory()
        created.append(lp)
        return lp

    async def main():
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    lp = asyncio.run(main(), loop_factory=factory)
    assert created == [lp]
    assert lp.is_closed()


def test_loop_driven_step_by_step_from_outside(loop):
    # The pattern asyncio 3.13 documents for embedding the loop in another
    # event loop: setup, call _run_once repeatedly, cleanup.
    if not hasattr(loop, "_run_forever_setup"):
        pytest.skip("the stock loop has _run_forever_setup from 3.13 on")
    results = []

    async def work():
        await asyncio.sleep(0)
        results.append(asyncio.get_running_loop() is loop)
        return "done"

    task = loop.create_task(work())
    loop._run_forever_setup()
    try:
        assert loop.is_running()
        for _ in range(100):
            if task.done():
                break
            loop._run_once()
    finally:
        loop._run_forever_cleanup()
    assert not loop.is_running()
    assert asyncio._get_running_loop() is None
    assert task.result() == "done" and results == [True]
    assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"

"""Futures and tasks on the loop: create_future, create_task, task factories,
cancellation and the high-level asyncio helpers built on top of the loop."""

import asyncio
import contextvars
import re
import sys
import threading

import pytest
from conftest import sleep_until_cancelled

var = contextvars.ContextVar("var", default="default")


def run_once(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


# ---------------------------------------------------------------------------
# create_future
# ---------------------------------------------------------------------------


def test_create_future_returns_pending_asyncio_future(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert asyncio.isfuture(fut)
    assert fut.get_loop() is loop
    assert not fut.done()
    fut.cancel()


def test_create_future_and_get_debug_are_methods_that_check_their_arguments(loop):
    # Both are raw C methods of the loop (not pyo3 ones): a wrong call must
    # raise, never crash, and they must still behave as methods.
    cls = type(loop)
    with pytest.raises(TypeError):
        loop.create_future(1)
    with pytest.raises(TypeError):
        loop.get_debug(1)
    # The stock loop's Python methods fail on the missing attributes.
    with pytest.raises((TypeError, AttributeError)):
        cls.create_future(object())
    with pytest.raises((TypeError, AttributeError)):
        cls.get_debug(None)
    assert cls.create_future(loop).get_loop() is loop
    assert loop.get_debug() is False and loop._debug is False
    loop.set_debug(True)
    assert loop.get_debug() is True and loop._debug is True
    # In debug mode the C Future asks get_debug() and records its origin.
    assert loop.create_future()._source_traceback
    loop.set_debug(False)
    assert loop.create_future()._source_traceback is None
    assert "create_future" in dir(loop) and callable(loop.create_future)


def test_create_future_in_a_loop_subclass_overriding_get_debug(loop):
    class Loop(type(loop)):
        def get_debug(self):
            return True

    sub = Loop()
    try:
        fut = sub.create_future()
        assert fut.get_loop() is sub
        assert fut._source_traceback, "the C Future asked the subclass's get_debug()"
    finally:
        sub.close()


def test_future_done_callbacks_are_scheduled_not_called_synchronously(loop):
    fut = loop.create_future()
    calls = []
    fut.add_done_callback(lambda f: calls.append(f.result()))
    fut.set_result(5)
    assert calls == []
    run_once(loop)
    assert calls == [5]


def test_future_done_callback_context(loop):
    fut = loop.create_future()
    ctx = contextvars.copy_context()
    ctx.run(var.set, "cb-ctx")
    seen = []
    fut.add_done_callback(lambda f: seen.append(var.get()), context=ctx)
    fut.set_result(None)
    run_once(loop)
    assert seen == ["cb-ctx"]


def test_future_resolved_from_other_thread_via_call_soon_threadsafe(loop):
    async def main():
        fut = loop.create_future()
        t = threading.Thread(target=lambda: loop.call_soon_threadsafe(fut.set_result, "t"))
        t.start()
        try:
            return await fut
        finally:
            t.join()

    assert loop.run_until_complete(main()) == "t"


def test_run_coroutine_threadsafe(loop):
    async def add(a, b):
        await asyncio.sleep(0)
        return a + b

    results = []

    def worker():
        cfut = asyncio.run_coroutine_threadsafe(add(2, 3), loop)
        results.append(cfut.result(timeout=30))
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=worker)
    loop.call_soon(t.start)
    loop.run_forever()
    t.join()
    assert results == [5]


# ---------------------------------------------------------------------------
# create_task
# ---------------------------------------------------------------------------


async def _return(value):
    await asyncio.sleep(0)
    return value


def test_create_task_returns_task_bound_to_loop(loop):
    task = loop.create_task(_return(3))
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert loop.run_until_complete(task) == 3


def test_create_task_name(loop):
    named = loop.create_task(_return(1), name="my-task")
    unnamed = loop.create_task(_return(2))
    assert named.get_name() == "my-task"
    assert re.fullmatch(r"Task-\d+", unnamed.get_name())
    loop.run_until_complete(asyncio.gather(named, unnamed))


def test_create_task_context(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "task-ctx")

    async def read_and_set():
        value = var.get()
        var.set("changed-in-task")
        return value

    task = loop.create_task(read_and_set(), context=ctx)
    assert loop.run_until_complete(task) == "task-ctx"
    assert ctx[var] == "changed-in-task"
    assert var.get() == "default"


def test_create_task_copies_current_context(loop):
    async def read():
        return var.get()

    def make():
        var.set("copied")
        return loop.create_task(read())

    task = contextvars.copy_context().run(make)
    assert loop.run_until_complete(task) == "copied"


def test_current_task_and_all_tasks(loop):
    async def main():
        me = asyncio.current_task()
        other = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        tasks = asyncio.all_tasks()
        other.cancel()
        return me, other, tasks

    me, other, tasks = loop.run_until_complete(main())
    assert me in tasks and other in tasks
    assert me.get_loop() is loop
    assert asyncio.current_task(loop) is None


def test_sleep_zero_interleaves_tasks(loop):
    out = []

    async def worker(tag):
        for i in range(3):
            out.append(f"{tag}{i}")
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(worker("a"), worker("b"))

    loop.run_until_complete(main())
    assert out == ["a0", "b0", "a1", "b1", "a2", "b2"]


# ---------------------------------------------------------------------------
# task factories
# ---------------------------------------------------------------------------


def test_set_and_get_task_factory(loop):
    assert loop.get_task_factory() is None
    created = []

    def factory(lp, coro, **kwargs):
        task = asyncio.Task(coro, loop=lp, **kwargs)
        created.append(task)
        return task

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory
    task = loop.create_task(_return("via-factory"))
    assert created == [task]
    assert loop.run_until_complete(task) == "via-factory"
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    plain = loop.create_task(_return(1))
    assert created == [task]
    loop.run_until_complete(plain)


def test_task_factory_used_by_ensure_future_and_run_until_complete(loop):
    seen = []

    def factory(lp, coro, **kwargs):
        seen.append(lp)
        return asyncio.Task(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)
    assert loop.run_until_complete(_return(4)) == 4

    async def main():
        return await asyncio.ensure_future(_return(5))

    assert loop.run_until_complete(main()) == 5
    assert len(seen) == 3 and all(lp is loop for lp in seen)


def _factory_calls(lp):
    """Record what create_task passes to a task factory, for several calls."""
    calls = []

    def factory(loop_arg, coro, **kwargs):
        calls.append((loop_arg is lp, sorted(kwargs)))
        return asyncio.Task(coro, loop=loop_arg, **kwargs)

    lp.set_task_factory(factory)
    ctx = contextvars.copy_context()
    tasks = [
        lp.create_task(_return(1)),
        lp.create_task(_return(2), name="named"),
        lp.create_task(_return(3), context=ctx),
        lp.create_task(_return(4), name="both", context=ctx),
    ]
    lp.run_until_complete(asyncio.gather(*tasks))
    return calls, [t.get_name() for t in tasks]


def test_task_factory_receives_same_arguments_as_on_stock_loop(loop, stock_loop):
    # Which keyword arguments reach the factory changed between CPython
    # versions, so the expectation is whatever the stock loop does here.
    expected_calls, expected_names = _factory_calls(stock_loop)
    calls, names = _factory_calls(loop)
    assert calls == expected_calls
    assert names[1] == "named" and names[3] == "both"
    assert names[1::2] == expected_names[1::2]


def test_set_task_factory_rejects_non_callable(loop, stock_loop, check_same_error):
    check_same_error(lambda lp: lp.set_task_factory(42), loop, stock_loop)
    assert loop.get_task_factory() is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory is new in 3.12")
def test_eager_task_factory_starts_task_synchronously(loop):
    out = []

    async def child():
        out.append("child-started")
        await asyncio.sleep(0)
        out.append("child-resumed")
        return "child"

    async def quick():
        return "quick"

    async def main():
        task = loop.create_task(child())
        out.append("after-create")
        done_task = loop.create_task(quick())
        done_immediately = done_task.done()
        return await task, done_immediately, done_task.result()

    loop.set_task_factory(asyncio.eager_task_factory)
    assert loop.get_task_factory() is asyncio.eager_task_factory
    assert loop.run_until_complete(main()) == ("child", True, "quick")
    assert out == ["child-started", "after-create", "child-resumed"]


# ---------------------------------------------------------------------------
# cancellation
# ---------------------------------------------------------------------------


def test_cancel_task_with_message(loop):
    async def sleeper():
        await asyncio.sleep(3600)

    task = loop.create_task(sleeper())
    run_once(loop)
    assert task.cancel("bye") is True
    with pytest.raises(asyncio.CancelledError) as excinfo:
        loop.run_until_complete(task)
    assert excinfo.value.args == ("bye",)
    assert task.cancelled()


def test_cancel_propagates_into_awaited_future(loop):
    async def main():
        fut = loop.create_future()
        task = loop.create_task(asyncio.wait_for(fut, None))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return fut.cancelled()

    assert loop.run_until_complete(main()) is True


def test_cancel_pending_timer_task_does_not_fire_later(loop):
    fired = []

    async def sleeper():
        await asyncio.sleep(0.01)
        fired.append(True)

    task = loop.create_task(sleeper())
    run_once(loop)
    task.cancel()
    loop.run_until_complete(asyncio.sleep(0.05))
    assert fired == []
    assert task.cancelled()


# ---------------------------------------------------------------------------
# gather / wait_for / timeout / TaskGroup
# ---------------------------------------------------------------------------


def test_gather_results_in_argument_order(loop):
    async def delayed(value, delay):
        await asyncio.sleep(delay)
        return value

    async def main():
        return await asyncio.gather(delayed("a", 0.02), delayed("b", 0), delayed("c", 0.01))

    assert loop.run_until_complete(main()) == ["a", "b", "c"]


def test_wait_for_timeout_cancels_inner(loop):
    state = {}

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sleep_until_cancelled(state), 0.01)

    loop.run_until_complete(main())
    assert state == {"cancelled": True}
    assert asyncio.TimeoutError is TimeoutError


def test_asyncio_timeout_context_manager(loop):
    async def main():
        start = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01) as cm:
                assert cm.when() is not None
                await asyncio.sleep(3600)
        return loop.time() - start

    assert loop.run_until_complete(main()) >= 0.01 - 1e-6


def test_task_group_collects_results(loop):
    async def main():
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(_return(i)) for i in range(5)]
        return [t.result() for t in tasks]

    assert loop.run_until_complete(main()) == [0, 1, 2, 3, 4]


def test_task_group_failure_cancels_siblings(loop):
    state = {}

    async def failing():
        await asyncio.sleep(0.001)
        raise ValueError("in group")

    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleep_until_cancelled(state, "sibling_cancelled"))
            tg.create_task(failing())

    with pytest.raises(ExceptionGroup) as excinfo:  # noqa: F821 (3.11+ builtin)
        loop.run_until_complete(main())
    assert [type(e) for e in excinfo.value.exceptions] == [ValueError]
    assert state == {"sibling_cancelled": True}

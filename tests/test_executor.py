"""Executors: run_in_executor, default executor management, asyncio.to_thread."""

import asyncio
import concurrent.futures
import contextvars
import sys
import threading

import pytest

var = contextvars.ContextVar("var", default="default")


def _thread_info(*args):
    return threading.get_ident(), threading.current_thread().name, args


class InlineExecutor(concurrent.futures.Executor):
    """An executor that is not a ThreadPoolExecutor: runs work in submit()."""

    def __init__(self):
        self.submitted = []

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append(fn)
        fut = concurrent.futures.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - forwarded to the future
            fut.set_exception(exc)
        return fut


def test_run_in_executor_default_runs_in_another_thread(loop):
    fut = loop.run_in_executor(None, _thread_info, 1, "b")
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    ident, name, args = loop.run_until_complete(fut)
    assert args == (1, "b")
    assert ident != threading.get_ident()


def test_run_in_executor_propagates_exception(loop):
    def fail():
        raise ValueError("in thread")

    with pytest.raises(ValueError, match="in thread"):
        loop.run_until_complete(loop.run_in_executor(None, fail))


def test_run_in_executor_many_concurrent_calls(loop):
    async def main():
        return await asyncio.gather(*(loop.run_in_executor(None, pow, i, 2) for i in range(50)))

    assert loop.run_until_complete(main()) == [i * i for i in range(50)]


def test_run_in_executor_wakes_idle_loop(loop):
    # The loop has nothing else to do while the worker thread blocks; the
    # result has to wake it up.
    event = threading.Event()

    async def main():
        fut = loop.run_in_executor(None, event.wait, 30)
        loop.call_later(0.02, event.set)
        return await fut

    assert loop.run_until_complete(main()) is True


def test_run_in_custom_thread_pool_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="custom-pool") as pool:
        ident, name, _ = loop.run_until_complete(loop.run_in_executor(pool, _thread_info))
    assert ident != threading.get_ident()
    assert name.startswith("custom-pool")


def test_run_in_non_thread_pool_executor(loop):
    executor = InlineExecutor()
    result = loop.run_until_complete(loop.run_in_executor(executor, lambda a: a * 2, 21))
    assert result == 42
    assert len(executor.submitted) == 1


def test_set_default_executor(loop):
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="my-default")
    try:
        loop.set_default_executor(pool)
        _, name, _ = loop.run_until_complete(loop.run_in_executor(None, _thread_info))
        assert name.startswith("my-default")
    finally:
        pool.shutdown(wait=True)


def test_set_default_executor_rejects_non_thread_pool(loop, stock_loop, check_same_error):
    exc = check_same_error(lambda lp: lp.set_default_executor(InlineExecutor()), loop, stock_loop)
    assert isinstance(exc, TypeError)
    assert str(exc) == "executor must be ThreadPoolExecutor instance"


def test_shutdown_default_executor_joins_threads(loop):
    thread = loop.run_until_complete(
        loop.run_in_executor(None, threading.current_thread)
    )
    assert thread is not threading.current_thread()
    loop.run_until_complete(loop.shutdown_default_executor())
    assert not thread.is_alive()


def test_run_in_executor_after_shutdown_raises(loop):
    loop.run_until_complete(loop.run_in_executor(None, lambda: None))
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError) as excinfo:
        loop.run_in_executor(None, lambda: None)
    assert str(excinfo.value) == "Executor shutdown has been called"
    # An explicitly given executor is still fine.
    executor = InlineExecutor()
    assert loop.run_until_complete(loop.run_in_executor(executor, lambda: "ok")) == "ok"


def test_run_in_executor_on_closed_loop_raises(loop):
    loop.close()
    with pytest.raises(RuntimeError) as excinfo:
        loop.run_in_executor(None, lambda: None)
    assert str(excinfo.value) == "Event loop is closed"


@pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="shutdown_default_executor(timeout=) is new in 3.12, but in 3.12 the timeout only "
    "bounds a join after the executor has already shut down, so it never expires there",
)
def test_shutdown_default_executor_timeout_warns(loop):
    release = threading.Event()
    started = threading.Event()

    def blocker():
        started.set()
        release.wait(60)

    fut = loop.run_in_executor(None, blocker)
    assert started.wait(30)
    try:
        with pytest.warns(RuntimeWarning, match="did not finishing joining its threads within"):
            loop.run_until_complete(loop.shutdown_default_executor(timeout=0.05))
    finally:
        release.set()
    loop.run_until_complete(fut)


def test_to_thread_passes_args_and_kwargs(loop):
    def func(a, b=None):
        return a, b, threading.get_ident()

    a, b, ident = loop.run_until_complete(asyncio.to_thread(func, 1, b="kw"))
    assert (a, b) == (1, "kw")
    assert ident != threading.get_ident()


def test_to_thread_propagates_context(loop):
    async def main():
        var.set("from-coroutine")
        return await asyncio.to_thread(var.get)

    assert loop.run_until_complete(main()) == "from-coroutine"
    assert var.get() == "default"


def test_run_in_executor_does_not_propagate_context(loop):
    # Unlike to_thread, run_in_executor runs the function in the worker
    # thread's own context.
    async def main():
        var.set("from-coroutine")
        return await loop.run_in_executor(None, var.get)

    assert loop.run_until_complete(main()) == "default"

"""The default executor as seen through asyncio's API: cancellation, results,
exceptions, threads, shutdown, replacement, direct use, closed loops, exit."""

import asyncio
import concurrent.futures
import contextvars
import logging
import os
import re
import threading
import traceback

import pytest

var = contextvars.ContextVar("var", default="default")


def _errors(loop):
    """Records what reaches the loop's exception handler."""
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    return seen


def _workers(loop):
    # The default executor exists once something ran in it.
    loop.run_until_complete(loop.run_in_executor(None, lambda: None))
    return loop._default_executor._max_workers


def _occupy_workers(loop, count):
    """Blocks `count` workers; returns (release event, their futures)."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def block():
        started.release()
        release.wait(30)

    futs = [loop.run_in_executor(None, block) for _ in range(count)]
    for _ in range(count):
        assert started.acquire(timeout=30)
    return release, futs


def test_default_executor_is_a_thread_pool_executor(loop):
    assert loop._default_executor is None
    loop.run_until_complete(loop.run_in_executor(None, lambda: None))
    executor = loop._default_executor
    assert isinstance(executor, concurrent.futures.ThreadPoolExecutor)
    assert executor._max_workers == min(32, (os.cpu_count() or 1) + 4)


def test_worker_threads_are_named_asyncio_n(loop):
    async def main():
        return await asyncio.gather(*(asyncio.to_thread(_current_thread) for _ in range(4)))

    threads = loop.run_until_complete(main())
    for thread in threads:
        assert re.fullmatch(r"asyncio_\d+", thread.name), thread.name
        assert thread in threading.enumerate()
        assert thread is not threading.main_thread()


def _current_thread():
    return threading.current_thread()


def test_idle_worker_is_reused(loop):
    async def main():
        idents = set()
        for _ in range(20):
            idents.add(await asyncio.to_thread(threading.get_ident))
            # The stock worker counts itself idle only after the result is
            # handed over: without a pause, the next call can race it and
            # start a second thread there.
            await asyncio.sleep(0.005)
        return idents

    # One call at a time: an idle worker takes the next one.
    assert len(loop.run_until_complete(main())) == 1


def test_cancel_before_start_never_runs(loop):
    count = _workers(loop)
    release, busy = _occupy_workers(loop, count)
    ran = []

    async def main():
        fut = loop.run_in_executor(None, ran.append, "ran")
        fut.cancel()
        # Let the cancellation reach the executor, as wrap_future does it
        # from a done callback.
        for _ in range(3):
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*busy)
        return fut

    fut = loop.run_until_complete(main())
    assert fut.cancelled()
    loop.run_until_complete(loop.shutdown_default_executor())
    assert ran == []


def test_cancel_while_running_finishes_work_and_drops_result(loop):
    errors = _errors(loop)
    started = threading.Event()
    release = threading.Event()
    finished = []

    def work():
        started.set()
        release.wait(30)
        finished.append(True)
        return "result"

    async def main():
        fut = loop.run_in_executor(None, work)
        await loop.run_in_executor(None, started.wait, 30)
        fut.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await fut
        return fut

    fut = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_default_executor())
    assert fut.cancelled()
    assert finished == [True]
    assert errors == []


def test_exception_is_the_same_object_with_traceback(loop):
    raised = []

    def fail():
        exc = KeyError("in thread")
        raised.append(exc)
        raise exc

    with pytest.raises(KeyError) as excinfo:
        loop.run_until_complete(asyncio.to_thread(fail))
    assert excinfo.value is raised[0]
    frames = [frame.name for frame in traceback.extract_tb(excinfo.value.__traceback__)]
    assert "fail" in frames


def test_base_exception_in_worker_reaches_the_future(loop):
    class Stop(BaseException):
        pass

    def fail():
        raise Stop()

    fut = loop.run_in_executor(None, fail)
    loop.run_until_complete(asyncio.wait([fut]))
    assert isinstance(fut.exception(), Stop)


def test_concurrent_futures_cancelled_error_is_converted(loop):
    def fail():
        raise concurrent.futures.CancelledError("from thread")

    fut = loop.run_in_executor(None, fail)
    loop.run_until_complete(asyncio.wait([fut]))
    # wrap_future converts concurrent.futures' CancelledError to asyncio's
    # (a new exception with the same arguments) and sets it as the exception.
    assert not fut.cancelled()
    exc = fut.exception()
    assert type(exc) is asyncio.CancelledError
    assert exc.args == ("from thread",)


def test_to_thread_context_changes_stay_in_the_thread(loop):
    def change():
        seen = var.get()
        var.set("in-thread")
        return seen

    async def main():
        var.set("outer")
        seen = await asyncio.to_thread(change)
        return seen, var.get()

    assert loop.run_until_complete(main()) == ("outer", "outer")


def test_results_are_delivered_in_completion_order(loop):
    first_may_finish = threading.Event()
    done = []

    def first():
        first_may_finish.wait(30)
        return "first"

    async def main():
        a = loop.run_in_executor(None, first)
        a.add_done_callback(lambda f: done.append(f.result()))
        b = loop.run_in_executor(None, str, "second")
        b.add_done_callback(lambda f: done.append(f.result()))
        await b
        first_may_finish.set()
        await a

    loop.run_until_complete(main())
    assert done == ["second", "first"]


def test_many_concurrent_to_thread_calls(loop):
    async def main():
        return await asyncio.gather(*(asyncio.to_thread(pow, i, 2) for i in range(500)))

    assert loop.run_until_complete(main()) == [i * i for i in range(500)]
    assert len(loop._default_executor._threads) <= loop._default_executor._max_workers


def test_shutdown_default_executor_runs_pending_work(loop):
    count = _workers(loop)
    release, busy = _occupy_workers(loop, count)
    pending = [loop.run_in_executor(None, pow, i, 3) for i in range(3 * count)]

    async def main():
        loop.call_later(0.02, release.set)
        await loop.shutdown_default_executor()
        return await asyncio.gather(*pending, *busy)

    results = loop.run_until_complete(main())
    assert results[: 3 * count] == [i**3 for i in range(3 * count)]


def test_set_default_executor_replaces_it(loop):
    loop.run_until_complete(loop.run_in_executor(None, lambda: None))
    old = loop._default_executor
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="replacement") as pool:
        loop.set_default_executor(pool)
        assert loop._default_executor is pool
        name = loop.run_until_complete(asyncio.to_thread(lambda: threading.current_thread().name))
        assert name.startswith("replacement")
    old.shutdown(wait=True)


def test_direct_submit_and_map_on_default_executor(loop):
    loop.run_until_complete(loop.run_in_executor(None, lambda: None))
    executor = loop._default_executor
    assert executor.submit(pow, 2, 5).result(timeout=30) == 32
    assert list(executor.map(pow, [1, 2, 3], [2, 2, 2])) == [1, 4, 9]
    wrapped = asyncio.wrap_future(executor.submit(pow, 3, 3), loop=loop)
    assert loop.run_until_complete(wrapped) == 27
    assert loop.run_until_complete(loop.run_in_executor(executor, pow, 4, 2)) == 16


def test_shutdown_cancel_futures_cancels_queued_loop_work(loop):
    count = _workers(loop)
    release, busy = _occupy_workers(loop, count)
    ran = []
    queued = [loop.run_in_executor(None, ran.append, i) for i in range(5)]
    loop._default_executor.shutdown(wait=False, cancel_futures=True)
    release.set()

    async def main():
        await asyncio.gather(*busy)
        return await asyncio.gather(*queued, return_exceptions=True)

    results = loop.run_until_complete(main())
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert all(f.cancelled() for f in queued)
    assert ran == []
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        loop.run_in_executor(None, lambda: None)


def test_loop_closed_while_work_runs(loop, caplog):
    errors = _errors(loop)
    started = threading.Event()
    release = threading.Event()
    finished = []

    def work():
        started.set()
        release.wait(30)
        finished.append(True)
        return "late"

    fut = loop.run_in_executor(None, work)
    assert started.wait(30)
    executor = loop._default_executor
    with caplog.at_level(logging.DEBUG):
        loop.close()
        release.set()
        executor.shutdown(wait=True)
    assert finished == [True]
    assert not fut.done()
    assert errors == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_getaddrinfo_uses_the_default_executor(loop):
    infos = loop.run_until_complete(loop.getaddrinfo("127.0.0.1", 80))
    assert infos
    assert isinstance(loop._default_executor, concurrent.futures.ThreadPoolExecutor)


def test_interpreter_exit_with_busy_and_idle_workers(pyrun):
    result = pyrun.run(
        """
        import asyncio, time

        async def main():
            await asyncio.to_thread(time.sleep, 0)
            asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.2)

        loop = new_loop()
        loop.run_until_complete(main())
        print("done")
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_that_never_uses_the_executor_exits(pyrun):
    result = pyrun.run(
        """
        import asyncio, os, sys, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads

        loop = new_loop()
        loop.run_until_complete(asyncio.to_thread(sum, [1, 2]))
        pid = os.fork()
        if pid == 0:
            print("child")
            sys.exit(0)  # a normal exit, running the atexit hooks
        _, status = os.waitpid(pid, 0)
        loop.close()
        print("parent", os.waitstatus_to_exitcode(status))
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\n")) == ["", "child", "parent 0"]


def test_fast_executor_only_where_threadpoolexecutors_internals_are_known(monkeypatch):
    # LoopExecutor builds on ThreadPoolExecutor's private parts; where they
    # differ (a later CPython) the loop must keep the stock executor rather
    # than break run_in_executor. On the versions supported today the fast
    # one must be in use.
    default_executor = pytest.importorskip("ferroloop._default_executor")
    assert default_executor.DEFAULT_EXECUTOR is default_executor.LoopExecutor
    assert default_executor._private_layout_is_known()
    monkeypatch.delattr(concurrent.futures.thread, "_threads_queues")
    assert not default_executor._private_layout_is_known()
    monkeypatch.undo()
    monkeypatch.setattr(concurrent.futures.thread._WorkItem, "run", lambda self, ctx: None)
    assert not default_executor._private_layout_is_known()

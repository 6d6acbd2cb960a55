"""Subprocesses and threads, SIGCHLD and zombies: loops outside the main
thread, several loops at once, the user's own SIGCHLD handler, and no
child left unreaped."""

import asyncio
import signal
import sys
import threading
import time
from asyncio.subprocess import DEVNULL, PIPE

import pytest
from subprocess_util import HANG_GUARD, SH, our_zombies, run, wait_until_reaped


def in_thread(loop, coro_fn):
    """Runs coro_fn() on `loop` in a new thread, closes the loop there, and
    returns the result (or raises the exception) in the calling thread."""
    outcome = {}

    def target():
        try:
            outcome["result"] = run(loop, coro_fn())
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            loop.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(HANG_GUARD + 5)
    assert not thread.is_alive(), "loop thread hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


async def echo_codes(n, tag=""):
    """Spawns n shells one after another; returns their (output, code)."""
    results = []
    for i in range(n):
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", f"echo {tag}{i}; exit {i % 5}", stdout=PIPE)
        out, _ = await proc.communicate()
        results.append((out, proc.returncode, proc.pid))
    return results


def outputs(results, tag=""):
    assert [(out, code) for out, code, _ in results] == \
        [(f"{tag}{i}\n".encode(), i % 5) for i in range(len(results))]


def test_subprocess_from_loop_in_non_main_thread(loop):
    outputs(in_thread(loop, lambda: echo_codes(10)))


def test_concurrent_children_from_non_main_thread(loop):
    async def main():
        procs = [await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
                 for _ in range(10)]
        results = await asyncio.gather(*(p.communicate(b"%d" % i) for i, p in enumerate(procs)))
        return [out for out, _ in results], [p.returncode for p in procs]

    outs, codes = in_thread(loop, main)
    assert outs == [b"%d" % i for i in range(10)]
    assert codes == [0] * 10


# The stock loop (3.12+) silences this warning with warnings.catch_warnings(),
# which is not thread-safe: with loops spawning in several threads it leaks.
@pytest.mark.filterwarnings("ignore:'get_child_watcher' is deprecated:DeprecationWarning")
def test_loops_in_several_threads_at_once(loop_factory):
    loops = [loop_factory() for _ in range(3)]
    results = {}
    errors = []

    def worker(index, lp):
        try:
            results[index] = in_thread(lp, lambda: echo_codes(8, tag=f"t{index}-"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, lp)) for i, lp in enumerate(loops)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_GUARD + 10)
    assert not errors, errors
    for index in range(3):
        outputs(results[index], tag=f"t{index}-")


def test_wait_from_another_thread_via_run_coroutine_threadsafe(loop):
    # The loop runs in a thread; the main thread spawns and waits through it.
    ready = threading.Event()
    thread = threading.Thread(target=lambda: (ready.set(), loop.run_forever()))
    thread.start()
    ready.wait()
    try:
        async def spawn():
            return await asyncio.create_subprocess_exec(SH, "-c", "read x; exit 6", stdin=PIPE)

        proc = asyncio.run_coroutine_threadsafe(spawn(), loop).result(HANG_GUARD)
        waiting = asyncio.run_coroutine_threadsafe(proc.wait(), loop)
        time.sleep(0.05)
        assert not waiting.done()  # the child waits for its input
        loop.call_soon_threadsafe(proc.stdin.write, b"go\n")
        assert waiting.result(HANG_GUARD) == 6
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(HANG_GUARD)
    assert not thread.is_alive()


def test_loop_installs_no_sigchld_handler(loop):
    before = signal.getsignal(signal.SIGCHLD)

    async def main():
        proc = await asyncio.create_subprocess_exec(SH, "-c", "exit 0")
        during = signal.getsignal(signal.SIGCHLD)
        await proc.wait()
        return during

    assert before == signal.SIG_DFL
    assert run(loop, main()) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL


def test_user_sigchld_handler_is_called_and_subprocesses_still_work(loop):
    calls = []
    loop.add_signal_handler(signal.SIGCHLD, calls.append, "chld")

    async def main():
        results = await echo_codes(5)
        while not calls:  # the signal handler runs as a callback, maybe later
            await asyncio.sleep(0.01)
        return results

    try:
        outputs(run(loop, main()))
        assert calls and set(calls) == {"chld"}
    finally:
        assert loop.remove_signal_handler(signal.SIGCHLD) is True
    # With the user's handler gone, subprocesses still work.
    outputs(run(loop, echo_codes(3)))
    assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL


def test_sigchld_handler_on_main_loop_while_thread_loop_spawns(loop_factory):
    # SIGCHLD is process-wide: the main thread's loop gets it for children
    # a loop in another thread spawned, and that loop still sees each exit.
    main_loop, thread_loop = loop_factory(), loop_factory()
    calls = []
    main_loop.add_signal_handler(signal.SIGCHLD, lambda: calls.append(1))
    results = {}

    def worker():
        results["value"] = in_thread(thread_loop, lambda: echo_codes(6))

    async def main():
        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive() or not calls:
            await asyncio.sleep(0.01)
        thread.join()

    try:
        run(main_loop, main())
    finally:
        main_loop.remove_signal_handler(signal.SIGCHLD)
    outputs(results["value"])
    assert calls


def test_no_thread_per_child(loop_kind, loop):
    if loop_kind == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("stock asyncio 3.11 watches each child from its own thread "
                    "(ThreadedChildWatcher)")

    async def main():
        before = threading.active_count()
        procs = [await asyncio.create_subprocess_exec("cat", stdin=PIPE) for _ in range(8)]
        during = threading.active_count()
        for p in procs:
            p.stdin.close()
        codes = [await p.wait() for p in procs]
        return before, during, codes

    before, during, codes = run(loop, main())
    assert during == before
    assert codes == [0] * 8


def test_no_zombies_after_loop_in_thread_closes(loop):
    zombies_before = set(our_zombies())  # other tests' leftovers are not ours
    results = in_thread(loop, lambda: echo_codes(20))
    outputs(results)
    pids = [pid for _, _, pid in results]
    assert wait_until_reaped(pids) == {}
    assert set(our_zombies()) - zombies_before == set()


def test_no_zombies_after_concurrent_children_killed(loop):
    zombies_before = set(our_zombies())

    async def main():
        procs = [await asyncio.create_subprocess_exec(
            "sleep", "30", stdin=DEVNULL, stdout=DEVNULL) for _ in range(10)]
        for p in procs:
            p.kill()
        return [p.pid for p in procs], [await p.wait() for p in procs]

    pids, codes = in_thread(loop, main)
    assert codes == [-signal.SIGKILL] * 10
    assert wait_until_reaped(pids) == {}
    assert set(our_zombies()) - zombies_before == set()

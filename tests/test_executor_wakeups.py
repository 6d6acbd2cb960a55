"""Wake-ups, timers and signals while default-executor work is outstanding.

ferroloop may spin for a few microseconds instead of sleeping while work it
gave its default executor is outstanding, and the worker then hands the
outcome over without an eventfd write (src/eventloop/spin.rs). None of it
may be visible beyond timing: no wake-up from any thread is lost, timers
never fire early, and Ctrl-C still interrupts the loop."""

import asyncio
import signal
import threading
import time

ROUND_TRIPS = 2000


def _noop():
    pass


def test_round_trips_complete(loop):
    async def main():
        for i in range(ROUND_TRIPS):
            assert await asyncio.wait_for(asyncio.to_thread(lambda i=i: i), 10) == i

    loop.run_until_complete(main())


def test_threadsafe_wakeups_from_another_thread_during_round_trips(loop):
    """Another thread wakes the loop while it waits for executor work (when
    ferroloop may be spinning): every wake-up arrives."""
    requests = []
    more = threading.Semaphore(0)

    def waker():
        while True:
            more.acquire()
            fut = requests.pop()
            if fut is None:
                return
            loop.call_soon_threadsafe(fut.set_result, True)

    thread = threading.Thread(target=waker)
    thread.start()

    async def main():
        for _ in range(ROUND_TRIPS):
            fut = loop.create_future()
            requests.append(fut)
            more.release()
            work = asyncio.to_thread(time.sleep, 0)
            await asyncio.wait_for(asyncio.gather(work, fut), 10)

    try:
        loop.run_until_complete(main())
    finally:
        requests.append(None)
        more.release()
        thread.join(10)


def test_threadsafe_wakeups_from_the_worker_itself(loop):
    """The executor's function wakes the loop itself, then returns: both the
    wake-up and the outcome arrive."""

    def job(fut, i):
        loop.call_soon_threadsafe(fut.set_result, i)
        return -i

    async def main():
        for i in range(ROUND_TRIPS):
            fut = loop.create_future()
            got = await asyncio.wait_for(
                asyncio.gather(loop.run_in_executor(None, job, fut, i), fut), 10
            )
            assert got == [-i, i]

    loop.run_until_complete(main())


def test_timers_never_early_while_executor_work_is_outstanding(loop):
    """Timers due while round trips keep the loop waiting for its executor
    fire at or after their deadline, and not much later."""
    lateness = []

    def fired(when):
        now = loop.time()
        assert now >= when, f"timer fired {when - now:.6f} s early"
        lateness.append(now - when)

    async def main():
        deadline = loop.time() + 0.5
        while loop.time() < deadline:
            when = loop.time() + 0.002
            loop.call_at(when, fired, when)
            for _ in range(20):
                await asyncio.to_thread(_noop)
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert lateness
    lateness.sort()
    # The median timer is late by scheduling noise only (a round trip or a
    # few), not by anything like a sleep the loop failed to cut short.
    assert lateness[len(lateness) // 2] < 0.05


def test_signal_handler_runs_while_executor_work_is_outstanding(loop):
    """A loop signal handler (add_signal_handler) runs while the loop waits
    for round trips."""
    got = []

    async def main():
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        threading.Timer(0.05, signal.raise_signal, (signal.SIGUSR1,)).start()
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            await asyncio.to_thread(_noop)
        loop.remove_signal_handler(signal.SIGUSR1)

    loop.run_until_complete(main())
    assert got == ["usr1"]

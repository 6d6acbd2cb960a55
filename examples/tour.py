"""A short tour of everyday asyncio patterns.

Run it on ferroloop:        python -m ferroloop examples/tour.py
or on the stock loop:       python examples/tour.py

Only the standard asyncio API is used, so the same file runs unchanged on any
event loop. Each section is timed with an async context manager (`Timer`,
below) and prints one line: what it did and how long it took.
"""

import asyncio
import random
import sys
import time


class Timer:
    """Async context manager that measures the wall time of its body.

    `async with` works with any object that has `__aenter__`/`__aexit__`
    coroutines; real ones would open connections or take locks, this one
    just reads the clock.
    """

    def __init__(self, label):
        self.label = label
        self.elapsed_ms = 0.0

    async def __aenter__(self):
        self._start = time.perf_counter()
        return self

    async def __aexit__(self, exc_type, exc, tb):
        self.elapsed_ms = (time.perf_counter() - self._start) * 1000
        return False  # never swallow exceptions


def expect(condition, message):
    """Fail loudly (non-zero exit) if the tour did not behave as described."""
    if not condition:
        raise RuntimeError(f"tour check failed: {message}")


# --- 1. Coroutines side by side with gather -------------------------------

async def brew(drink, seconds):
    await asyncio.sleep(seconds)  # stands in for I/O: a request, a query...
    return drink


async def section_gather():
    # The three sleeps overlap, so this takes ~60 ms rather than 20+40+60.
    drinks = await asyncio.gather(brew("tea", 0.02), brew("coffee", 0.04), brew("cocoa", 0.06))
    expect(drinks == ["tea", "coffee", "cocoa"], "gather keeps argument order")
    return f"{', '.join(drinks)} ready together"


# --- 2. Named tasks with create_task ---------------------------------------

async def section_tasks():
    # create_task schedules each coroutine to run in the background, alongside
    # this one; the name shows up in reprs, asyncio.all_tasks() and debug output.
    tasks = [
        asyncio.create_task(brew(f"job-{i}", 0.01 * i), name=f"worker-{i}") for i in (1, 2, 3)
    ]
    results = [await task for task in tasks]
    names = [task.get_name() for task in tasks]
    expect(results == ["job-1", "job-2", "job-3"], "every task returned its result")
    return f"{len(tasks)} tasks named {', '.join(names)} finished"


# --- 3. Cancellation ---------------------------------------------------------

async def section_cancel():
    log = []

    async def long_job():
        try:
            while True:
                await asyncio.sleep(0.005)
                log.append("tick")
        finally:
            log.append("cleanup")  # runs even though the task is cancelled

    task = asyncio.create_task(long_job(), name="long-job")
    await asyncio.sleep(0.03)
    task.cancel()  # raises CancelledError inside long_job at its next await
    try:
        await task
    except asyncio.CancelledError:
        caught = True
    else:
        caught = False
    expect(caught and task.cancelled(), "awaiting a cancelled task raises CancelledError")
    expect(log[-1] == "cleanup", "the finally block ran")
    return "task cancelled, CancelledError caught, cleanup ran"


# --- 4. Timeouts with wait_for -----------------------------------------------

async def section_wait_for():
    fast = await asyncio.wait_for(brew("fast reply", 0.01), timeout=1.0)
    try:
        await asyncio.wait_for(brew("slow reply", 10), timeout=0.05)
        slow = "slow reply"
    except TimeoutError:  # asyncio.TimeoutError is TimeoutError since 3.11
        slow = "timed out"
    expect((fast, slow) == ("fast reply", "timed out"), "one call in time, one too slow")
    return f"fast call -> {fast!r}, slow call -> {slow}"


# --- 5. Producer / consumers with a Queue ------------------------------------

async def section_queue(n_items=200, n_consumers=3):
    queue = asyncio.Queue(maxsize=10)  # bounded: the producer waits when full
    processed = [0] * n_consumers
    total = 0

    async def consumer(i):
        nonlocal total
        while True:
            item = await queue.get()
            total += item
            processed[i] += 1
            await asyncio.sleep(0)  # "work": let the others run too
            queue.task_done()

    consumers = [
        asyncio.create_task(consumer(i), name=f"consumer-{i}") for i in range(n_consumers)
    ]
    for item in range(1, n_items + 1):
        await queue.put(item)
    await queue.join()  # returns once every item had its task_done()
    for task in consumers:  # consumers loop forever; stop them explicitly
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    expect(sum(processed) == n_items, "every item was processed")
    expect(total == n_items * (n_items + 1) // 2, "and processed exactly once")
    return f"{sum(processed)} items by {n_consumers} consumers, sum {total}"


# --- 6. CPU work in threads with to_thread ------------------------------------

def count_hits(samples, seed):
    """Plain blocking function: how many random points fall in the unit circle."""
    rng = random.Random(seed)  # own generator per worker: deterministic, no sharing
    hits = 0
    for _ in range(samples):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            hits += 1
    return hits


async def section_to_thread(total=2_000_000, workers=4):
    # to_thread keeps the loop responsive while blocking code runs elsewhere.
    # (With the GIL the threads take turns; the point is that the loop is free.)
    per_worker = total // workers
    jobs = [asyncio.to_thread(count_hits, per_worker, seed) for seed in range(workers)]
    hits = await asyncio.gather(*jobs)
    pi = 4 * sum(hits) / (per_worker * workers)
    expect(abs(pi - 3.1416) < 0.01, "Monte-Carlo estimate is close to pi")
    return f"pi ~ {pi:.5f} from {per_worker * workers:,} samples on {workers} threads"


SECTIONS = [
    ("gather", section_gather),
    ("create_task", section_tasks),
    ("cancellation", section_cancel),
    ("wait_for", section_wait_for),
    ("queue", section_queue),
    ("to_thread", section_to_thread),
]


async def main():
    loop = asyncio.get_running_loop()
    print(f"event loop: {type(loop).__module__}.{type(loop).__qualname__}")
    print(f"python:     {sys.version.split()[0]}")
    print("each section is timed with `async with Timer(...)`\n")
    async with Timer("total") as total:
        for label, section in SECTIONS:
            async with Timer(label) as timer:
                result = await section()
            print(f"{timer.label:<13} {timer.elapsed_ms:8.1f} ms  {result}")
    print(f"{total.label:<13} {total.elapsed_ms:8.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())

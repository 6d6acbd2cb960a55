"""Callback scheduling: call_soon, call_later, call_at, handles, contexts, threads."""

import asyncio
import contextvars
import random
import sys
import threading
import time

import pytest

# Stock asyncio treats a timer as due when ``when < now + clock resolution``.
CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution

var = contextvars.ContextVar("var", default="default")


def run_once(loop):
    """Run exactly one loop iteration (the documented stop-then-run idiom)."""
    loop.call_soon(loop.stop)
    loop.run_forever()


def run_with_watchdog(loop, seconds=10.0):
    """run_forever(), but stop after `seconds` (a hang guard, not a timing check).

    Returns True when the watchdog had to stop the loop.
    """
    fired = []

    def watchdog():
        fired.append(True)
        loop.stop()

    handle = loop.call_later(seconds, watchdog)
    loop.run_forever()
    handle.cancel()
    return bool(fired)


# ---------------------------------------------------------------------------
# call_soon
# ---------------------------------------------------------------------------


def test_call_soon_runs_callbacks_in_fifo_order(loop):
    out = []
    for i in range(100):
        loop.call_soon(out.append, i)
    run_once(loop)
    assert out == list(range(100))


def test_call_soon_passes_positional_args(loop):
    out = []
    sentinel = object()
    loop.call_soon(lambda *args: out.append(args), 1, "a", None, sentinel)
    run_once(loop)
    assert out == [(1, "a", None, sentinel)]


# Handles are checked by interface, not with isinstance(asyncio.Handle): a
# native loop may use its own handle types (uvloop does).


def test_call_soon_and_call_later_return_handles(loop):
    handle = loop.call_soon(lambda: None)
    assert callable(handle.cancel)
    assert handle.cancelled() is False
    timer = loop.call_later(10, lambda: None)
    assert timer.cancelled() is False
    assert isinstance(timer.when(), float)
    timer.cancel()
    assert timer.cancelled() is True
    run_once(loop)


def test_call_soon_from_callback_keeps_fifo(loop):
    out = []

    def first():
        out.append("first")
        loop.call_soon(out.append, "c")
        loop.call_soon(out.append, "d")

    loop.call_soon(first)
    loop.call_soon(out.append, "b")
    run_once(loop)
    assert out == ["first", "b"]
    run_once(loop)
    assert out == ["first", "b", "c", "d"]


# ---------------------------------------------------------------------------
# timers
# ---------------------------------------------------------------------------


def test_call_at_when_is_exactly_the_given_value(loop):
    for when in (loop.time() + 12.345, int(loop.time()) + 1000):
        handle = loop.call_at(when, lambda: None)
        assert handle.when() == when
        handle.cancel()
        assert handle.when() == when


def test_call_later_when_is_now_plus_delay(loop):
    before = loop.time()
    handle = loop.call_later(5.5, lambda: None)
    after = loop.time()
    assert before + 5.5 <= handle.when() <= after + 5.5
    handle.cancel()


def test_many_random_timers_fire_sorted(loop):
    rnd = random.Random(42)
    base = loop.time()
    whens = sorted({base + rnd.uniform(0, 0.05) for _ in range(500)})
    scheduled = whens[:]
    rnd.shuffle(scheduled)
    out = []
    for when in scheduled:
        loop.call_at(when, out.append, when)
    loop.call_at(whens[-1] + 0.01, loop.stop)
    assert not run_with_watchdog(loop)
    assert out == whens


def test_equal_deadlines_all_fire_once_before_later_timers(loop):
    # asyncio documents the relative order of timers with *exactly* the same
    # deadline as undefined (its heap is not stable), so only assert that
    # they all fire, once each, and before any later deadline.
    out = []
    when = loop.time() + 0.01
    for i in range(10):
        loop.call_at(when, out.append, i)
    loop.call_at(when + 0.001, out.append, "later")
    loop.call_at(when + 0.002, loop.stop)
    assert not run_with_watchdog(loop)
    assert sorted(out[:10]) == list(range(10))
    assert out[10:] == ["later"]


def test_timer_never_fires_before_its_deadline(loop):
    records = []

    def fired(handle_box):
        records.append((loop.time(), handle_box[0].when()))

    for delay in (0.0, 0.001, 0.005, 0.01, 0.02, 0.05):
        box = []
        box.append(loop.call_later(delay, fired, box))
    for delay in (0.003, 0.03):
        box = []
        box.append(loop.call_at(loop.time() + delay, fired, box))
    loop.call_later(0.06, loop.stop)
    assert not run_with_watchdog(loop)
    assert len(records) == 8
    for fired_at, when in records:
        assert fired_at >= when - CLOCK_RESOLUTION


def test_sleep_never_returns_before_delay(loop):
    async def main():
        out = []
        for delay in (0.001, 0.01, 0.03):
            start = loop.time()
            await asyncio.sleep(delay)
            out.append(loop.time() - start - delay)
        return out

    for slack in loop.run_until_complete(main()):
        assert slack >= -CLOCK_RESOLUTION


def test_zero_negative_and_past_deadlines_fire_on_next_iteration(loop):
    for delay in (0, 0.0, -1, -1000.5):
        calls = []
        loop.call_later(delay, calls.append, delay)
        run_once(loop)
        assert calls == [delay], delay


def test_past_deadlines_fire_on_next_iteration_in_deadline_order(loop):
    out = []
    now = loop.time()
    loop.call_later(0, out.append, "zero")
    loop.call_at(now - 100, out.append, "minus100")
    loop.call_later(-5, out.append, "minus5")
    run_once(loop)
    assert out == ["minus100", "minus5", "zero"]


def test_idle_loop_sleeps_until_timer(loop):
    # No ready callbacks and a single timer: the loop must block and then
    # wake up for it.
    fired = []
    handle = loop.call_later(0.05, lambda: (fired.append(loop.time()), loop.stop()))
    assert not run_with_watchdog(loop)
    assert fired and fired[0] >= handle.when() - CLOCK_RESOLUTION


# ---------------------------------------------------------------------------
# cancellation
# ---------------------------------------------------------------------------


def test_cancel_handle_before_it_runs(loop):
    calls = []
    handle = loop.call_soon(calls.append, 1)
    assert handle.cancelled() is False
    handle.cancel()
    assert handle.cancelled() is True
    handle.cancel()  # idempotent
    assert handle.cancelled() is True
    run_once(loop)
    assert calls == []


def test_cancel_from_earlier_callback_in_same_iteration(loop):
    calls = []
    second = None

    def first():
        calls.append("first")
        second.cancel()

    loop.call_soon(first)
    second = loop.call_soon(calls.append, "second")
    loop.call_soon(calls.append, "third")
    run_once(loop)
    assert calls == ["first", "third"]


def test_cancelled_timer_does_not_fire(loop):
    calls = []
    handle = loop.call_later(0.01, calls.append, "cancelled")
    loop.call_later(0.02, calls.append, "kept")
    loop.call_later(0.03, loop.stop)
    handle.cancel()
    assert handle.cancelled() is True
    assert not run_with_watchdog(loop)
    assert calls == ["kept"]


def test_cancel_timer_after_it_fired_is_harmless(loop):
    calls = []
    handle = loop.call_later(0, calls.append, 1)
    run_once(loop)
    assert calls == [1]
    handle.cancel()
    assert handle.cancelled() is True
    run_once(loop)
    assert calls == [1]


def test_cancel_many_timers(loop):
    calls = []
    handles = [loop.call_later(0.001 * (i % 7), calls.append, i) for i in range(300)]
    for h in handles[::2]:
        h.cancel()
    loop.call_later(0.05, loop.stop)
    assert not run_with_watchdog(loop)
    assert sorted(calls) == list(range(1, 300, 2))


# ---------------------------------------------------------------------------
# contexts
# ---------------------------------------------------------------------------


def _schedule(loop, method, cb, *args, context):
    if method == "call_soon":
        return loop.call_soon(cb, *args, context=context)
    if method == "call_soon_threadsafe":
        return loop.call_soon_threadsafe(cb, *args, context=context)
    if method == "call_later":
        return loop.call_later(0, cb, *args, context=context)
    if method == "call_at":
        return loop.call_at(loop.time(), cb, *args, context=context)
    raise ValueError(method)


SCHEDULERS = ["call_soon", "call_soon_threadsafe", "call_later", "call_at"]


def test_context_kwarg_runs_callback_in_that_context(loop):
    for method in SCHEDULERS:
        ctx = contextvars.copy_context()
        ctx.run(var.set, f"in-{method}")
        seen = []
        _schedule(loop, method, lambda tag: seen.append((tag, var.get())), "x", context=ctx)
        run_once(loop)
        assert seen == [("x", f"in-{method}")], method
    assert var.get() == "default"


def test_callback_changes_are_kept_in_given_context(loop):
    for method in SCHEDULERS:
        ctx = contextvars.Context()
        _schedule(loop, method, var.set, f"changed-by-{method}", context=ctx)
        run_once(loop)
        assert ctx[var] == f"changed-by-{method}", method
    assert var.get() == "default"


def test_default_context_is_copied_when_scheduling(loop):
    for method in SCHEDULERS:
        seen = []

        def sched():
            var.set("at-schedule-time")
            _schedule(loop, method, lambda: seen.append(var.get()), context=None)
            var.set("changed-after")

        contextvars.copy_context().run(sched)
        run_once(loop)
        assert seen == ["at-schedule-time"], method


def test_callbacks_changes_do_not_leak_between_callbacks(loop):
    seen = []

    def setter():
        var.set("leaked?")

    loop.call_soon(setter)
    loop.call_soon(lambda: seen.append(var.get()))
    run_once(loop)
    assert seen == ["default"]
    assert var.get() == "default"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Handle.get_context() is new in 3.12")
def test_handle_get_context_returns_given_context(loop):
    for method in SCHEDULERS:
        ctx = contextvars.copy_context()
        handle = _schedule(loop, method, lambda: None, context=ctx)
        assert handle.get_context() is ctx, method
        handle.cancel()
    run_once(loop)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Handle.get_context() is new in 3.12")
def test_handle_get_context_default_is_a_copy(loop):
    token = var.set("outer")
    try:
        handle = loop.call_soon(lambda: None)
        timer = loop.call_later(0, lambda: None)
    finally:
        var.reset(token)
    for h in (handle, timer):
        ctx = h.get_context()
        assert isinstance(ctx, contextvars.Context)
        assert ctx[var] == "outer"  # a snapshot: the reset above did not affect it
    run_once(loop)


# ---------------------------------------------------------------------------
# call_soon_threadsafe
# ---------------------------------------------------------------------------


def test_call_soon_threadsafe_from_many_threads_loses_nothing(loop):
    n_threads, per_thread = 8, 500
    counter = [0]
    seen_threads = set()
    start = threading.Barrier(n_threads)

    def bump(tid):
        counter[0] += 1
        seen_threads.add(tid)

    def worker(tid):
        start.wait()
        for _ in range(per_thread):
            loop.call_soon_threadsafe(bump, tid)

    def feeder():
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        loop.call_soon_threadsafe(loop.stop)

    feeder_thread = threading.Thread(target=feeder)
    loop.call_soon(feeder_thread.start)
    try:
        assert not run_with_watchdog(loop, 60)
    finally:
        feeder_thread.join()
    assert counter[0] == n_threads * per_thread
    assert seen_threads == set(range(n_threads))


def test_call_soon_threadsafe_preserves_per_thread_order(loop):
    out = []

    def worker():
        for i in range(1000):
            loop.call_soon_threadsafe(out.append, i)
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=worker)
    loop.call_soon(thread.start)
    try:
        assert not run_with_watchdog(loop, 60)
    finally:
        thread.join()
    assert out == list(range(1000))


def test_call_soon_threadsafe_wakes_up_idle_loop(loop):
    # The loop has nothing to do and blocks in its poller; a callback from
    # another thread must wake it up (the watchdog only guards against a hang).
    ran_in = []

    def from_thread():
        time.sleep(0.05)
        loop.call_soon_threadsafe(lambda: (ran_in.append(threading.get_ident()), loop.stop()))

    thread = threading.Thread(target=from_thread)
    thread.start()
    try:
        assert not run_with_watchdog(loop, 10)
    finally:
        thread.join()
    assert ran_in == [threading.get_ident()]


def test_call_soon_threadsafe_before_loop_runs_and_cancel(loop):
    calls = []
    handle = loop.call_soon_threadsafe(calls.append, "cancelled")
    assert handle.cancelled() is False
    handle.cancel()
    thread = threading.Thread(target=loop.call_soon_threadsafe, args=(calls.append, "t"))
    thread.start()
    thread.join()
    run_once(loop)
    assert calls == ["t"]


# ---------------------------------------------------------------------------
# iteration semantics
# ---------------------------------------------------------------------------


def test_callback_scheduled_during_iteration_runs_next_iteration(loop):
    out = []

    def a():
        out.append("a")
        loop.call_soon(out.append, "b")

    loop.call_soon(a)
    loop.stop()
    loop.run_forever()
    assert out == ["a"]
    run_once(loop)
    assert out == ["a", "b"]


def test_self_rescheduling_callback_runs_once_per_iteration(loop):
    count = [0]

    def spin():
        count[0] += 1
        loop.call_soon(spin)

    loop.call_soon(spin)
    for expected in (1, 2, 3):
        run_once(loop)
        assert count[0] == expected


def test_self_rescheduling_callback_does_not_starve_timers(loop):
    state = {"spins": 0, "starved": False}
    start = loop.time()

    def spin():
        state["spins"] += 1
        if loop.time() - start > 10:  # hang guard
            state["starved"] = True
            loop.stop()
            return
        loop.call_soon(spin)

    def timer():
        state["timer_at_spin"] = state["spins"]
        loop.stop()

    loop.call_soon(spin)
    loop.call_later(0.01, timer)
    loop.run_forever()
    assert not state["starved"]
    assert "timer_at_spin" in state


def test_self_rescheduling_callback_does_not_starve_threadsafe_calls(loop):
    state = {"starved": False}
    start = loop.time()

    def spin():
        if loop.time() - start > 10:  # hang guard
            state["starved"] = True
            loop.stop()
            return
        loop.call_soon(spin)

    thread = threading.Thread(target=lambda: loop.call_soon_threadsafe(loop.stop))
    loop.call_soon(spin)
    loop.call_soon(thread.start)
    try:
        loop.run_forever()
    finally:
        thread.join()
    assert not state["starved"]


# ---------------------------------------------------------------------------
# loop.time()
# ---------------------------------------------------------------------------


def _sample_clocks(loop):
    before = time.monotonic()
    now = loop.time()
    after = time.monotonic()
    return before, now, after


def test_loop_time_is_close_to_time_monotonic(loop):
    async def main():
        await asyncio.sleep(0.01)
        return _sample_clocks(loop)

    samples = [_sample_clocks(loop) for _ in range(3)]
    samples.append(loop.run_until_complete(main()))  # also while running
    for before, now, after in samples:
        assert isinstance(now, float)
        assert before - 0.1 <= now <= after + 0.1


def test_loop_time_never_goes_backwards(loop):
    values = []

    def sample(n):
        values.append(loop.time())
        if n:
            loop.call_soon(sample, n - 1)
        else:
            loop.stop()

    loop.call_soon(sample, 200)
    loop.run_forever()
    assert values == sorted(values)


def test_threadsafe_wakeups_are_never_lost_under_contention(loop):
    # Producers race the loop going back to sleep: every item must be run
    # without anything else waking the loop (no timers are scheduled). A lost
    # wake-up leaves the loop asleep with work queued; the watchdog detects
    # that (generous bound: only a hang can exceed it) and then unblocks it.
    producers, per_producer, rounds = 4, 200, 20
    for _ in range(rounds):
        expected = producers * per_producer
        ran = []
        hung = []

        def record(ran=ran, expected=expected):
            ran.append(None)
            if len(ran) == expected:
                loop.stop()

        def produce():
            for i in range(per_producer):
                loop.call_soon_threadsafe(record)
                if i % 50 == 0:
                    time.sleep(0.0005)  # let the loop fall asleep in between

        def watchdog(done):
            if not done.wait(30):
                hung.append(len(ran))
                loop.call_soon_threadsafe(loop.stop)

        done = threading.Event()
        threads = [threading.Thread(target=produce) for _ in range(producers)]
        guard = threading.Thread(target=watchdog, args=(done,))
        guard.start()
        for t in threads:
            t.start()
        loop.run_forever()
        done.set()
        for t in threads + [guard]:
            t.join()
        assert not hung, f"loop slept with work queued after {hung[0]} of {expected} callbacks"
        assert len(ran) == expected

"""Handles after they ran, and the ready queue when a run stops half-way.

ferroloop empties a handle that ran and that nothing else references and
reuses it for a later call_soon. None of that may be visible: a handle the
caller kept still describes its callback, weak references die as on the
stock loop, every reused handle runs its own callback in its own context,
and an unclosed loop holding spare handles is still collected.
"""

import contextvars
import gc
import weakref

import pytest
from conftest import _new_loop_function

var = contextvars.ContextVar("var", default=None)


def run_one_iteration(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_kept_handle_still_describes_its_callback_after_running(loop):
    ran = []
    handle = loop.call_soon(ran.append, 1)
    for _ in range(3):
        run_one_iteration(loop)
    assert ran == [1]
    assert handle._callback == ran.append
    assert handle._args == (1,)
    assert "append" in repr(handle)
    assert not handle.cancelled()


def test_weak_reference_to_a_handle_dies_after_it_ran(loop):
    ref = weakref.ref(loop.call_soon(lambda: None))
    run_one_iteration(loop)
    gc.collect()
    assert ref() is None
    # Handles made afterwards work as usual.
    ran = []
    loop.call_soon(ran.append, 2)
    run_one_iteration(loop)
    assert ran == [2]


def test_each_handle_runs_its_own_callback_in_its_own_context(loop):
    seen = []

    def record(i):
        seen.append((i, var.get()))

    for round_ in range(5):
        handles = []
        for i in range(20):
            ctx = contextvars.copy_context()
            ctx.run(var.set, (round_, i))
            handles.append((loop.call_soon(record, (round_, i), context=ctx), ctx))
        for handle, ctx in handles:
            assert handle._context is ctx  # get_context() is 3.12+
        del handles
        run_one_iteration(loop)
    assert seen == [((r, i), (r, i)) for r in range(5) for i in range(20)]


def test_copied_contexts_and_cancellation_after_reuse(loop):
    ran = []
    for round_ in range(5):
        var.set(round_)
        keep = loop.call_soon(lambda: ran.append(("kept", var.get())))
        loop.call_soon(lambda: ran.append(("dropped", var.get())))
        loop.call_soon(ran.append, "cancelled").cancel()
        assert keep._context.get(var) == round_
        run_one_iteration(loop)
        assert keep._args == ()
    assert ran == [x for r in range(5) for x in (("kept", r), ("dropped", r))]


def test_threadsafe_and_plain_handles_share_nothing(loop):
    ran = []
    for i in range(10):
        loop.call_soon_threadsafe(ran.append, ("ts", i))
        loop.call_soon(ran.append, ("soon", i), context=contextvars.Context())
        run_one_iteration(loop)
    assert ran == [x for i in range(10) for x in (("ts", i), ("soon", i))]


def test_callbacks_left_by_keyboard_interrupt_run_first_next_time(loop):
    ran = []

    def interrupt():
        ran.append("interrupt")
        loop.call_soon(ran.append, "queued meanwhile")
        raise KeyboardInterrupt

    loop.call_soon(ran.append, "before")
    loop.call_soon(interrupt)
    loop.call_soon(ran.append, "after")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    run_one_iteration(loop)
    assert ran == ["before", "interrupt", "after", "queued meanwhile"]


@pytest.fixture
def new_loop(loop_kind):
    # Not the loop_factory fixture: that keeps loops alive to close them.
    return _new_loop_function(loop_kind)


def test_unclosed_loop_that_ran_callbacks_is_collected_and_warns(new_loop):
    loop = new_loop()
    fut = loop.create_future()
    for i in range(100):
        loop.call_soon(lambda: None)
    loop.call_soon(fut.set_result, 1)
    loop.run_until_complete(fut)
    loop_ref = weakref.ref(loop)
    del loop, fut
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        gc.collect()
    assert loop_ref() is None

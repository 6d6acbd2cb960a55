"""Each callback runs in its own copy of the scheduling context.

ferroloop keeps its private copies away from the cycle collector until they
are shared; these tests drive every way a copy gets shared or released
(get_context, exception handlers, collection, close) and check the contexts
behave exactly as on the stock loop.
"""

import contextvars
import gc
import weakref

var = contextvars.ContextVar("var", default="unset")


def context_of(handle):
    # Handle.get_context() is 3.12+; both loops have _context on 3.11 too.
    get_context = getattr(handle, "get_context", None)
    return get_context() if get_context is not None else handle._context


def test_each_callback_gets_its_own_copy(loop):
    handles = [loop.call_soon(var.set, i) for i in range(50)]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert [context_of(h)[var] for h in handles] == list(range(50))
    assert var.get() == "unset", "callbacks must not change the caller's context"


def test_context_shared_before_running_sees_the_callbacks_changes(loop):
    handle = loop.call_soon(var.set, "from callback")
    ctx = context_of(handle)
    assert var not in ctx
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ctx[var] == "from callback"


def test_exception_handler_can_take_the_failing_handles_context(loop):
    seen = []

    def boom():
        var.set("inside")
        raise ValueError("boom")

    loop.set_exception_handler(lambda _loop, c: seen.append(context_of(c["handle"])))
    loop.call_soon(boom)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(seen) == 1 and seen[0][var] == "inside"


def test_contexts_survive_collection_and_close(loop_factory):
    for round_ in range(50):
        loop = loop_factory()
        handles = [loop.call_soon(var.set, i) for i in range(20)]
        timers = [loop.call_later(3600, var.set, i) for i in range(20)]
        kept = [context_of(h) for h in handles[::4]]
        referents = gc.get_referents(loop)
        loop.call_soon(loop.stop)
        loop.run_forever()
        loop.close()
        del handles, timers, referents
        gc.collect()
        assert [ctx[var] for ctx in kept] == list(range(0, 20, 4))


def test_copies_are_freed_once_their_handles_are(loop):
    handle = loop.call_soon(var.set, 1)
    ctx_ref = weakref.ref(context_of(handle))
    loop.call_soon(loop.stop)
    loop.run_forever()
    del handle
    gc.collect()
    assert ctx_ref() is None

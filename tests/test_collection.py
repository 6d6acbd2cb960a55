"""Garbage collection of loops and their callbacks.

A loop dropped without close() while callbacks are still queued sits in a
reference cycle (loop -> callback -> future -> loop). The stock loop is
collected anyway and warns "unclosed event loop"; so must ferroloop.
"""

import asyncio
import gc
import socket
import weakref

import pytest
from conftest import _new_loop_function


@pytest.fixture
def new_loop(loop_kind):
    # Not the loop_factory fixture: that keeps loops alive to close them.
    return _new_loop_function(loop_kind)


def test_unclosed_loop_with_queued_callbacks_is_collected_and_warns(new_loop):
    loop = new_loop()
    fut = loop.create_future()
    loop.call_soon(fut.set_result, 1)
    loop.call_later(3600, fut.cancel)
    loop_ref = weakref.ref(loop)
    del loop, fut
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        gc.collect()
    assert loop_ref() is None


def test_unclosed_loop_with_thousands_of_callbacks_is_collected(new_loop):
    # More handles than ferroloop keeps on its freelist (1,024): freshly
    # allocated handles are kept out of the collector's lists like reused
    # ones, and the loop still reports what they hold.
    loop = new_loop()
    futures = [loop.create_future() for _ in range(3000)]
    for fut in futures:
        loop.call_soon(fut.set_result, 1)
        loop.call_later(3600, fut.cancel)
    loop_ref = weakref.ref(loop)
    del loop, futures, fut
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        gc.collect()
    assert loop_ref() is None


def test_handle_held_by_user_keeps_its_callback_alive(new_loop):
    loop = new_loop()
    fut = loop.create_future()
    handle = loop.call_later(3600, fut.set_result, 1)
    fut_ref = weakref.ref(fut)
    del fut
    gc.collect()
    assert fut_ref() is not None, "a live handle's callback must not be collected"
    assert not handle.cancelled()
    handle.cancel()
    loop.close()


def test_cancelled_callbacks_are_released_after_close(new_loop):
    loop = new_loop()

    class Payload:
        pass

    payload = Payload()
    payload_ref = weakref.ref(payload)
    loop.call_later(3600, print, payload).cancel()
    loop.call_soon(print, payload)
    del payload
    loop.close()
    gc.collect()
    assert payload_ref() is None


def test_unclosed_loop_with_pending_sock_waits_is_collected(new_loop):
    # loop -> wait -> future -> task -> coroutine -> loop, for a read and a
    # send that both had to wait.
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    for s in (a, b, c, d):
        s.setblocking(False)
    try:
        loop = new_loop()
        recv = loop.create_task(loop.sock_recv(b, 100))
        send = loop.create_task(loop.sock_sendall(c, b"x" * (16 * 1024 * 1024)))
        loop.run_until_complete(asyncio.sleep(0.01))
        assert not recv.done() and not send.done()
        loop_ref = weakref.ref(loop)
        del loop, recv, send
        with pytest.warns(ResourceWarning, match="unclosed event loop"):
            gc.collect()
        assert loop_ref() is None
    finally:
        for s in (a, b, c, d):
            s.close()

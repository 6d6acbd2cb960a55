"""The loop's default executor: a ``ThreadPoolExecutor`` that runs the loop's
own work without a ``concurrent.futures.Future``.

The stock loop's ``run_in_executor`` submits to a ``ThreadPoolExecutor`` and
chains the returned ``concurrent.futures.Future`` to an asyncio future
(``asyncio.wrap_future``): a future with a ``threading.Condition``, a work
item, three closures and two done callbacks per call. ``LoopExecutor`` keeps
the executor (``submit``, ``map``, ``shutdown``, the atexit join and fork
handling are ``ThreadPoolExecutor``'s own) but puts a ``LoopWork`` on its
queue for the loop's calls: the worker runs the function
and hands the outcome to the loop with one ``call_soon_threadsafe``. What the
caller sees is the same as through ``wrap_future``:

- work whose future was cancelled before a worker picked it up never runs;
- work cancelled while running runs to the end and its outcome is dropped;
- an exception reaches the future as the same object (converted as
  ``wrap_future`` converts ``concurrent.futures`` exceptions);
- an outcome for a loop that has been closed is dropped.

``submit`` and ``map`` are inherited; both kinds of work share the workers.
The workers are ``_serve`` rather than ``ThreadPoolExecutor``'s: the same
loop, but idle workers are counted with a deque of tokens instead of a
pure-Python ``threading.Semaphore`` (a ``Condition`` round per call).
"""

import threading
import weakref
from asyncio.futures import _convert_future_exc
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import thread as _thread

from ._ferroloop import LoopBase

# The loop's own call_soon_threadsafe (a subclass may override it).
_PLAIN_CALL_SOON_THREADSAFE = LoopBase.call_soon_threadsafe


def _set_result(fut, result):
    if not fut.cancelled():
        fut.set_result(result)


def _set_exception(fut, exc):
    if not fut.cancelled():
        fut.set_exception(_convert_future_exc(exc))


def _cancel(fut, _unused):
    fut.cancel()


def _send(loop, counted, setter, fut, value):
    """Hands an outcome to the loop's thread; dropped once the loop is closed
    (as wrap_future drops it). Counted work (see ``LoopWork``) goes through
    ``_hand_over``, ``call_soon_threadsafe`` with the same effect that also
    ends the count and may let a spinning loop go on without a syscall."""
    if loop.is_closed():
        return
    try:
        if counted:
            loop._hand_over(setter, fut, value)
        else:
            loop.call_soon_threadsafe(setter, fut, value)
    except Exception:
        # A worker never dies of a failed hand-over; a loop that closed
        # since the check refuses it quietly.
        if not loop.is_closed():
            _thread._base.LOGGER.exception("exception calling callback for %r", fut)


class LoopWork:
    """One ``run_in_executor`` call on the default executor. The worker calls
    ``run``; ``ThreadPoolExecutor.shutdown(cancel_futures=True)`` calls
    ``future.cancel()`` on work still queued (``future`` is the item itself).

    ``counted``: the loop counts this work as outstanding (it may then spin
    rather than sleep while waiting for it, see ``src/eventloop/spin.rs``),
    and every way the work ends tells the loop once. Not for a loop whose
    class overrides ``call_soon_threadsafe``: the override then sees the
    hand-over, as it would through ``wrap_future``."""

    __slots__ = ("loop", "fut", "func", "args", "counted")

    def __init__(self, loop, fut, func, args, counted):
        self.loop = loop
        self.fut = fut
        self.func = func
        self.args = args
        self.counted = counted

    def run(self, work_queue=None, idle=None):
        """Runs the work and hands its outcome to the loop. ``_serve`` passes
        its queue and idle tokens: the worker then counts itself idle (if no
        work waits) before the hand-over rather than after, since the loop
        may submit again as soon as it has the outcome, and should find this
        worker's token instead of starting another thread."""
        loop, fut, func, args = self.loop, self.fut, self.func, self.args
        self.loop = self.fut = self.func = self.args = None
        if fut is None or fut.cancelled():
            if fut is not None and self.counted and not loop.is_closed():
                loop._executor_abandoned()
            _mark_idle(work_queue, idle)
            return
        try:
            result = func(*args)
        except BaseException as exc:
            setter, value = _set_exception, exc
        else:
            setter, value = _set_result, result
        # Cleared before the hand-over: an exception's traceback keeps this
        # frame alive, so no cycle may run through it to the future.
        func = args = result = None
        _mark_idle(work_queue, idle)
        _send(loop, self.counted, setter, fut, value)
        loop = fut = self = setter = value = None

    @property
    def future(self):
        return self

    def cancel(self):
        loop, fut = self.loop, self.fut
        self.loop = self.fut = self.func = self.args = None
        if fut is not None:
            _send(loop, self.counted, _cancel, fut, None)
        return True

    def set_exception(self, exc):
        # ThreadPoolExecutor marks queued work broken this way when a worker's
        # initializer fails (the loop's executor has none; kept for subclasses).
        loop, fut = self.loop, self.fut
        self.loop = self.fut = self.func = self.args = None
        if fut is not None:
            _send(loop, self.counted, _set_exception, fut, exc)


def _mark_idle(work_queue, idle):
    """Gives the executor a token for this worker if no work waits for it
    (``LoopExecutor._adjust_thread_count`` takes one instead of starting a
    thread). Nothing to do without a queue (not called from ``_serve``)."""
    if idle is not None and work_queue.empty():
        idle.append(None)


def _serve(executor_ref, work_queue, idle):
    """A worker thread: runs work from the queue until the executor is shut
    down or collected, or the interpreter exits (each of these puts a None
    on the queue, which the worker passes on to the next one)."""
    try:
        while True:
            item = work_queue.get()
            if item is not None:
                if item.__class__ is LoopWork:
                    item.run(work_queue, idle)  # marks this worker idle itself
                else:
                    item.run()
                    _mark_idle(work_queue, idle)
                del item
                continue
            executor = executor_ref()
            if _thread._shutdown or executor is None or executor._shutdown:
                if executor is not None:
                    executor._shutdown = True
                work_queue.put(None)
                return
            del executor
    except BaseException:
        _thread._base.LOGGER.critical("Exception in worker", exc_info=True)


def _private_layout_is_known():
    """True when ``ThreadPoolExecutor`` has the private parts ``LoopExecutor``
    builds on, as on CPython 3.11 to 3.13. Later versions may change them
    (3.14 passes a worker context to ``_WorkItem.run`` and drops
    ``_initializer``); the loop then keeps a plain ``ThreadPoolExecutor``
    and the stock ``wrap_future`` path instead of failing."""
    probe = ThreadPoolExecutor(max_workers=1)  # starts no thread
    try:
        attributes = (
            "_initializer", "_work_queue", "_threads", "_shutdown_lock", "_broken",
            "_shutdown", "_max_workers", "_thread_name_prefix", "_adjust_thread_count",
        )
        module = ("_threads_queues", "_global_shutdown_lock", "_shutdown", "BrokenThreadPool")
        return (
            all(hasattr(probe, name) for name in attributes)
            and all(hasattr(_thread, name) for name in module)
            and _thread._WorkItem.run.__code__.co_argcount == 1
        )
    except Exception:
        return False
    finally:
        probe.shutdown(wait=False)


class LoopExecutor(ThreadPoolExecutor):
    """The default executor of ``ferroloop.Loop``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._idle_workers = deque()

    def _adjust_thread_count(self):
        # Called with the work already queued: an idle worker will take it.
        if self._initializer is not None:
            # ThreadPoolExecutor's own workers run initializers.
            return super()._adjust_thread_count()
        try:
            self._idle_workers.pop()
            return
        except IndexError:
            pass
        count = len(self._threads)
        if count >= self._max_workers:
            return
        queue = self._work_queue
        thread = threading.Thread(
            name=f"{self._thread_name_prefix or self}_{count}",
            target=_serve,
            args=(weakref.ref(self, lambda _ref: queue.put(None)), queue, self._idle_workers),
        )
        thread.start()
        self._threads.add(thread)
        _thread._threads_queues[thread] = queue

    def _run_for_loop(self, loop, func, args):
        """``loop.run_in_executor(None, func, *args)``: returns an asyncio
        future of `loop`. Refuses work as ``submit`` does."""
        with self._shutdown_lock, _thread._global_shutdown_lock:
            if self._broken:
                raise _thread.BrokenThreadPool(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _thread._shutdown:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            fut = loop.create_future()
            counted = type(loop).call_soon_threadsafe is _PLAIN_CALL_SOON_THREADSAFE
            if counted:
                # Before the put: a worker may finish the work before put returns.
                loop._executor_submitted()
            self._work_queue.put(LoopWork(loop, fut, func, args, counted))
            self._adjust_thread_count()
            return fut


# The default executor's class: LoopExecutor where its assumptions hold.
DEFAULT_EXECUTOR = LoopExecutor if _private_layout_is_known() else ThreadPoolExecutor

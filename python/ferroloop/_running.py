"""Running and closing: ``run_forever``, ``run_until_complete``, ``close``,
async generator hooks and ``shutdown_asyncgens``.

The iterations themselves run in Rust (``_run_forever_core``); this part does
the bookkeeping around them, once per run, in asyncio's order.
"""

import sys
import warnings
import weakref
from asyncio import events, futures, tasks

from ._errors import logger

_EXITS = (SystemExit, KeyboardInterrupt)


def _stop_when_done(fut):
    """Done-callback of the future given to ``run_until_complete``."""
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, _EXITS):
            # The exception will propagate out of the loop by itself; stopping
            # now would let run_until_complete report it as "stopped early".
            return
    futures._get_loop(fut).stop()


class RunningMixin:
    """The running/closing part of ``ferroloop.Loop``."""

    def _check_running(self):
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _check_closed(self):
        if self.is_closed():
            raise RuntimeError("Event loop is closed")

    def run_forever(self):
        """Run until stop() is called."""
        self._run_forever_setup()
        try:
            self._run_forever_core()
        finally:
            self._run_forever_cleanup()

    def _run_forever_setup(self):
        """Everything run_forever does before its first iteration. Separate,
        as in asyncio 3.13, for subclasses that drive `_run_once` from
        another event loop (a GUI's, say)."""
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self.get_debug())
        self._old_agen_hooks = sys.get_asyncgen_hooks()
        self._mark_running()
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )
        events._set_running_loop(self)

    def _run_forever_cleanup(self):
        """Undoes `_run_forever_setup`."""
        self._mark_stopped()
        events._set_running_loop(None)
        self._set_coroutine_origin_tracking(False)
        if self._old_agen_hooks is not None:
            sys.set_asyncgen_hooks(*self._old_agen_hooks)
            self._old_agen_hooks = None

    def run_until_complete(self, future):
        """Run until the future (or coroutine) is done; return its result."""
        self._check_closed()
        self._check_running()
        new_task = not futures.isfuture(future)
        future = tasks.ensure_future(future, loop=self)
        if new_task:
            # The task is ours: if the loop is interrupted, nobody else will
            # retrieve its exception, so don't warn about it.
            future._log_destroy_pending = False
        future.add_done_callback(_stop_when_done)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()  # marks it retrieved
            raise
        finally:
            future.remove_done_callback(_stop_when_done)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def close(self):
        """Close the loop: drop pending callbacks, release OS resources and
        shut the default executor down without waiting. Idempotent."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self.get_debug():
            logger.debug("Close %r", self)
        self._close_signal_handling()
        self._close_child_watching()
        self._close_core()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)

    def __del__(self, _warn=warnings.warn):
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    def __repr__(self):
        return (
            f"<{type(self).__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    # -- debug ---------------------------------------------------------------

    def set_debug(self, enabled):
        self._set_debug_flag(bool(enabled))
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled):
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            from asyncio import constants

            sys.set_coroutine_origin_tracking_depth(constants.DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(self._coroutine_origin_tracking_saved_depth)
        self._coroutine_origin_tracking_enabled = enabled

    def _run_handle_debug(self, handle):
        """Runs one callback in debug mode (called by the Rust core): tracks
        the current handle and warns about slow callbacks."""
        self._current_handle = handle
        started = self.time()
        try:
            handle._run()
        finally:
            self._current_handle = None
        elapsed = self.time() - started
        if elapsed >= self.slow_callback_duration:
            logger.warning("Executing %s took %.3f seconds", _describe_handle(handle), elapsed)
        # A coroutine that raised inside the callback keeps this frame alive
        # (its frame's f_back); dropping the handle here breaks the cycle
        # task -> exception -> frames -> handle -> task, so the task is
        # freed (and reports its unretrieved exception) at once.
        handle = None

    # -- async generators ----------------------------------------------------

    def _asyncgen_firstiter_hook(self, agen):
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen):
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self):
        """Close every async generator still alive on this loop."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await tasks.gather(*[agen.aclose() for agen in closing], return_exceptions=True)
        for result, agen in zip(results, closing):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )


def _describe_handle(handle):
    """A task's repr for its step callbacks, the handle's repr otherwise
    (what asyncio's slow-callback warning prints)."""
    owner = getattr(handle._callback, "__self__", None)
    if isinstance(owner, tasks.Task):
        return repr(owner)
    return str(handle)


def init_running_state(loop):
    """Per-instance state of this mixin (called from ``Loop.__init__``)."""
    loop._asyncgens = weakref.WeakSet()
    loop._asyncgens_shutdown_called = False
    loop._coroutine_origin_tracking_enabled = False
    loop._coroutine_origin_tracking_saved_depth = None
    loop._current_handle = None
    loop._old_agen_hooks = None
    loop.slow_callback_duration = 0.1

"""Exception handling: ``call_exception_handler`` and friends.

Behaves as asyncio's: the default handler logs to the ``asyncio`` logger
with the same lines; a custom handler runs in the context of the failing
task/future/handle; failures of handlers are logged, never lost, while
``SystemExit`` and ``KeyboardInterrupt`` propagate.
"""

import logging
import sys
import traceback

from ._support import format_callback_source

logger = logging.getLogger("asyncio")

_EXITS = (SystemExit, KeyboardInterrupt)


def _traceback_lines(title, frames):
    return f"{title} (most recent call last):\n" + "".join(traceback.format_list(frames)).rstrip()


class ExceptionHandlingMixin:
    """The exception-handler part of ``ferroloop.Loop``."""

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context):
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info = False
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        current = self._current_handle
        if "source_traceback" not in context and current is not None and current._source_traceback:
            context["handle_traceback"] = current._source_traceback
        lines = [message]
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key == "source_traceback":
                value = _traceback_lines("Object created at", value)
            elif key == "handle_traceback":
                value = _traceback_lines("Handle created at", value)
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context):
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except _EXITS:
                raise
            except BaseException:
                # The logger itself failed; there is nobody else to tell.
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            # 3.12+ runs the handler in the failing object's context.
            run_in = self._context_of(context) if sys.version_info >= (3, 12) else None
            if run_in is not None:
                run_in.run(handler, self, context)
            else:
                handler(self, context)
        except _EXITS:
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except _EXITS:
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an unexpected "
                    "error in custom exception handler",
                    exc_info=True,
                )

    @staticmethod
    def _context_of(context):
        """The contextvars.Context of the task, future or handle the error
        is about, so a custom handler sees the same context variables."""
        for key in ("task", "future", "handle"):
            thing = context.get(key)
            if thing is not None:
                get_context = getattr(thing, "get_context", None)
                ctx = get_context() if get_context is not None else None
                return ctx if hasattr(ctx, "run") else None
        return None

    def _report_callback_exception(self, handle, exc):
        """Called by the Rust core when a callback raised."""
        callback = handle._callback
        source = format_callback_source(callback, handle._args, self.get_debug())
        context = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
        if handle._source_traceback:
            context["source_traceback"] = handle._source_traceback
        self.call_exception_handler(context)

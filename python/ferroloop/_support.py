"""Helpers the Rust core calls on rare paths: reprs, debug stacks, checks.

Formatting reuses ``asyncio.format_helpers`` so that reprs and log messages
match the running interpreter's asyncio exactly (their format changed
between 3.12 and 3.13: arguments are shown only in debug mode since 3.13).
"""

import inspect
import sys
from asyncio import coroutines, format_helpers

_SOURCE_HAS_DEBUG = "debug" in inspect.signature(format_helpers._format_callback_source).parameters

# asyncio's own test for coroutine functions. 3.14 deprecates the public
# name and keeps an undeprecated private one for asyncio's internal checks.
_iscoroutinefunction = getattr(coroutines, "_iscoroutinefunction", coroutines.iscoroutinefunction)


def is_coroutine_like(callback):
    """True for coroutine objects and coroutine functions, which asyncio's
    scheduling methods refuse."""
    return coroutines.iscoroutine(callback) or _iscoroutinefunction(callback)


def format_callback_source(callback, args, debug):
    """``func(args) at file:line``, as asyncio formats callbacks."""
    if _SOURCE_HAS_DEBUG:
        return format_helpers._format_callback_source(callback, args, debug=debug)
    return format_helpers._format_callback_source(callback, args)


def handle_repr(handle):
    """The repr of a ferroloop Handle/TimerHandle, as asyncio's."""
    if handle._repr is not None:
        return handle._repr
    info = [type(handle).__name__]
    if handle._cancelled:
        info.append("cancelled")
    if hasattr(handle, "when"):
        info.append(f"when={handle.when()}")
    callback = handle._callback
    if callback is not None:
        info.append(format_callback_source(callback, handle._args, handle._loop.get_debug()))
    tb = handle._source_traceback
    if tb:
        frame = tb[-1]
        info.append(f"created at {frame[0]}:{frame[1]}")
    return "<{}>".format(" ".join(info))


def extract_stack():
    """The caller's stack (the code that called the loop method), as asyncio
    records it in debug mode."""
    return format_helpers.extract_stack(sys._getframe(1))


def check_callback(callback, method):
    """Debug-mode argument checks of asyncio's scheduling methods."""
    if is_coroutine_like(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

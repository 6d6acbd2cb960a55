"""``ferroloop.Loop``: the Rust ``LoopBase`` plus the Python mixins, as an
``asyncio.AbstractEventLoop``.

Each mixin is one area of the asyncio API, in its own module.
"""

import asyncio
import os
import sys
import time
import types

from . import _stock_names
from ._errors import ExceptionHandlingMixin
from ._executors import ExecutorsMixin
from ._ferroloop import LoopBase
from ._network import NetworkMixin, init_network_state
from ._running import RunningMixin, init_running_state
from ._signals import SignalsMixin
from ._subprocess import SubprocessMixin, init_subprocess_state

# 3.11's C Task schedules its steps with getattr(loop, "call_soon")(...);
# 3.12 switched to PyObject_VectorcallMethod, which binds nothing.
_C_TASK_GETS_CALL_SOON_BY_GETATTR = sys.version_info < (3, 12)


def _debug_from_environment():
    """Debug mode as asyncio decides it: -X dev or PYTHONASYNCIODEBUG."""
    if sys.flags.dev_mode:
        return True
    return not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG"))


_MIXINS = (
    RunningMixin,
    ExceptionHandlingMixin,
    ExecutorsMixin,
    SignalsMixin,
    NetworkMixin,
    SubprocessMixin,
)


class Loop(LoopBase, asyncio.AbstractEventLoop):
    """An asyncio event loop whose core is written in Rust."""

    def __init__(self):
        init_running_state(self)
        init_network_state(self)
        init_subprocess_state(self)
        self._exception_handler = None
        self._default_executor = None
        self._executor_shutdown_called = False
        self._signal_handlers = {}
        self._signal_sockets = None
        self._clock_resolution = time.get_clock_info("monotonic").resolution
        self.set_debug(_debug_from_environment())
        if _C_TASK_GETS_CALL_SOON_BY_GETATTR:
            # Every task step on 3.11 reads `loop.call_soon` as an attribute,
            # which allocates a bound method each time; an instance attribute
            # is found first and costs nothing (~7% per task switch).
            self.call_soon = LoopBase.call_soon.__get__(self)

    # asyncio's own methods, which the network mixin borrows, read this.
    _debug = property(LoopBase.get_debug)


def _merge_mixins(cls, mixins):
    """Copies the mixins' attributes into `cls` (the earlier mixin wins, as
    it would in the MRO; `cls`'s own attributes win over all).

    Why not inherit from them: an attribute the interpreter's type cache
    misses is searched for in every class of the MRO, in order. 3.11's C
    `Future` and `Task` look `loop.call_soon` and `loop.get_debug` up that
    way on every done callback and every future created, and whether that
    lookup hits the cache depends on the process's memory layout (two hot
    lookups can share a slot); with six mixins ahead of `LoopBase` each miss
    walked seven dictionaries before finding the method. Flat, it is one.
    """
    own = set(vars(cls))
    for mixin in reversed(mixins):
        for name, value in vars(mixin).items():
            if name not in own and name not in ("__module__", "__qualname__", "__doc__"):
                setattr(cls, name, value)


_merge_mixins(Loop, _MIXINS)


def _adopt_stock_qualnames(cls, stock_cls):
    """Gives each public method of `cls` that `stock_cls` (asyncio's loop
    class) also has the stock method's ``__qualname__``, e.g.
    ``BaseEventLoop.run_in_executor`` rather than
    ``ExecutorsMixin.run_in_executor``.

    Why: CPython (3.11 to 3.13) words a wrong call's TypeError ("X.f()
    missing 1 required positional argument: ...") from the function's
    ``__qualname__`` (not the code's ``co_qualname``), and names coroutine
    objects after it too. The mapping is read from asyncio at import, so it
    follows the running version. The functions are the mixins' own (shared
    with the mixin classes, which exist only to build `cls`); their
    ``__module__`` becomes `_stock_names`, where pickle finds them again.
    """
    for name, value in vars(cls).items():
        if name.startswith("_") or not isinstance(value, types.FunctionType):
            continue
        owner = next((k for k in stock_cls.__mro__ if name in vars(k)), None)
        stock = vars(owner).get(name) if owner is not None else None
        if not isinstance(stock, types.FunctionType):
            continue
        if stock.__qualname__ != f"{owner.__name__}.{name}":
            continue  # not a plain method (never seen); keep our own name
        value.__qualname__ = stock.__qualname__
        _stock_names.register(value)


# The class asyncio.new_event_loop() makes (_UnixSelectorEventLoop here).
_adopt_stock_qualnames(Loop, asyncio.SelectorEventLoop)

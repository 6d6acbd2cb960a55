"""``ferroloop.Loop``: the Rust ``LoopBase`` plus the Python mixins, as an
``asyncio.AbstractEventLoop``.

Each mixin is one area of the asyncio API, in its own module.
"""

import asyncio
import os
import sys
import time

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


class Loop(
    RunningMixin,
    ExceptionHandlingMixin,
    ExecutorsMixin,
    SignalsMixin,
    NetworkMixin,
    SubprocessMixin,
    LoopBase,
    asyncio.AbstractEventLoop,
):
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

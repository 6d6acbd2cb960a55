"""Entry points: ``new_event_loop``, ``EventLoopPolicy``, ``install``, ``run``."""

import asyncio
import warnings
from asyncio import events

from ._loop import Loop

# The platform's default policy (on Unix it also carries the child-watcher
# API of 3.11/3.12, which asyncio's own helpers call). Reading the name is
# deprecated from 3.14 on, hence the filter.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    _BasePolicy = asyncio.DefaultEventLoopPolicy


def new_event_loop():
    """A new ferroloop event loop."""
    return Loop()


class EventLoopPolicy(_BasePolicy):
    """An asyncio event loop policy whose loops are ferroloop loops."""

    _loop_factory = Loop

    def __repr__(self):
        return f"<{type(self).__name__}>"


def install():
    """Make ferroloop the loop asyncio creates (``asyncio.new_event_loop``,
    ``asyncio.run``, ``asyncio.get_event_loop``)."""
    asyncio.set_event_loop_policy(EventLoopPolicy())


def run(main, *, debug=None):
    """Run a coroutine on a new ferroloop loop, like ``asyncio.run``."""
    if events._get_running_loop() is not None:
        # Same check and message as asyncio.run, before the coroutine is
        # touched (the caller gets the "never awaited" warning, as there).
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)

"""Entry points: ``new_event_loop``, ``EventLoopPolicy``, ``install``, ``run``."""

import asyncio
from asyncio import events

from ._loop import Loop

# Renamed with a leading underscore when policies were deprecated (3.14).
_BasePolicy = getattr(events, "BaseDefaultEventLoopPolicy", None) or getattr(
    events, "_BaseDefaultEventLoopPolicy"
)


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

"""ferroloop: asyncio's event loop, rebuilt in Rust.

    import ferroloop
    ferroloop.run(main())             # like asyncio.run, on ferroloop
    loop = ferroloop.new_event_loop()
    ferroloop.install()               # make asyncio create ferroloop loops

or run a script unchanged: ``python -m ferroloop script.py``.
"""

from ._ferroloop import Handle, TimerHandle
from ._loop import Loop
from ._policy import EventLoopPolicy, install, new_event_loop, run

__all__ = [
    "EventLoopPolicy",
    "Handle",
    "Loop",
    "TimerHandle",
    "install",
    "new_event_loop",
    "run",
]
__version__ = "0.1.0"

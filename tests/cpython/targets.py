"""Target event loops for the CPython conformance harness (used in the child).

A *target* is the loop under test.  It supplies two things:

* a loop factory (what ``create_event_loop``/``new_loop`` hooks return),
* a policy class (what ``asyncio.DefaultEventLoopPolicy`` is set to, so that
  ``asyncio.new_event_loop()``, ``asyncio.run()`` and every test module's
  ``tearDownModule`` -> ``set_event_loop_policy(None)`` all lead back to it).

Every way a target loop can come into being bumps ``created``; the child's
unittest result compares it before/after each test to decide whether the test
exercised the target at all.  Counting the same loop twice (factory + policy +
``__init__``) is harmless because only "did it move" is looked at.
"""

import asyncio
import importlib
import selectors
import sys

# Number of target loops created so far in this process.
created = 0


def _note_created():
    global created
    created += 1


def _counting_policy(base):
    """Subclass of policy class ``base`` whose new_event_loop() counts."""

    class CountingPolicy(base):
        def new_event_loop(self):
            _note_created()
            return super().new_event_loop()

    # Keep the target's own name so reprs/messages in tests look normal.
    CountingPolicy.__name__ = base.__name__
    CountingPolicy.__qualname__ = base.__qualname__
    return CountingPolicy


def _count_init(cls):
    """Patch ``cls.__init__`` to count; False if the type is immutable
    (e.g. a compiled extension type), in which case the factory and policy
    wrappers still do the counting."""
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        _note_created()
        original(self, *args, **kwargs)

    try:
        cls.__init__ = __init__
    except (TypeError, AttributeError):
        return False
    return True


class Target:
    def __init__(self, name, new_loop, policy, loop_class=None):
        self.name = name
        self.new_loop = new_loop      # zero-argument factory, counts
        self.policy = policy          # policy class, counts
        self.loop_class = loop_class  # for reporting only

    def install(self):
        """Make the target the process-wide default loop/policy.

        ``asyncio.events._init_event_loop_policy`` (3.11-3.13) does
        ``from . import DefaultEventLoopPolicy``, i.e. it reads the attribute
        of the ``asyncio`` package each time the policy is reset to None, so
        patching the package attribute is what matters; ``unix_events`` is
        patched too so the two names never disagree.
        """
        asyncio.DefaultEventLoopPolicy = self.policy
        if sys.platform != "win32":
            asyncio.unix_events.DefaultEventLoopPolicy = self.policy
        asyncio.set_event_loop_policy(self.policy())


def _stock_target():
    """The stock selector loop on epoll: the harness's self-check target.

    A trivial subclass is used instead of ``asyncio.SelectorEventLoop`` itself
    so that white-box tests which instantiate the stock class directly are
    *not* counted, exactly as they are not counted for ferroloop.  This keeps
    the set of counted tests comparable between the two targets.
    """
    base = asyncio.SelectorEventLoop

    class EpollSelectorEventLoop(base):
        def __init__(self, selector=None):
            if selector is None:
                selector = selectors.EpollSelector()
            super().__init__(selector)

    _count_init(EpollSelectorEventLoop)

    class StockPolicy(asyncio.DefaultEventLoopPolicy):
        _loop_factory = EpollSelectorEventLoop

    return Target("asyncio", EpollSelectorEventLoop, _counting_policy(StockPolicy),
                  EpollSelectorEventLoop)


def _module_target(name):
    """A third-party loop package following the uvloop convention:
    ``<module>.new_event_loop()`` and ``<module>.EventLoopPolicy``
    (ferroloop follows it; ``Loop`` is used for __init__ counting if present)."""
    mod = importlib.import_module(name)
    raw_factory = mod.new_event_loop
    loop_class = getattr(mod, "Loop", None)
    if loop_class is not None:
        _count_init(loop_class)

    def new_loop():
        _note_created()
        return raw_factory()

    return Target(name, new_loop, _counting_policy(mod.EventLoopPolicy), loop_class)


def load(name):
    if name == "asyncio":
        return _stock_target()
    return _module_target(name)

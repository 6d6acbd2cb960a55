"""Child side of the uvloop-suite runner: runs ONE uvloop test module on ONE loop.

Started by run.py (through tests/cpython/supervisor.py) as
``python -X faulthandler child.py CONFIG.json``; streams the same JSON events
as tests/cpython/child.py, whose event writer and unittest result it reuses.

config["target"] picks the flavour:
  asyncio    uvloop's own AIO classes (``Test_AIO_TCP(_TestTCP, AIOTestCase)``)
  ferroloop  a twin of each AIO class on FerroloopTestCase: the same mixin,
             ``Test_Ferro_TCP(_TestTCP, FerroloopTestCase)``
The UV classes and plain TestCases (uvloop's own source, policy) never run.
"""

import importlib.util
import os
import socket
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CPYTHON_HARNESS = os.path.join(os.path.dirname(HERE), "cpython")


def _cpython_child():
    """tests/cpython/child.py (same file name as this one, hence by path)."""
    sys.path.insert(1, CPYTHON_HARNESS)  # for its own `import targets`
    spec = importlib.util.spec_from_file_location(
        "cpython_child", os.path.join(CPYTHON_HARNESS, "child.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cpython_child = _cpython_child()

# run.py --uvloop-branches sets this to "uvloop" (see test_bases).
BRANCHES_ENV = "FERROLOOP_UVLOOP_SUITE_BRANCHES"
FERRO_NEW_LOOP = "__import__('ferroloop').new_event_loop()"


def load_testbase(sdist_root):
    """uvloop._testbase from the sdist (it matches the tests), on top of the
    installed uvloop that it and some test programs import."""
    import uvloop
    path = os.path.join(sdist_root, "uvloop", "_testbase.py")
    spec = importlib.util.spec_from_file_location("uvloop._testbase", path)
    tb = importlib.util.module_from_spec(spec)
    sys.modules["uvloop._testbase"] = tb
    spec.loader.exec_module(tb)
    uvloop._testbase = tb
    # uvloop's version scans ports upwards from 50000: two modules running at
    # once can get the same one.  The kernel's choice is free and unshared.
    tb.find_free_port = free_port
    return tb


def free_port(start_from=None):
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def test_bases(tb, branches):
    """{target: the base class that replaces AIOTestCase in every AIO class}.

    branches "asyncio" (the default): the tests take their asyncio branches
    (``implementation``, ``is_asyncio_loop()``) on both loops, as the AIO
    classes do.  "uvloop" (``--uvloop-branches``): both loops take the
    branches written for uvloop, some of which asyncio has grown the
    features for since; still differential, ferroloop against stock.
    """
    import ferroloop

    class FerroloopTestCase(tb.BaseTestCase):
        implementation = "asyncio"

        def is_asyncio_loop(self):
            return self.implementation == "asyncio"

        def new_loop(self):
            return ferroloop.new_event_loop()

        def new_policy(self):
            return ferroloop.EventLoopPolicy()

    bases = {"asyncio": tb.AIOTestCase, "ferroloop": FerroloopTestCase}
    if branches == "uvloop":
        bases = {target: type(base)(base.__name__, (base,), {
            "implementation": "uvloop", "is_asyncio_loop": lambda self: False})
            for target, base in bases.items()}
    return bases


def twin(cls, tb, base, target):
    """``Test_AIO_X(Mixin, AIOTestCase)`` -> ``Test_Ferro_X(Mixin, base)``
    (ferroloop), or the same name on ``base`` (stock)."""
    bases = tuple(base if b is tb.AIOTestCase else b for b in cls.__bases__)
    body = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    name = cls.__name__
    if target == "ferroloop":
        name = name.replace("AIO", "Ferro")
        if hasattr(cls, "NEW_LOOP"):  # test_signals: the loop of its subprocesses
            body["NEW_LOOP"] = FERRO_NEW_LOOP
    body["__qualname__"] = name
    return type(cls)(name, bases, body)


def selected_classes(module, tb, target, branches):
    aio = [obj for obj in vars(module).values()
           if isinstance(obj, type) and issubclass(obj, tb.AIOTestCase)
           and obj is not tb.AIOTestCase]
    base = test_bases(tb, branches)[target]
    if base is tb.AIOTestCase:
        return aio
    twins = [twin(cls, tb, base, target) for cls in aio]
    for cls in twins:
        setattr(module, cls.__name__, cls)
    return twins


def main():
    cpython_child.die_with_parent()
    import faulthandler
    import json
    import signal
    faulthandler.register(signal.SIGRTMIN + 5, all_threads=True)
    # Started in the background by a non-interactive shell, this process
    # inherits an ignored SIGINT, and so would the test's own children
    # (test_signals interrupts them): restore Python's usual handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    events = cpython_child.Events(cfg["event_fd"])
    events.emit("hello", pid=os.getpid(), python=sys.version.split()[0],
                target=cfg["target"])
    tests_dir = cfg["suite_dir"]
    name = cfg["module"]
    try:
        tb = load_testbase(os.path.dirname(tests_dir))
        sys.path.insert(0, tests_dir)
        module = __import__(name)
        classes = selected_classes(module, tb, cfg["target"],
                                   os.environ.get(BRANCHES_ENV, "asyncio"))
    except BaseException as exc:
        cpython_child.report_setup_failure(events, name + ".<setup>", exc)
        return

    done = set(cfg.get("done", []))
    only = cfg.get("only") or []
    skip = cfg.get("skip") or []
    to_run = []
    loader = unittest.defaultTestLoader
    for cls in classes:
        for test in cpython_child.flatten(loader.loadTestsFromTestCase(cls)):
            tid = test.id()
            if tid in done or (only and not cpython_child.matches(tid, only)):
                continue
            if cpython_child.matches(tid, skip):
                events.emit("end", test=tid, outcome="skip", counted=False, time=0.0,
                            detail="[skip] in expected-failures list")
            else:
                to_run.append(test)
    result = cpython_child.StreamingResult(events, None, cfg["timeout"])
    unittest.TestSuite(to_run).run(result)
    events.emit("done")


if __name__ == "__main__":
    main()

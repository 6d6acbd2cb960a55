"""Shared fixtures for ferroloop's own differential test-suite.

Every test that takes the ``loop`` / ``loop_factory`` / ``loop_kind`` fixture
runs twice: once on the stock asyncio loop (``asyncio.new_event_loop()``,
a selector loop using epoll on Linux) and once on ferroloop
(``ferroloop.new_event_loop()``).  Both runs must pass: the stock loop is the
reference implementation, ferroloop has to behave the same way.

The ferroloop run is skipped (with the import error as the reason) only when
``import ferroloop`` raises ImportError; any other error while importing is
reported as an error.
"""

import asyncio
import faulthandler
import os
import signal
import subprocess
import sys
import textwrap

import net_helpers
import pytest

try:
    import ferroloop as _ferroloop
except ImportError as exc:  # only ImportError means "not built / not installed"
    _ferroloop = None
    _FERROLOOP_IMPORT_ERROR = exc
else:
    _FERROLOOP_IMPORT_ERROR = None


LOOP_KINDS = ("asyncio", "ferroloop")

# Hang protection (a hung loop must not hang CI):
# - after SOFT_TIMEOUT seconds a SIGALRM raises TestHang (a SystemExit, so
#   event loops let it propagate instead of passing it to their exception
#   handler); the test fails with a traceback and the session goes on.  This
#   works while the loop waits in a poller that handles EINTR properly.
# - after HARD_TIMEOUT seconds (e.g. a hang that holds the GIL) faulthandler
#   dumps every thread's traceback to the real stderr and exits the process.
# FERROLOOP_TEST_TIMEOUT overrides the soft timeout (the hard one is twice it).
SOFT_TIMEOUT = float(os.environ.get("FERROLOOP_TEST_TIMEOUT", "60"))
HARD_TIMEOUT = 2 * SOFT_TIMEOUT
_hang_dump_file = None


class TestHang(SystemExit):
    """Raised in the main thread when a test exceeds SOFT_TIMEOUT."""

    __test__ = False  # not a test class


def pytest_configure(config):
    # pytest suspends its fd-level output capturing after loading the
    # initial conftests, so fd 2 is the real stderr here: keep a copy for
    # faulthandler, which cannot go through pytest's capturing.
    global _hang_dump_file
    _hang_dump_file = os.fdopen(os.dup(2), "w")


def pytest_unconfigure(config):
    global _hang_dump_file
    if _hang_dump_file is not None:
        _hang_dump_file.close()
        _hang_dump_file = None


def _skip_without_ferroloop():
    if _ferroloop is None:
        pytest.skip(
            f"ferroloop is not importable ({_FERROLOOP_IMPORT_ERROR!r}); "
            "build/install it (e.g. `maturin develop`) to run the ferroloop half"
        )
    return _ferroloop


def _new_loop_function(kind):
    if kind == "asyncio":
        return asyncio.new_event_loop
    if kind == "ferroloop":
        return _skip_without_ferroloop().new_event_loop
    raise ValueError(kind)


def _close_loops(loops):
    running = [lp for lp in loops if lp.is_running()]
    for lp in loops:
        if not lp.is_running() and not lp.is_closed():
            lp.close()
    assert not running, f"test left event loop(s) running: {running!r}"


# ---------------------------------------------------------------------------
# loop fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request):
    """Name of the loop implementation under test: "asyncio" or "ferroloop"."""
    if request.param == "ferroloop":
        _skip_without_ferroloop()
    return request.param


@pytest.fixture
def loop_factory(loop_kind):
    """A zero-argument callable creating new loops of the kind under test.

    Every loop created through it is closed after the test, and the test
    fails if one of them is still running.
    """
    new = _new_loop_function(loop_kind)
    created = []

    def factory():
        lp = new()
        created.append(lp)
        return lp

    factory.kind = loop_kind
    yield factory
    _close_loops(created)


@pytest.fixture
def loop(loop_factory):
    """A fresh event loop of the kind under test (closed after the test)."""
    return loop_factory()


@pytest.fixture
def stock_loop():
    """A fresh stock asyncio loop, used to compute expected behaviour."""
    lp = asyncio.new_event_loop()
    yield lp
    _close_loops([lp])


@pytest.fixture
def ferroloop_module():
    """The ferroloop package (skips when it is not importable)."""
    return _skip_without_ferroloop()


@pytest.fixture
def check_same_error():
    """Return ``check(fn, tested_loop, stock_loop)``.

    ``fn(loop)`` must raise on the stock loop; it must then raise an exception
    of exactly the same type and with the same message on the tested loop.
    Returns the exception raised by the tested loop.
    """

    def check(fn, tested, stock):
        with pytest.raises(BaseException) as expected:
            fn(stock)
        with pytest.raises(BaseException) as got:
            fn(tested)
        assert type(got.value) is type(expected.value), (got.value, expected.value)
        assert str(got.value) == str(expected.value)
        return got.value

    return check


# ---------------------------------------------------------------------------
# isolation / hang protection
# ---------------------------------------------------------------------------

_SIGNALS_TO_RESTORE = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGHUP", "SIGCHLD")
    if hasattr(signal, name)
)


@pytest.fixture(autouse=True)
def _isolation():
    """Detect state leaking out of a test and undo it for the next one."""
    faulthandler.dump_traceback_later(
        HARD_TIMEOUT, exit=True, file=_hang_dump_file or sys.__stderr__
    )
    hooks = sys.get_asyncgen_hooks()
    handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS_TO_RESTORE}
    wakeup_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_fd)
    policy = asyncio.events._event_loop_policy

    def on_alarm(signum, frame):
        raise TestHang(f"test did not finish within {SOFT_TIMEOUT:g} s (hung event loop?)")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, SOFT_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        leaked_running = asyncio._get_running_loop()
        leaked_hooks = sys.get_asyncgen_hooks()
        asyncio.events._set_running_loop(None)
        sys.set_asyncgen_hooks(*hooks)
        for sig, handler in handlers.items():
            if handler is not None and signal.getsignal(sig) != handler:
                signal.signal(sig, handler)
        signal.set_wakeup_fd(wakeup_fd)
        asyncio.events._event_loop_policy = policy
        assert leaked_running is None, f"running loop leaked out of the test: {leaked_running!r}"
        assert leaked_hooks == hooks, "asyncgen hooks were not restored after the loop stopped"


# ---------------------------------------------------------------------------
# subprocess helpers
# ---------------------------------------------------------------------------

_PREAMBLE = '''\
import os as _ferroloop_test_os


def new_loop():
    """New event loop of the kind under test (FERROLOOP_TEST_LOOP_KIND)."""
    if _ferroloop_test_os.environ["FERROLOOP_TEST_LOOP_KIND"] == "ferroloop":
        import ferroloop
        return ferroloop.new_event_loop()
    import asyncio
    return asyncio.new_event_loop()


'''


class PythonRunner:
    """Runs small Python scripts in a child interpreter (same executable).

    Scripts get a ``new_loop()`` function creating a loop of the kind under
    test, and the child can import the same ferroloop as the test process.
    """

    def __init__(self, kind, tmp_path):
        self.kind = kind
        self.tmp_path = tmp_path
        self._count = 0

    def env(self, **extra):
        env = dict(os.environ)
        for var in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONWARNINGS"):
            env.pop(var, None)
        paths = []
        if _ferroloop is not None:
            paths.append(os.path.dirname(os.path.dirname(os.path.abspath(_ferroloop.__file__))))
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        env["FERROLOOP_TEST_LOOP_KIND"] = self.kind
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    def script(self, code, name=None, preamble=True):
        self._count += 1
        path = self.tmp_path / (name or f"script_{self._count}.py")
        path.write_text((_PREAMBLE if preamble else "") + textwrap.dedent(code))
        return path

    def command(self, code, *args, python_args=(), name=None):
        return [sys.executable, *python_args, str(self.script(code, name=name)), *args]

    def run(self, code, *args, python_args=(), env=None, timeout=60, input=None):
        return subprocess.run(
            self.command(code, *args, python_args=python_args),
            env=env if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            cwd=str(self.tmp_path),
        )

    def popen(self, code, *args, env=None):
        return subprocess.Popen(
            self.command(code, *args),
            env=env if env is not None else self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(self.tmp_path),
        )


@pytest.fixture
def pyrun(loop_kind, tmp_path):
    """A PythonRunner for the loop kind under test."""
    return PythonRunner(loop_kind, tmp_path)


@pytest.fixture
def ferroloop_pyrun(ferroloop_module, tmp_path):
    """A PythonRunner for ferroloop-only (entry point) tests."""
    return PythonRunner("ferroloop", tmp_path)


async def sleep_until_cancelled(state, key="cancelled"):
    """Sleeps for an hour; records `state[key] = True` if cancelled first."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        state[key] = True
        raise


@pytest.fixture
def tcp_socks():
    """A connected non-blocking TCP pair on 127.0.0.1: (client, accepted),
    i.e. (peer, the side the loop under test uses)."""
    with net_helpers.socket_pair() as pair:
        yield pair

"""Entry points: ferroloop.run / new_event_loop / Loop / EventLoopPolicy /
install, and ``python -m ferroloop``.

Tests taking ``run_func`` run for both asyncio.run and ferroloop.run; tests
taking ``ferroloop_module`` / ``ferroloop_pyrun`` are ferroloop-only (they
cover ferroloop-specific entry points).
"""

import asyncio
import os
import subprocess
import sys
import threading

import pytest
from conftest import sleep_until_cancelled


@pytest.fixture
def run_func(loop_kind):
    if loop_kind == "asyncio":
        return asyncio.run
    import ferroloop

    return ferroloop.run


def _expected_loop_type(loop_kind):
    if loop_kind == "asyncio":
        return asyncio.BaseEventLoop
    import ferroloop

    return ferroloop.Loop


# ---------------------------------------------------------------------------
# run(): asyncio.run and ferroloop.run behave the same
# ---------------------------------------------------------------------------


def test_run_returns_result_on_right_loop(run_func, loop_kind):
    async def main(x):
        await asyncio.sleep(0)
        return x, asyncio.get_running_loop()

    value, lp = run_func(main("v"))
    assert value == "v"
    assert isinstance(lp, _expected_loop_type(loop_kind))
    assert lp.is_closed()
    assert asyncio._get_running_loop() is None


@pytest.mark.parametrize("debug", [True, False])
def test_run_debug_flag(run_func, debug):
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert run_func(main(), debug=debug) is debug


def test_run_propagates_exception(run_func):
    async def main():
        raise LookupError("from main")

    with pytest.raises(LookupError, match="from main"):
        run_func(main())


def test_run_rejects_non_coroutine(run_func):
    with pytest.raises(ValueError) as excinfo:
        run_func(42)
    assert str(excinfo.value) == "a coroutine was expected, got 42"


def test_run_inside_running_loop_raises(run_func):
    async def inner():
        pass

    async def main():
        coro = inner()
        try:
            with pytest.raises(RuntimeError) as excinfo:
                run_func(coro)
        finally:
            coro.close()
        return str(excinfo.value)

    message = run_func(main())
    assert "cannot be called from a running event loop" in message


def test_run_cancels_leftover_tasks(run_func):
    state = {}

    async def main():
        asyncio.ensure_future(sleep_until_cancelled(state))
        await asyncio.sleep(0)

    run_func(main())
    assert state == {"cancelled": True}


def test_run_finalizes_async_generators(run_func):
    log = []
    keep = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            log.append("finalized")

    async def main():
        gen = agen()
        keep.append(gen)
        await gen.__anext__()

    run_func(main())
    assert log == ["finalized"]


def test_run_shuts_down_default_executor(run_func):
    async def main():
        return await asyncio.get_running_loop().run_in_executor(None, threading.current_thread)

    worker = run_func(main())
    assert worker is not threading.current_thread()
    assert not worker.is_alive()


# ---------------------------------------------------------------------------
# ferroloop module API
# ---------------------------------------------------------------------------


def test_new_event_loop_returns_loop(ferroloop_module):
    lp = ferroloop_module.new_event_loop()
    try:
        assert isinstance(lp, ferroloop_module.Loop)
        assert isinstance(lp, asyncio.AbstractEventLoop)
        assert issubclass(ferroloop_module.Loop, asyncio.AbstractEventLoop)
        assert lp.run_until_complete(asyncio.sleep(0, result="ok")) == "ok"
    finally:
        lp.close()


def test_loop_can_be_subclassed(ferroloop_module):
    class MyLoop(ferroloop_module.Loop):
        pass

    lp = MyLoop()
    try:
        assert lp.run_until_complete(asyncio.sleep(0, result=3)) == 3
    finally:
        lp.close()


def test_event_loop_policy(ferroloop_module):
    policy = ferroloop_module.EventLoopPolicy()
    assert isinstance(policy, asyncio.AbstractEventLoopPolicy)
    lp = policy.new_event_loop()
    try:
        assert isinstance(lp, ferroloop_module.Loop)
    finally:
        lp.close()


def test_install_sets_policy(ferroloop_module):
    old = asyncio.get_event_loop_policy()
    try:
        ferroloop_module.install()
        assert isinstance(asyncio.get_event_loop_policy(), ferroloop_module.EventLoopPolicy)
        lp = asyncio.new_event_loop()
        try:
            assert isinstance(lp, ferroloop_module.Loop)
        finally:
            lp.close()

        async def main():
            return asyncio.get_running_loop()

        assert isinstance(asyncio.run(main()), ferroloop_module.Loop)
    finally:
        asyncio.set_event_loop_policy(old)


# ---------------------------------------------------------------------------
# python -m ferroloop
# ---------------------------------------------------------------------------

MAIN_SCRIPT = """\
import asyncio
import sys

import ferroloop


async def main():
    loop = asyncio.get_running_loop()
    print("TYPE", type(loop))
    print("IS_FERROLOOP", isinstance(loop, ferroloop.Loop))
    print("ARGV", sys.argv)
    print("NAME", __name__)


asyncio.run(main())
lp = asyncio.new_event_loop()
print("NEW_EVENT_LOOP", isinstance(lp, ferroloop.Loop))
lp.close()
"""


def _run_module(ferroloop_pyrun, code, *args, input=None):
    script = ferroloop_pyrun.script(code, name="script.py", preamble=False)
    return subprocess.run(
        [sys.executable, "-m", "ferroloop", str(script), *args],
        env=ferroloop_pyrun.env(),
        capture_output=True,
        text=True,
        timeout=60,
        input=input,
        cwd=str(ferroloop_pyrun.tmp_path),
    )


def _lines(stdout):
    return dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)


def test_python_m_ferroloop_runs_script_on_ferroloop(ferroloop_pyrun):
    proc = _run_module(ferroloop_pyrun, MAIN_SCRIPT, "a", "--flag", "b c")
    assert proc.returncode == 0, proc.stderr
    out = _lines(proc.stdout)
    assert out["IS_FERROLOOP"] == "True", proc.stdout
    assert "ferroloop" in out["TYPE"]
    assert out["NAME"] == "__main__"
    assert out["NEW_EVENT_LOOP"] == "True"
    argv = eval(out["ARGV"])  # noqa: S307 - repr of a list of str printed by the child
    assert os.path.basename(argv[0]) == "script.py"
    assert argv[1:] == ["a", "--flag", "b c"]


def test_python_m_ferroloop_script_exit_code(ferroloop_pyrun):
    proc = _run_module(ferroloop_pyrun, "import sys\nsys.exit(3)\n")
    assert proc.returncode == 3


def test_python_m_ferroloop_script_exception(ferroloop_pyrun):
    proc = _run_module(ferroloop_pyrun, "raise ZeroDivisionError('from script')\n")
    assert proc.returncode == 1
    assert "ZeroDivisionError: from script" in proc.stderr


REPL_INPUT = (
    "import asyncio\n"
    "print('LOOP', type(asyncio.get_running_loop()).__module__.split('.')[0])\n"
    "await asyncio.sleep(0)\n"
    "print('DONE', 1 + 1)\n"
)


def test_python_m_repl(pyrun, loop_kind):
    # `python -m ferroloop` with no script is the asyncio REPL, on ferroloop;
    # the asyncio half checks the same input against `python -m asyncio`.
    proc = subprocess.run(
        [sys.executable, "-m", loop_kind],
        env=pyrun.env(),
        capture_output=True,
        text=True,
        timeout=60,
        input=REPL_INPUT,
        cwd=str(pyrun.tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.replace(">>> ", "").replace("... ", "")
    assert f"LOOP {loop_kind}" in out.splitlines(), proc.stdout
    assert "DONE 2" in out.splitlines(), proc.stdout

"""Failures inside ferroloop's own machinery surface as Python exceptions,
never as a crash. Each scenario runs in a child interpreter so that a crash
is reported as a failed test instead of taking pytest down."""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("ferroloop", reason="ferroloop-specific: its internals are patched")


def run_child(code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60,
    )


def test_debug_stack_capture_failing_while_scheduling():
    # In debug mode a handle records where it was created; if that fails,
    # call_soon must raise, and the context copy it made must be released
    # safely (it is kept out of the cycle collector until the handle owns it).
    result = run_child("""
        import gc, ferroloop
        from ferroloop import _support

        def broken():
            raise RuntimeError("no stack today")

        _support.extract_stack = broken
        loop = ferroloop.new_event_loop()
        loop.set_debug(True)
        for _ in range(100):
            try:
                loop.call_soon(print)
            except RuntimeError as exc:
                assert str(exc) == "no stack today"
            else:
                raise AssertionError("call_soon did not raise")
        gc.collect()
        loop.close()
        print("survived")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "survived"

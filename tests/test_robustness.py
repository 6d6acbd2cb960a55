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


def test_transport_methods_refuse_a_class_with_the_slot_elsewhere():
    # SocketTransport's write/close/... read the `_core` slot at the offset
    # found when they were installed; installing them on a class whose slot
    # is elsewhere (or absent, or not a slot) must raise, since their reads
    # would otherwise land outside the object. Transports keep working.
    result = run_child("""
        import asyncio, ferroloop
        from ferroloop._ferroloop import _install_transport_methods

        class Moved:
            __slots__ = ("a", "b", "c", "_core")

        class NoSlot:
            _core = None

        class NoCore:
            __slots__ = ("other",)

        for cls, error in ((Moved, RuntimeError), (NoSlot, TypeError), (NoCore, TypeError)):
            try:
                _install_transport_methods(cls)
            except error:
                pass
            else:
                raise AssertionError(f"{cls.__name__} accepted")
            assert "write" not in vars(cls)

        def answer(reader, writer):
            writer.write(b"ok")
            writer.close()  # 3.12+'s wait_closed() waits for it

        async def main():
            server = await asyncio.start_server(answer, "127.0.0.1", 0)
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            data = await reader.read(2)
            writer.close()
            server.close()
            await server.wait_closed()
            return data

        assert ferroloop.run(main()) == b"ok"
        print("survived")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "survived"

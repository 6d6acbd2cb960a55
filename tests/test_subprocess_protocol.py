"""loop.subprocess_exec / subprocess_shell with a SubprocessProtocol: the
order of the protocol's callbacks (compared with the stock loop's) and the
SubprocessTransport's methods."""

import asyncio
import contextvars
import signal
import subprocess
import sys

import pytest
from subprocess_util import SH, Recorder, run

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL


class Driver(Recorder):
    """Recorder that moves the child on, step by step, from its callbacks.

    The child blocks on stdin between its steps, so every callback's place
    in the sequence is fixed by the protocol itself, not by timing.
    """

    def __init__(self, loop, steps):
        super().__init__(loop)
        self.steps = steps  # event tuple -> action(transport)

    def _step(self, event):
        action = self.steps.get(event)
        if action is not None:
            action(self.transport)

    def pipe_data_received(self, fd, data):
        super().pipe_data_received(fd, data)
        self._step(self.events[-1])

    def pipe_connection_lost(self, fd, exc):
        super().pipe_connection_lost(fd, exc)
        self._step(self.events[-1])

    def process_exited(self):
        super().process_exited()
        self._step(self.events[-1])


def send_go(transport):
    transport.get_pipe_transport(0).write(b"go\n")


def send_go_and_close(transport):
    stdin = transport.get_pipe_transport(0)
    stdin.write(b"go\n")
    stdin.close()


def record(loop, cmd, steps, shell=False, **kwargs):
    """Runs `cmd` with a Driver and returns the recorded events. The pipes
    asyncio creates by default are DEVNULL here unless asked for."""
    kwargs = {"stdin": DEVNULL, "stdout": DEVNULL, "stderr": DEVNULL, **kwargs}
    async def main():
        make = loop.subprocess_shell if shell else loop.subprocess_exec
        args = (cmd,) if shell else cmd
        transport, proto = await make(lambda: Driver(loop, steps), *args, **kwargs)
        assert proto.events[0] == ("made",)  # connection_made before returning
        await proto.done
        transport.close()
        return proto.events

    return run(loop, main())


# Each scenario: command, steps, Popen keywords, expected events.
SCENARIOS = {
    # stdout closes, then stderr, then stdin, then the child is terminated.
    "pipes_then_signal": (
        [SH, "-c", "printf out; exec 1>&-; read x; printf err >&2; exec 2>&-;"
                   " read y; exec 0<&-; exec sleep 30"],
        {("pipe_lost", 1, None): send_go, ("pipe_lost", 2, None): send_go,
         ("pipe_lost", 0, None): lambda t: t.terminate()},
        dict(stdin=PIPE, stdout=PIPE, stderr=PIPE),
        [("made",), ("data", 1, b"out"), ("pipe_lost", 1, None), ("data", 2, b"err"),
         ("pipe_lost", 2, None), ("pipe_lost", 0, None), ("exited", -signal.SIGTERM),
         ("lost", None)],
    ),
    # The shell exits while a background job still holds stdin and stdout.
    "exit_before_pipes": (
        [SH, "-c", "exec 3<&0; printf early; read x; (read y <&3; printf late) &"],
        {("data", 1, b"early"): send_go, ("exited", 0): send_go_and_close},
        dict(stdin=PIPE, stdout=PIPE),
        [("made",), ("data", 1, b"early"), ("exited", 0), ("pipe_lost", 0, None),
         ("data", 1, b"late"), ("pipe_lost", 1, None), ("lost", None)],
    ),
    # Output first, then the pipe closes, then the exit, which waits for
    # SIGTERM (the trap runs once the current `sleep` ends). stderr=STDOUT:
    # one pipe, fd 1, which closes once both fds are closed.
    "pipes_before_exit": (
        [SH, "-c", "trap 'exit 9' TERM; printf a; printf b >&2; exec 1>&- 2>&-;"
                   " while :; do sleep 0.02; done"],
        {("pipe_lost", 1, None): lambda t: t.terminate()},
        dict(stdout=PIPE, stderr=subprocess.STDOUT),
        [("made",), ("data", 1, b"ab"), ("pipe_lost", 1, None), ("exited", 9),
         ("lost", None)],
    ),
    "no_pipes": (
        [SH, "-c", "exit 4"], {}, {},
        [("made",), ("exited", 4), ("lost", None)],
    ),
}

@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_callback_order_matches_stock_loop(loop, stock_loop, scenario):
    cmd, steps, kwargs, expected = SCENARIOS[scenario]
    reference = record(stock_loop, cmd, steps, **kwargs)
    assert reference == expected  # the scenario itself is deterministic
    assert record(loop, cmd, steps, **kwargs) == reference


def test_shell_callback_order(loop):
    steps = {("pipe_lost", 1, None): send_go_and_close}
    events = record(loop, "echo hi; exec >&-; read x; exit 6", steps, shell=True,
                    stdin=PIPE, stdout=PIPE)
    assert events == [("made",), ("data", 1, b"hi\n"), ("pipe_lost", 1, None),
                      ("pipe_lost", 0, None), ("exited", 6), ("lost", None)]


def test_large_data_arrives_complete_and_in_order(loop):
    # 4 MiB of numbered lines: chunks must be delivered whole and in order.
    events = record(loop, ["seq", "1", "500000"], {}, stdout=PIPE)
    data = [e for e in events if e[0] == "data"]
    assert len(data) == 1 and data[0][1] == 1  # merged: only fd 1 got data
    assert data[0][2] == b"".join(b"%d\n" % i for i in range(1, 500001))
    # The exit and the end of the pipe race (both loops): only their set is fixed.
    assert sorted(events[-3:-1], key=repr) == [("exited", 0), ("pipe_lost", 1, None)]
    assert events[-1] == ("lost", None)


def test_transport_identity_and_pipes(loop):
    async def main():
        transport, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "cat", stdin=PIPE, stdout=PIPE, stderr=DEVNULL)
        popen = transport.get_extra_info("subprocess")
        info = (transport.get_pid(), popen.pid, isinstance(popen, subprocess.Popen),
                transport.get_returncode())
        pipes = [transport.get_pipe_transport(fd) for fd in (0, 1, 2, 3)]
        kinds = (isinstance(pipes[0], asyncio.WriteTransport),
                 isinstance(pipes[1], asyncio.ReadTransport), pipes[2], pipes[3])
        pipes[0].close()  # cat sees EOF and exits
        await proto.done
        info += (transport.get_returncode(), transport.is_closing())
        transport.close()
        return info, kinds, transport.is_closing()

    (pid, popen_pid, is_popen, before, after, closing_before), kinds, closing = run(loop, main())
    assert pid == popen_pid and is_popen
    assert (before, after) == (None, 0)
    assert kinds == (True, True, None, None)
    assert (closing_before, closing) == (False, True)


@pytest.mark.parametrize("method, args, code", [
    ("terminate", (), -signal.SIGTERM),
    ("kill", (), -signal.SIGKILL),
    ("send_signal", (signal.SIGINT,), -signal.SIGINT),
    ("send_signal", (signal.SIGHUP,), -signal.SIGHUP),
])
def test_transport_signals_child(loop, method, args, code):
    async def main():
        transport, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "sleep", "30", stdin=DEVNULL, stdout=DEVNULL,
            stderr=DEVNULL)
        getattr(transport, method)(*args)
        await proto.done
        transport.close()
        return proto.events

    assert run(loop, main()) == [("made",), ("exited", code), ("lost", None)]


def test_close_kills_running_child_and_still_reports_exit(loop):
    async def main():
        transport, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "sleep", "30", stdin=DEVNULL, stdout=PIPE,
            stderr=DEVNULL)
        transport.close()
        await proto.done
        return proto.events, transport.get_returncode()

    events, code = run(loop, main())
    assert code == -signal.SIGKILL
    assert events == [("made",), ("pipe_lost", 1, None), ("exited", -signal.SIGKILL),
                      ("lost", None)]


def test_signal_methods_after_close_raise(loop):
    async def main():
        transport, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), SH, "-c", "exit 0", stdin=DEVNULL, stdout=DEVNULL,
            stderr=DEVNULL)
        await proto.done
        transport.close()
        errors = []
        for act in (transport.kill, transport.terminate,
                    lambda: transport.send_signal(signal.SIGTERM)):
            try:
                act()
            except Exception as exc:
                errors.append(type(exc))
        return errors

    assert run(loop, main()) == [ProcessLookupError] * 3


def test_signal_methods_between_exit_and_connection_lost_are_harmless(loop):
    # The shell has exited (and was reaped) but a background job still holds
    # stdin, so the transport is not finished: signalling must not fail, nor
    # reach another process.
    async def main():
        transport, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), SH, "-c", "exec 3<&0; (read y <&3) & exit 3",
            stdin=PIPE, stdout=DEVNULL, stderr=DEVNULL)
        while transport.get_returncode() is None:
            await asyncio.sleep(0.005)
        transport.terminate()
        transport.kill()
        transport.send_signal(signal.SIGUSR1)
        transport.get_pipe_transport(0).close()  # lets the background job end
        await proto.done
        transport.close()
        return proto.events

    assert run(loop, main()) == [("made",), ("exited", 3), ("pipe_lost", 0, None),
                                 ("lost", None)]


def test_protocol_exceptions_go_to_the_exception_handler(loop):
    # A protocol callback that raises must not break the subprocess machinery.
    class Failing(Recorder):
        def process_exited(self):
            super().process_exited()
            raise RuntimeError("from process_exited")

    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx.get("exception")))
        transport, proto = await loop.subprocess_exec(
            lambda: Failing(loop), SH, "-c", "exit 1", stdin=DEVNULL, stdout=DEVNULL,
            stderr=DEVNULL)
        await proto.done
        transport.close()
        return proto.events, [repr(e) for e in errors]

    events, errors = run(loop, main())
    assert events == [("made",), ("exited", 1), ("lost", None)]
    assert errors == [repr(RuntimeError("from process_exited"))]


def test_pause_reading_holds_the_child_back(loop):
    # While stdout's transport is paused no data may arrive, however much
    # the child has to write; after resume_reading everything arrives.
    total = 8 * 1024 * 1024

    async def main():
        transport, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), "head", "-c", str(total), "/dev/zero",
            stdin=DEVNULL, stdout=PIPE, stderr=DEVNULL)
        stdout = transport.get_pipe_transport(1)
        stdout.pause_reading()
        for _ in range(3):  # deliver what was read before the pause
            await asyncio.sleep(0)
        received_while_paused = len(proto.data(1))
        for _ in range(20):  # many loop iterations, with the child writing
            await asyncio.sleep(0.005)
        still = len(proto.data(1))
        blocked = transport.get_returncode() is None  # the pipe is full
        stdout.resume_reading()
        await proto.done
        transport.close()
        return received_while_paused, still, blocked, len(proto.data(1))

    before, after, blocked, got = run(loop, main())
    assert after == before
    assert blocked
    assert got == total


def test_exit_callbacks_run_in_the_context_of_subprocess_exec(loop, loop_kind):
    # process_exited and connection_lost run in the context subprocess_exec
    # was called in, as with 3.12+'s pidfd child watcher. On the stock 3.11
    # loop it depends on timing (docs/differences.md).
    if loop_kind == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("stock 3.11: the watcher thread's context or the caller's, by timing")
    cvar = contextvars.ContextVar("cvar", default="outer")
    seen = {}

    class Protocol(asyncio.SubprocessProtocol):
        def __init__(self):
            self.lost = loop.create_future()

        def process_exited(self):
            seen["process_exited"] = cvar.get()

        def connection_lost(self, exc):
            seen["connection_lost"] = cvar.get()
            self.lost.set_result(None)

    async def main():
        cvar.set("inner")
        transport, protocol = await loop.subprocess_exec(Protocol, SH, "-c", "exit 0")
        await protocol.lost
        transport.close()

    run(loop, main())
    assert seen == {"process_exited": "inner", "connection_lost": "inner"}

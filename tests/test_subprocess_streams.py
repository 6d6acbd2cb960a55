"""asyncio.create_subprocess_exec / create_subprocess_shell: the Process
object, its stream pipes, communicate() and wait()."""

import asyncio
import signal
import time
from asyncio.subprocess import PIPE, STDOUT

from subprocess_util import HANG_GUARD, SH, is_our_child, proc_stat, run


def test_exec_communicate_roundtrip(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        out, err = await proc.communicate(b"hello\x00world")
        return out, err, proc.returncode

    assert run(loop, main()) == (b"hello\x00world", None, 0)


def test_shell_communicate_stdout_stderr_and_exit_code(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo out; echo err >&2; exit 3", stdout=PIPE, stderr=PIPE)
        return await proc.communicate(), proc.returncode

    assert run(loop, main()) == ((b"out\n", b"err\n"), 3)


def test_wait_returns_exit_code(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(SH, "-c", "exit 7")
        assert proc.returncode is None  # nobody has waited yet
        code = await proc.wait()
        return code, proc.returncode, await proc.wait()

    assert run(loop, main()) == (7, 7, 7)


def test_pid_is_a_child_of_this_process(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE)
        try:
            return proc.pid, is_our_child(proc.pid)
        finally:
            proc.stdin.close()
            await proc.wait()

    pid, child = run(loop, main())
    assert isinstance(pid, int) and child


def test_write_drain_readline_interactively(loop):
    # One line at a time: each readline() must get the line just written,
    # so the loop has to move data both ways while the child keeps running.
    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        lines = []
        for i in range(50):
            proc.stdin.write(b"line %d\n" % i)
            await proc.stdin.drain()
            lines.append(await proc.stdout.readline())
        proc.stdin.close()
        await proc.stdin.wait_closed()
        rest = await proc.stdout.read()
        return lines, rest, await proc.wait()

    lines, rest, code = run(loop, main())
    assert lines == [b"line %d\n" % i for i in range(50)]
    assert (rest, code) == (b"", 0)


def test_read_until_eof_then_wait(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", "i=0; while [ $i -lt 1000 ]; do echo $i; i=$((i+1)); done", stdout=PIPE)
        data = await proc.stdout.read()
        return data, proc.stdout.at_eof(), await proc.wait()

    data, eof, code = run(loop, main())
    assert data.split() == [str(i).encode() for i in range(1000)]
    assert eof and code == 0


def test_stderr_to_stdout(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo one; echo two >&2; echo three", stdout=PIPE, stderr=STDOUT)
        assert proc.stderr is None
        return await proc.communicate()

    assert run(loop, main()) == (b"one\ntwo\nthree\n", None)


def test_communicate_with_stdin_pipe_and_no_input(loop):
    # communicate(b"") closes stdin after writing nothing: cat sees EOF.
    # (Only 3.12+ also closes it for input=None.)
    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        return await proc.communicate(b""), proc.returncode

    assert run(loop, main()) == ((b"", None), 0)


def test_process_exits_before_its_pipe_closes(loop):
    # The shell exits at once; a background job it started keeps stdout
    # open and writes after the exit. The exit must be noticed on its own
    # (wait() then also waits for the pipe, as asyncio documents).
    async def main():
        proc = await asyncio.create_subprocess_exec(
            # (fd 3: a background job's own stdin would be /dev/null)
            SH, "-c", "exec 3<&0; (read line <&3; echo late) & echo early",
            stdin=PIPE, stdout=PIPE)
        early = await proc.stdout.readline()
        # The shell exits while its background job still holds both pipes.
        while proc.returncode is None:
            await asyncio.sleep(0.005)
        code = proc.returncode
        proc.stdin.write(b"go\n")  # only now may the job finish
        await proc.stdin.drain()
        proc.stdin.close()
        late = await proc.stdout.read()
        return early, code, late, await proc.wait()

    assert run(loop, main()) == (b"early\n", 0, b"late\n", 0)


def test_pipes_close_before_the_process_exits(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", "echo bye; exec >&- 2>&-; read line; exit 5",
            stdin=PIPE, stdout=PIPE, stderr=PIPE)
        out = await proc.stdout.read()
        err = await proc.stderr.read()
        running = proc.returncode is None
        proc.stdin.write(b"go\n")
        return out, err, running, await proc.wait()

    assert run(loop, main()) == (b"bye\n", b"", True, 5)


def test_many_concurrent_processes(loop):
    async def one(i):
        proc = await asyncio.create_subprocess_exec(SH, "-c", f"echo {i}; exit {i % 4}",
                                                    stdout=PIPE)
        out, _ = await proc.communicate()
        return out, proc.returncode

    async def main():
        return await asyncio.gather(*(one(i) for i in range(30)))

    assert run(loop, main()) == [(b"%d\n" % i, i % 4) for i in range(30)]


def test_sequential_processes_on_one_loop(loop):
    async def main():
        codes = []
        for i in range(40):
            proc = await asyncio.create_subprocess_exec(SH, "-c", f"exit {i % 3}")
            codes.append(await proc.wait())
        return codes

    assert run(loop, main()) == [i % 3 for i in range(40)]


def test_process_methods_signal_the_child(loop):
    async def main():
        codes = []
        for act in (lambda p: p.terminate(), lambda p: p.kill(),
                    lambda p: p.send_signal(signal.SIGUSR1)):
            proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE)
            act(proc)
            codes.append(await proc.wait())
            proc.stdin.close()
        return codes

    assert run(loop, main()) == [-signal.SIGTERM, -signal.SIGKILL, -signal.SIGUSR1]


def test_shell_sees_environment_and_pid(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell("echo $$", stdout=PIPE)
        out, _ = await proc.communicate()
        return int(out), proc.pid

    shell_pid, pid = run(loop, main())
    assert shell_pid == pid  # no intermediate process between us and the shell


def test_wait_for_process_started_in_another_task(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE)
        waiters = [asyncio.ensure_future(proc.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters)
        proc.stdin.close()
        return await asyncio.gather(*waiters)

    assert run(loop, main()) == [0, 0, 0]


def test_exit_while_the_loop_is_not_running_is_noticed_later(loop):
    # The child exits between two run_until_complete() calls, when nobody
    # polls: the exit must still be seen once the loop runs again.
    async def spawn():
        proc = await asyncio.create_subprocess_exec(SH, "-c", "read x; exit 8", stdin=PIPE)
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        return proc

    proc = run(loop, spawn())
    deadline = time.monotonic() + HANG_GUARD
    # Until the child has exited: a zombie, or gone already where a watcher
    # thread reaps it (stock 3.11).
    while (proc_stat(proc.pid) or ("Z",))[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run(loop, proc.wait()) == 8

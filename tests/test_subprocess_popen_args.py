"""The subprocess.Popen keywords through create_subprocess_exec/shell:
stdin/stdout/stderr as PIPE, DEVNULL, STDOUT, file objects and raw fds;
cwd, env, executable, preexec_fn, umask, start_new_session,
process_group, pass_fds, close_fds, user/group/extra_groups; and the
keywords asyncio rejects."""

import asyncio
import os
import signal
from asyncio.subprocess import DEVNULL, PIPE

import pytest
from subprocess_util import SH, run


def exec_output(loop, *args, **kwargs):
    """(stdout, returncode) of a child started with create_subprocess_exec."""
    async def main():
        proc = await asyncio.create_subprocess_exec(*args, stdout=PIPE, **kwargs)
        out, _ = await proc.communicate()
        return out, proc.returncode

    return run(loop, main())


def test_stdin_from_file_object(loop, tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(b"from a file\n" * 1000)
    with open(src, "rb") as fh:
        assert exec_output(loop, "cat", stdin=fh) == (b"from a file\n" * 1000, 0)


def test_stdout_and_stderr_to_file_objects(loop, tmp_path):
    async def main():
        with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
            proc = await asyncio.create_subprocess_shell(
                "echo to-out; echo to-err >&2", stdout=out, stderr=err)
            return await proc.wait()

    assert run(loop, main()) == 0
    assert (tmp_path / "out").read_bytes() == b"to-out\n"
    assert (tmp_path / "err").read_bytes() == b"to-err\n"


def test_raw_fds_for_all_three_streams(loop, tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"abc")
    fd_in = os.open(src, os.O_RDONLY)
    fd_out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    fd_err = os.open(tmp_path / "err", os.O_WRONLY | os.O_CREAT)
    try:
        async def main():
            proc = await asyncio.create_subprocess_exec(
                SH, "-c", "cat; echo e >&2", stdin=fd_in, stdout=fd_out, stderr=fd_err)
            return await proc.wait()

        assert run(loop, main()) == 0
    finally:
        for fd in (fd_in, fd_out, fd_err):
            os.close(fd)
    assert (tmp_path / "out").read_bytes() == b"abc"
    assert (tmp_path / "err").read_bytes() == b"e\n"


def test_pipe_fd_as_stdout(loop):
    # An os.pipe() the caller owns: the child writes, we read the other end.
    r, w = os.pipe()
    try:
        assert exec_output(loop, SH, "-c", "echo via-fd >&2", stderr=w) == (b"", 0)
        assert os.read(r, 100) == b"via-fd\n"
    finally:
        os.close(r)
        os.close(w)


def test_devnull_everywhere(loop):
    async def main():
        # cat with stdin from /dev/null ends at once; its output is discarded.
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", "cat; echo x; echo y >&2; exit 0",
            stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
        return await proc.communicate(), proc.returncode

    assert run(loop, main()) == ((None, None), 0)


def test_cwd(loop, tmp_path):
    out, code = exec_output(loop, "pwd", cwd=tmp_path)
    assert (out.decode().strip(), code) == (os.path.realpath(tmp_path), 0)


def test_env_replaces_environment(loop):
    out, _ = exec_output(loop, "/usr/bin/env", env={"ONLY": "this"})
    assert out == b"ONLY=this\n"


def test_executable_overrides_argv0(loop):
    out, _ = exec_output(loop, "a-name-only", "-c", 'echo "$0"', executable=SH)
    assert out == b"a-name-only\n"


def test_preexec_fn_runs_in_the_child(loop):
    # The function runs after fork(), before exec: the umask it sets shows
    # in the child and does not change ours.
    ours = os.umask(0o022)
    os.umask(ours)
    out, _ = exec_output(loop, SH, "-c", "umask", preexec_fn=lambda: os.umask(0o027))
    assert out.strip() == b"0027"
    assert os.umask(ours) == ours


def test_umask_keyword(loop):
    out, _ = exec_output(loop, SH, "-c", "umask", umask=0o077)
    assert out.strip() == b"0077"


def _session_and_group(loop, **kwargs):
    """(pid, sid, pgid) of a shell started with `kwargs`."""
    async def main():
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", "cut -d' ' -f5,6 /proc/$$/stat", stdout=PIPE, **kwargs)
        out, _ = await proc.communicate()
        pgid, sid = map(int, out.split())
        return proc.pid, sid, pgid

    return run(loop, main())


def test_start_new_session(loop):
    pid, sid, pgid = _session_and_group(loop, start_new_session=True)
    assert sid == pid and pgid == pid


def test_process_group_zero(loop):
    pid, sid, pgid = _session_and_group(loop, process_group=0)
    assert pgid == pid and sid == os.getsid(0)


# The shell writes through /dev/fd/N: dash's `>&N` only takes one digit.
def test_pass_fds(loop):
    r, w = os.pipe()  # not inheritable (PEP 446): only pass_fds hands it over
    try:
        out, code = exec_output(loop, SH, "-c", f"echo passed >/dev/fd/{w}", pass_fds=(w,))
        assert code == 0
        assert os.read(r, 100) == b"passed\n"
    finally:
        os.close(r)
        os.close(w)


def test_close_fds_true_closes_inheritable_fds(loop):
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        # The shell cannot write to an fd it does not have: it fails.
        _, code = exec_output(loop, SH, "-c", f"echo leaked >/dev/fd/{w}", close_fds=True,
                              stderr=DEVNULL)
        assert code != 0
    finally:
        os.close(r)
        os.close(w)


def test_close_fds_false_keeps_inheritable_fds(loop):
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        _, code = exec_output(loop, SH, "-c", f"echo kept >/dev/fd/{w}", close_fds=False)
        assert code == 0
        assert os.read(r, 100) == b"kept\n"
    finally:
        os.close(r)
        os.close(w)


def test_close_fds_false_leaks_none_of_the_loops_own_fds(loop):
    # With close_fds=False a child inherits every inheritable fd, so the
    # loop's own fds (poller, wake-up, a running child's pidfd, the pipes
    # of other children) must all be close-on-exec.
    async def main():
        other = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        other_pipes = {other.stdin.transport.get_extra_info("pipe").fileno(),
                       other.stdout._transport.get_extra_info("pipe").fileno()}
        proc = await asyncio.create_subprocess_exec(
            SH, "-c", "ls /proc/$$/fd", stdout=PIPE, close_fds=False)
        out, _ = await proc.communicate()
        leaked = {}
        for fd in {int(fd) for fd in out.split()} - {0, 1, 2}:
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue  # not open here: the child's own (ls's directory)
            if target.startswith(("anon_inode:", "socket:")) or fd in other_pipes:
                leaked[fd] = target
        other.stdin.close()
        await other.wait()
        return leaked

    assert run(loop, main()) == {}


def test_user_and_group_of_our_own(loop):
    # Switching to the ids we already have needs no privilege.
    out, code = exec_output(loop, "id", "-u", user=os.getuid(), group=os.getgid())
    assert (int(out), code) == (os.getuid(), 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_user_group_extra_groups_switch(loop):
    out, code = exec_output(loop, SH, "-c", "id -u; id -g; id -G",
                            user="nobody", group=65534, extra_groups=[65534])
    assert code == 0
    assert out.split() == [b"65534", b"65534", b"65534"]


def _ignored_signals(loop, **kwargs):
    """The set of signals a child starts with ignored (SigIgn in /proc)."""
    out, _ = exec_output(loop, "grep", "SigIgn", "/proc/self/status", **kwargs)
    mask = int(out.split()[1], 16)
    return {sig for sig in range(1, 65) if mask & (1 << (sig - 1))}


def test_restore_signals(loop):
    # Python ignores SIGPIPE (and SIGXFSZ); Popen restores them to the
    # default in the child unless restore_signals=False.
    assert signal.SIGPIPE not in _ignored_signals(loop)
    assert signal.SIGPIPE in _ignored_signals(loop, restore_signals=False)


@pytest.mark.parametrize("kwargs", [
    {"bufsize": 1}, {"text": True}, {"encoding": "utf-8"}, {"shell": True},
])
def test_rejected_keywords_same_error_as_stock(loop, stock_loop, kwargs):
    def error(lp):
        async def main():
            await asyncio.create_subprocess_exec("true", **kwargs)

        with pytest.raises(Exception) as info:
            run(lp, main())
        return type(info.value), str(info.value)

    expected = error(stock_loop)
    assert expected[0] is ValueError
    assert error(loop) == expected


def test_shell_rejects_a_list_like_stock(loop, stock_loop):
    def error(lp):
        with pytest.raises(Exception) as info:
            run(lp, lp.subprocess_shell(asyncio.SubprocessProtocol, ["echo", "x"]))
        return type(info.value), str(info.value)

    expected = error(stock_loop)
    assert expected[0] is ValueError
    assert error(loop) == expected

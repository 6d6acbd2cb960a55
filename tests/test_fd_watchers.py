"""File-descriptor watchers: add_reader/remove_reader/add_writer/remove_writer."""

import errno
import os
import socket

import pytest


def run_once(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def run_with_watchdog(loop, seconds=10.0):
    fired = []
    handle = loop.call_later(seconds, lambda: (fired.append(True), loop.stop()))
    loop.run_forever()
    handle.cancel()
    return bool(fired)


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture
def sockpair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


class FileLike:
    def __init__(self, fd):
        self._fd = fd

    def fileno(self):
        return self._fd


# ---------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------


def test_reader_fires_when_data_available(loop, pipe):
    r, w = pipe
    got = []

    def on_readable(tag):
        got.append((tag, os.read(r, 100)))
        loop.stop()

    loop.add_reader(r, on_readable, "tag")
    loop.call_later(0.01, os.write, w, b"hello")
    assert not run_with_watchdog(loop)
    assert got == [("tag", b"hello")]
    assert loop.remove_reader(r) is True


def test_reader_does_not_fire_without_data(loop, pipe):
    r, w = pipe
    calls = []
    loop.add_reader(r, calls.append, 1)
    run_once(loop)
    run_once(loop)
    assert calls == []
    assert loop.remove_reader(r) is True


def test_reader_is_level_triggered(loop, pipe):
    # Data that is not read keeps the fd readable: the callback fires again
    # on every loop iteration.
    r, w = pipe
    os.write(w, b"x")
    calls = []
    loop.add_reader(r, lambda: calls.append(1))
    for expected in (1, 2, 3):
        run_once(loop)
        assert len(calls) == expected
    assert loop.remove_reader(r) is True
    run_once(loop)
    assert len(calls) == 3


def test_reader_sees_eof(loop, pipe):
    r, w = pipe
    got = []

    def on_readable():
        got.append(os.read(r, 100))
        if got[-1] == b"":
            loop.stop()

    loop.add_reader(r, on_readable)
    os.write(w, b"data")
    os.close(w)
    assert not run_with_watchdog(loop)
    assert got[-1] == b"" and b"".join(got) == b"data"
    loop.remove_reader(r)


def test_remove_reader_return_values(loop, pipe):
    r, w = pipe
    assert loop.remove_reader(r) is False
    loop.add_reader(r, pytest.fail, "removed reader fired")
    assert loop.remove_reader(r) is True
    assert loop.remove_reader(r) is False
    # and a removed reader does not fire
    os.write(w, b"x")
    run_once(loop)


def test_reader_removed_by_earlier_callback_in_same_iteration(loop, pipe):
    r, w = pipe
    os.write(w, b"x")
    calls = []
    loop.add_reader(r, calls.append, "reader")
    loop.call_soon(loop.remove_reader, r)
    run_once(loop)
    run_once(loop)
    assert calls == []


def test_replacing_reader(loop, pipe):
    r, w = pipe
    calls = []
    loop.add_reader(r, calls.append, "old")
    loop.add_reader(r, calls.append, "new")
    os.write(w, b"x")
    run_once(loop)
    assert calls == ["new"]
    assert loop.remove_reader(r) is True
    assert loop.remove_reader(r) is False


def test_reader_can_remove_itself(loop, pipe):
    r, w = pipe
    os.write(w, b"x")
    calls = []

    def once():
        calls.append(1)
        loop.remove_reader(r)

    loop.add_reader(r, once)
    for _ in range(3):
        run_once(loop)
    assert calls == [1]


def test_reader_on_socket_object_and_removal_by_fd(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_reader(a, lambda: (got.append(a.recv(100)), loop.stop()))
    b.send(b"ping")
    assert not run_with_watchdog(loop)
    assert got == [b"ping"]
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a) is False


def test_reader_on_object_with_fileno(loop, pipe):
    r, w = pipe
    obj = FileLike(r)
    calls = []
    loop.add_reader(obj, lambda: (calls.append(os.read(r, 10)), loop.stop()))
    os.write(w, b"obj")
    assert not run_with_watchdog(loop)
    assert calls == [b"obj"]
    assert loop.remove_reader(obj) is True


def test_many_readers(loop):
    pipes = [os.pipe() for _ in range(20)]
    try:
        got = set()

        def on_readable(i, r):
            os.read(r, 10)
            got.add(i)
            loop.remove_reader(r)
            if len(got) == len(pipes):
                loop.stop()

        for i, (r, w) in enumerate(pipes):
            loop.add_reader(r, on_readable, i, r)
        for r, w in reversed(pipes):
            os.write(w, b"x")
        assert not run_with_watchdog(loop)
        assert got == set(range(len(pipes)))
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)


# ---------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------


def test_writer_fires_when_writable(loop, sockpair):
    a, b = sockpair
    calls = []
    loop.add_writer(a, lambda tag: (calls.append(tag), loop.stop()), "w")
    assert not run_with_watchdog(loop)
    assert calls == ["w"]
    assert loop.remove_writer(a) is True


def test_writer_is_level_triggered(loop, sockpair):
    a, b = sockpair
    calls = []
    loop.add_writer(a.fileno(), lambda: calls.append(1))
    for expected in (1, 2, 3):
        run_once(loop)
        assert len(calls) == expected
    assert loop.remove_writer(a.fileno()) is True


def test_remove_writer_return_values(loop, sockpair):
    a, b = sockpair
    assert loop.remove_writer(a) is False
    loop.add_writer(a, lambda: None)
    assert loop.remove_writer(a) is True
    assert loop.remove_writer(a) is False


def test_writer_waits_for_buffer_space(loop, sockpair):
    a, b = sockpair
    a.setblocking(False)
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    calls = []
    loop.add_writer(a, lambda: (calls.append(1), loop.stop()))
    run_once(loop)
    assert calls == []  # full send buffer: not writable

    def drain():
        b.setblocking(False)
        try:
            while True:
                b.recv(1 << 20)
        except BlockingIOError:
            pass

    loop.call_soon(drain)
    assert not run_with_watchdog(loop)
    assert calls == [1]
    loop.remove_writer(a)


def test_reader_and_writer_on_same_fd(loop, sockpair):
    a, b = sockpair
    events = []
    loop.add_reader(a, events.append, "read")
    loop.add_writer(a, events.append, "write")
    b.send(b"x")
    run_once(loop)
    assert sorted(events) == ["read", "write"]

    events.clear()
    assert loop.remove_writer(a) is True
    run_once(loop)
    assert events == ["read"]  # the reader is still registered

    events.clear()
    assert loop.remove_reader(a) is True
    loop.add_writer(a, events.append, "write")
    run_once(loop)
    assert events == ["write"]
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is True


# ---------------------------------------------------------------------------
# fd state
# ---------------------------------------------------------------------------


def test_blocking_mode_is_unchanged(loop, pipe):
    r, w = pipe
    for blocking in (True, False):
        os.set_blocking(r, blocking)
        os.set_blocking(w, blocking)
        loop.add_reader(r, lambda: None)
        loop.add_writer(w, lambda: None)
        assert os.get_blocking(r) is blocking
        assert os.get_blocking(w) is blocking
        run_once(loop)
        loop.remove_reader(r)
        loop.remove_writer(w)
        assert os.get_blocking(r) is blocking
        assert os.get_blocking(w) is blocking


def test_socket_timeout_is_unchanged(loop, sockpair):
    a, b = sockpair
    a.settimeout(5.0)
    loop.add_reader(a, lambda: None)
    loop.remove_reader(a)
    assert a.gettimeout() == 5.0


def test_fd_can_be_reused_after_close(loop):
    r, w = os.pipe()
    loop.add_reader(r, lambda: None)
    assert loop.remove_reader(r) is True
    os.close(r)
    os.close(w)
    r2, w2 = os.pipe()
    try:
        got = []
        loop.add_reader(r2, lambda: (got.append(os.read(r2, 5)), loop.stop()))
        os.write(w2, b"again")
        assert not run_with_watchdog(loop)
        assert got == [b"again"]
        loop.remove_reader(r2)
    finally:
        os.close(r2)
        os.close(w2)


# ---------------------------------------------------------------------------
# bad input / closed loop
# ---------------------------------------------------------------------------

BAD_FDS = {
    "str": "x",
    "none": None,
    "float": 1.5,
    "negative": -1,
    "fileno-negative": FileLike(-1),
    "fileno-none": FileLike(None),
}


def test_add_with_bad_fd_raises_like_stock(loop, stock_loop, check_same_error):
    for method in ("add_reader", "add_writer"):
        for name, fd in BAD_FDS.items():
            exc = check_same_error(lambda lp: getattr(lp, method)(fd, print), loop, stock_loop)
            assert isinstance(exc, (ValueError, TypeError)), (method, name)


def test_remove_with_bad_fd_raises_like_stock(loop, stock_loop, check_same_error):
    for method in ("remove_reader", "remove_writer"):
        for name in ("str", "none", "float"):
            fd = BAD_FDS[name]
            exc = check_same_error(lambda lp: getattr(lp, method)(fd), loop, stock_loop)
            assert isinstance(exc, ValueError), (method, name)


def test_bad_fd_messages(loop):
    with pytest.raises(ValueError) as excinfo:
        loop.add_reader("x", print)
    assert str(excinfo.value) == "Invalid file object: 'x'"
    with pytest.raises(ValueError) as excinfo:
        loop.add_reader(-1, print)
    assert str(excinfo.value) == "Invalid file descriptor: -1"


def test_add_closed_fd_raises_ebadf(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    for method in ("add_reader", "add_writer"):
        with pytest.raises(OSError) as excinfo:
            getattr(loop, method)(r, print)
        assert excinfo.value.errno == errno.EBADF, method
        # A failed registration leaves nothing behind.
        assert loop.remove_reader(r) is False
        assert loop.remove_writer(r) is False


def test_add_on_closed_loop_raises(loop, pipe):
    loop.close()
    for method in ("add_reader", "add_writer"):
        with pytest.raises(RuntimeError) as excinfo:
            getattr(loop, method)(pipe[0], print)
        assert str(excinfo.value) == "Event loop is closed", method


def test_remove_on_closed_loop_returns_false(loop, pipe):
    loop.add_reader(pipe[0], print)
    loop.add_writer(pipe[1], print)
    loop.close()
    for method in ("remove_reader", "remove_writer"):
        assert getattr(loop, method)(pipe[0]) is False, method
        assert getattr(loop, method)(pipe[1]) is False, method

"""Parent side: runs one test module in child processes, surviving hangs/crashes.

The child (child.py) streams JSON events over a pipe.  The supervisor watches
the clock: a test that runs longer than the timeout is recorded as ``hang``,
the child's whole process group is killed and a fresh child resumes the module
after the tests already reported.  A child that dies mid-test is recorded as
``crash`` for that test and likewise resumed.
"""

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "child.py")

# The child dumps every thread's stack (faulthandler) when a test reaches the
# timeout; it is killed this many seconds later, once the dump is written.
HANG_GRACE = 2.0
# After its last test the child may still be shutting down (atexit, threads).
EXIT_GRACE = 30.0
EXCERPT_LINES = 40  # of a stack dump: enough for a few threads
SIGDUMP = signal.SIGRTMIN + 5  # child.py: faulthandler.register(SIGDUMP)

# Children run in their own sessions (so a hang can be killed with all its
# subprocesses), hence out of reach of a Ctrl-C or of CI killing our process
# group: run.py calls terminate_all() on SIGINT/SIGTERM.
_live = set()
_live_lock = threading.Lock()
_stopping = threading.Event()


def terminate_all():
    _stopping.set()
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _kill_group(proc, wait=False)



def run_workers(worker, jobs):
    """Runs `worker()` on `jobs` threads until every one returns. Ctrl-C
    kills the running test processes and exits with status 130."""
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            # A timed join, so that the main thread sees KeyboardInterrupt.
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        terminate_all()
        print("interrupted: killed the running test processes", file=sys.stderr)
        sys.exit(130)

class ModuleRun:
    def __init__(self, module, *, target, timeout, log_path, suite_dir=None,
                 only=None, skip=None, on_event=None, child=CHILD):
        self.module = module
        self.child = child  # the child script (tests/uvloop_suite has its own)
        self.target = target
        self.timeout = timeout
        self.log_path = log_path
        self.suite_dir = suite_dir
        self.only = only or []
        self.skip = skip or []
        self.on_event = on_event or (lambda module, ev: None)
        self.results = {}          # test id -> {"outcome", "counted", "time", "detail"}
        self.skipped_module = None  # reason, if the module skips itself
        self.attempts = 0
        self.duration = 0.0

    def run(self):
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"cpyconf-{self.module}-") as cwd:
            while not _stopping.is_set():
                before = len(self.results)
                complete = self._attempt(cwd)
                # Stop when the module is finished, or when a fresh child got
                # nowhere (e.g. it keeps dying at import or in a fixture).
                if complete or len(self.results) == before:
                    break
        self.duration = time.monotonic() - t0
        return self

    # -- one child process ------------------------------------------------

    def _record(self, test_id, outcome, counted, detail="", duration=0.0):
        if test_id in self.results:
            return  # a fixture error repeated by a resumed child
        rec = {"outcome": outcome, "counted": counted, "time": duration, "detail": detail}
        self.results[test_id] = rec
        self.on_event(self.module, dict(rec, ev="end", test=test_id))

    def _attempt(self, cwd):
        """Run a child until it finishes, hangs or dies; True if finished."""
        self.attempts += 1
        read_fd, write_fd = os.pipe()
        cfg = {"module": self.module, "target": self.target, "timeout": self.timeout,
               "event_fd": write_fd, "suite_dir": self.suite_dir,
               "done": sorted(self.results), "only": self.only, "skip": self.skip}
        cfg_path = os.path.join(cwd, "harness-config.json")
        with open(cfg_path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        with open(self.log_path, "ab") as log:
            log.write(f"\n##### harness: child attempt {self.attempts} "
                      f"({len(self.results)} tests already done)\n".encode())
            log.flush()
            with _live_lock:
                if _stopping.is_set():
                    os.close(write_fd)
                    os.close(read_fd)
                    return True
                proc = subprocess.Popen(
                    [sys.executable, "-X", "faulthandler", self.child, cfg_path],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    pass_fds=[write_fd], cwd=cwd, env=env,
                    # Own process group: a hang kills the tests' subprocesses too.
                    start_new_session=True)
                _live.add(proc)
        os.close(write_fd)
        try:
            return self._watch(proc, read_fd)
        finally:
            os.close(read_fd)
            _kill_group(proc)
            with _live_lock:
                _live.discard(proc)

    def _watch(self, proc, read_fd):
        st = _WatchState()
        while True:
            now = time.monotonic()
            if st.finished_at is not None:
                deadline = st.finished_at + EXIT_GRACE
            elif st.current is not None:
                deadline = st.current[1] + self.timeout + HANG_GRACE
            else:  # between tests: fixtures, imports; same allowance
                deadline = st.last_activity + self.timeout + HANG_GRACE
            if not st.eof:
                wait = max(0.0, min(1.0, deadline - now))
                if select.select([read_fd], [], [], wait)[0]:
                    self._read(read_fd, st)
                    continue
            else:
                time.sleep(0.05)
            rc = proc.poll()
            if rc is not None:
                # Pick up whatever it wrote just before exiting.
                while not st.eof and select.select([read_fd], [], [], 0)[0]:
                    self._read(read_fd, st)
                return self._exited(rc, st.current, st.finished_at is not None)
            if time.monotonic() >= deadline:
                return self._timed_out(proc, st.current, st.finished_at is not None)

    def _read(self, read_fd, st):
        data = os.read(read_fd, 1 << 16)
        st.eof = not data
        *lines, st.buf = (st.buf + data).split(b"\n")
        for line in lines:
            try:
                ev = json.loads(line)
            except ValueError:  # not ours (e.g. a forked test process)
                continue
            st.last_activity = time.monotonic()
            kind = ev["ev"]
            if kind == "start":
                st.current = (ev["test"], st.last_activity, ev.get("log_offset", 0))
                self.on_event(self.module, ev)
            elif kind == "end":
                st.current = None
                self._record(ev["test"], ev["outcome"], ev["counted"],
                             ev.get("detail", ""), ev.get("time", 0.0))
            elif kind == "skipmod":
                self.skipped_module = ev["reason"]
            elif kind == "done":
                st.finished_at = st.last_activity

    def _exited(self, rc, current, finished):
        if finished:
            if rc != 0:
                self._record(f"{self.module}.<shutdown>", "crash", True,
                             f"child exited with {_describe_rc(rc)} after its last test\n"
                             + self._log_excerpt(0, "Fatal Python error"))
            return True
        detail = f"child died with {_describe_rc(rc)}\n"
        if current is not None:
            test_id, _, offset = current
        else:
            test_id, offset = f"{self.module}.<between-tests>", 0
        self._record(test_id, "crash", True,
                     detail + self._log_excerpt(offset, "Fatal Python error"))
        return False

    def _timed_out(self, proc, current, finished):
        if current is not None:
            # The child's own faulthandler timer has dumped the stacks already.
            _kill_group(proc)
            test_id, started, offset = current
            self._record(test_id, "hang", True,
                         f"no result after {time.monotonic() - started:.0f}s\n"
                         + self._log_excerpt(offset, "Timeout ("))
            return False
        # Outside any test: ask for a stack dump (child.py registers SIGDUMP).
        offset = os.path.getsize(self.log_path)
        marker = "##### harness: stalled outside any test, stacks:"
        with open(self.log_path, "a") as log:
            log.write(f"\n{marker}\n")
        try:
            os.kill(proc.pid, SIGDUMP)
            time.sleep(1.0)
        except ProcessLookupError:
            pass
        _kill_group(proc)
        if finished:
            self._record(f"{self.module}.<shutdown>", "hang", True,
                         f"child did not exit within {EXIT_GRACE:.0f}s after its last test\n"
                         + self._log_excerpt(offset, marker))
            return True
        self._record(f"{self.module}.<between-tests>", "hang", True,
                     "no progress outside any test (fixture, import?)\n"
                     + self._log_excerpt(offset, marker))
        return False

    def _log_excerpt(self, offset, marker):
        """The lines after `marker` (a faulthandler header) in the log since
        `offset`, innermost frames first; else the log's last lines."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        pos = text.rfind(marker) if marker == "Fatal Python error" else text.find(marker)
        if pos >= 0:
            lines = text[pos:].splitlines()[:EXCERPT_LINES]
        else:
            lines = text.rstrip().splitlines()[-EXCERPT_LINES:]
        return "\n".join(lines)


class _WatchState:
    def __init__(self):
        self.buf = b""
        self.current = None        # (test id, start time, log offset)
        self.last_activity = time.monotonic()
        self.finished_at = None    # when the "done" event arrived
        self.eof = False


def _describe_rc(rc):
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"


def _kill_group(proc, wait=True):
    """Kill the child's process group (the child and anything its tests left
    running), then reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if not wait:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass

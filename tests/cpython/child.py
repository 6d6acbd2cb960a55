"""Child side of the CPython conformance harness: runs ONE test module.

Started by run.py as ``python -X faulthandler child.py CONFIG.json``.  It
installs the target loop, rewires the test classes that pick their own loop,
runs the module with unittest and streams one JSON object per line to the
file descriptor named in the config (not stdout/stderr: the tests print there,
and both go to the module's log file).

Events written (key "ev"):
  hello     {pid, python, target}
  skipmod   {reason}                       module raised SkipTest on import
  start     {test, log_offset}
  end       {test, outcome, counted, time, detail}
  done      {}
outcome is one of: pass, fail, error, skip, expected-failure,
unexpected-success, n/a (duplicate selector flavour, not run).
"""

import faulthandler
import json
import os
import re
import signal
import sys
import time
import traceback
import unittest

import targets

CPYTHON_PACKAGE = "test.test_asyncio"
# Selector flavours of one mixin; on Linux only the epoll one is kept.
FLAVOUR = re.compile(r"^(EPoll|Poll|Select|Kqueue)(?=[A-Z])")
EXCERPT_LINES = 15
EXCERPT_CHARS = 2000


class Events:
    def __init__(self, fd):
        os.set_inheritable(fd, False)  # keep it out of test subprocesses
        self._file = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def emit(self, ev, **fields):
        fields["ev"] = ev
        self._file.write(json.dumps(fields) + "\n")
        self._file.flush()


def excerpt(text):
    lines = text.rstrip().splitlines()[-EXCERPT_LINES:]
    return "\n".join(lines)[-EXCERPT_CHARS:]


def short_id(test_id, package):
    prefix = package + "." if package else ""
    return test_id[len(prefix):] if test_id.startswith(prefix) else test_id


def fixture_id(description, package):
    """'setUpClass (test.test_asyncio.test_x.Cls)' -> 'test_x.Cls.setUpClass'."""
    m = re.match(r"^(\w+) \((.*)\)$", description)
    if not m:
        return short_id(description, package)
    return short_id(m.group(2), package) + "." + m.group(1)


# Worst outcome wins when a test reports several (subtests, tearDown errors).
RANK = {"pass": 0, "expected-failure": 0, "skip": 1, "unexpected-success": 2,
        "fail": 3, "error": 4}


class StreamingResult(unittest.TestResult):
    """Streams per-test events and tracks whether a target loop was created."""

    def __init__(self, events, package, timeout):
        super().__init__()
        self.events = events
        self.package = package
        self.timeout = timeout
        self.current = None  # the TestCase being reported

    def _id(self, test):
        return short_id(test.id(), self.package)

    def _begin(self, test):
        self.current = test
        self.outcome, self.detail = None, ""
        self.loops_before = targets.created
        self.t0 = time.monotonic()

    def startTest(self, test):
        super().startTest(test)
        self._begin(test)
        # Where this test's output starts in the log (stdout and stderr are
        # the log file), so the parent can quote a crash/hang dump from it.
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            log_offset = os.fstat(2).st_size
        except OSError:
            log_offset = 0
        self.events.emit("start", test=self._id(test), log_offset=log_offset)
        # Dump all threads' stacks into the log just before the parent gives
        # up on this test (the parent kills us a little after `timeout`).
        faulthandler.dump_traceback_later(self.timeout, exit=False)

    def stopTest(self, test):
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)
        if self.current is not test:  # see _set()
            self._begin(test)
        self.events.emit(
            "end", test=self._id(test), outcome=self.outcome or "pass",
            counted=targets.created != self.loops_before,
            time=round(time.monotonic() - self.t0, 3), detail=self.detail)
        self.current = None

    def _set(self, test, outcome, err=None, reason="", subtest=None):
        if not isinstance(test, unittest.TestCase):
            # Class/module fixture (_ErrorHolder): reported as its own entry.
            # Counted, since a broken fixture hides every test behind it.
            detail = excerpt(self._exc_info_to_string(err, test)) if err else reason
            if err:
                self._log(fixture_id(test.description, self.package), err, test)
            self.events.emit("end", test=fixture_id(test.description, self.package),
                             outcome=outcome, counted=True, time=0.0, detail=detail)
            return
        if self.current is not test:
            # Python 3.12.0-3.12.1 report skipped tests with addSkip() and
            # stopTest() but no startTest().
            self._begin(test)
        if self.outcome is not None and RANK[outcome] <= RANK[self.outcome]:
            return
        self.outcome = outcome
        if err is not None:
            where = f"in subTest {subtest._subDescription()}\n" if subtest else ""
            self.detail = where + excerpt(self._exc_info_to_string(err, test))
            self._log(self._id(test), err, test)
        else:
            self.detail = reason

    def _log(self, name, err, test):
        sys.stderr.write(f"\n=== {name}\n{self._exc_info_to_string(err, test)}\n")
        sys.stderr.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail", err)

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "error", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skip", reason=str(reason)[:300])

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "expected-failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "unexpected-success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            self._set(test, kind, err, subtest=subtest)


def test_classes(module):
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, unittest.TestCase)]


def rewire(module, target):
    """Point the tests that build their own loop at the target.

    * ``create_event_loop`` (test_events, test_sendfile, test_sock_lowlevel)
      exists once per selector flavour; all flavours get the target, and all
      but the EPoll one are marked n/a since they would re-run the same tests.
    * ``new_loop`` on FunctionalTestCaseMixin subclasses (test_buffered_proto,
      test_server, test_sslproto) returns asyncio.SelectorEventLoop().
      Other ``new_loop`` methods are left alone: test_runners' builds a mocked
      BaseEventLoop on purpose, test_ssl's already goes through the policy.
    Returns the set of n/a classes.
    """
    try:
        from test.test_asyncio.functional import FunctionalTestCaseMixin
    except ImportError:  # suite-dir mode outside CPython's tree
        FunctionalTestCaseMixin = ()

    def target_loop(self):
        return target.new_loop()

    groups = {}
    for cls in test_classes(module):
        if hasattr(cls, "create_event_loop"):
            cls.create_event_loop = target_loop
        elif FunctionalTestCaseMixin and issubclass(cls, FunctionalTestCaseMixin):
            cls.new_loop = target_loop
        else:
            continue
        groups.setdefault(cls.__bases__, []).append(cls)

    not_applicable = set()
    for classes in groups.values():
        flavours = {cls: FLAVOUR.match(cls.__name__) for cls in classes}
        if any(m and m.group(1) == "EPoll" for m in flavours.values()):
            not_applicable.update(cls for cls, m in flavours.items()
                                  if m and m.group(1) != "EPoll")
    return not_applicable


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


def matches(test_id, prefixes):
    return any(test_id == p or test_id.startswith(p + ".") for p in prefixes)


def die_with_parent():
    """Linux: get SIGKILL if run.py dies (e.g. killed by a CI timeout), so an
    orphaned hanging child cannot linger.  Best effort."""
    try:
        import ctypes
        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError, ImportError):
        pass


def report_setup_failure(events, fatal_id, exc):
    """Reports a test module whose import or set-up raised `exc` (call it
    while handling `exc`): unittest.SkipTest skips the module, anything else
    counts as one error named `fatal_id`. Ends the child's events."""
    if isinstance(exc, unittest.SkipTest):
        events.emit("skipmod", reason=str(exc))
    else:
        text = traceback.format_exc()
        sys.stderr.write(f"\n=== {fatal_id}\n{text}\n")
        events.emit("end", test=fatal_id, outcome="error", counted=True,
                    time=0.0, detail=excerpt(text))
    events.emit("done")


def main():
    die_with_parent()
    # run.py sends this before killing a child that stalls outside any test
    # (import, fixtures, shutdown), where the per-test timer is not armed.
    faulthandler.register(signal.SIGRTMIN + 5, all_threads=True)
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    events = Events(cfg["event_fd"])
    events.emit("hello", pid=os.getpid(), python=sys.version.split()[0],
                target=cfg["target"])

    suite_dir = cfg.get("suite_dir")
    package = None if suite_dir else CPYTHON_PACKAGE
    if suite_dir:
        sys.path.insert(0, suite_dir)
    name = cfg["module"]
    fatal_id = name + ".<setup>"
    try:
        target = targets.load(cfg["target"])
        target.install()
        module = __import__(f"{package}.{name}" if package else name,
                            fromlist=["_"])
    except BaseException as exc:
        report_setup_failure(events, fatal_id, exc)
        return

    not_applicable = rewire(module, target)
    done = set(cfg.get("done", []))
    only = cfg.get("only") or []
    skip = cfg.get("skip") or []
    to_run = []
    for test in flatten(unittest.defaultTestLoader.loadTestsFromModule(module)):
        tid = short_id(test.id(), package)
        if tid in done or (only and not matches(tid, only)):
            continue
        if type(test) in not_applicable:
            events.emit("end", test=tid, outcome="n/a", counted=False, time=0.0,
                        detail="duplicate selector flavour of the EPoll class")
        elif matches(tid, skip):
            events.emit("end", test=tid, outcome="skip", counted=False, time=0.0,
                        detail="[skip] in expected-failures list")
        else:
            to_run.append(test)

    result = StreamingResult(events, package, cfg["timeout"])
    unittest.TestSuite(to_run).run(result)
    events.emit("done")


if __name__ == "__main__":
    main()

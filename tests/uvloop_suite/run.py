#!/usr/bin/env python3
"""Run uvloop's own test suite (its stock-asyncio flavour) against ferroloop.

    python tests/uvloop_suite/run.py [options] [MODULE[.Class[.test]] ...]

uvloop's tests pair ``Test_UV_X(_TestX, UVTestCase)`` with
``Test_AIO_X(_TestX, AIOTestCase)``; the AIO classes pass on the stock loop.
For every AIO class the child makes a ferroloop twin, ``Test_Ferro_X``, on
the same mixin.  Each module runs twice, in its own processes: once with the
twins (ferroloop) and once with the AIO classes (the stock loop), so a test
that fails on stock asyncio as well is not charged to ferroloop.  The sdist
(pinned version) is downloaded with pip into a cache on first use (sdist.py).

Per ferroloop test the result is one of:
  passed     passed
  failed     failed/errored/hung/crashed, not listed, and passed on the stock
             loop or failed there differently                                -> fails
  stock too  failed the same way on the stock loop (not ferroloop's bug)
  xfail      failed and listed in expected_failures.txt
  xpass      listed but passed: "now passing, remove it"                      -> fails
  skipped    skipped by the test, or [skip] in the list
Exit status: 0 if the run agrees with the list, 1 if not, 2 on usage errors.
"""

import argparse
import importlib.util
import os
import queue
import re
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "cpython"))
import sdist  # noqa: E402
from expected import ExpectedList, FormatError  # noqa: E402  (tests/cpython)
from selection import select, usage_error  # noqa: E402
from supervisor import ModuleRun, run_workers  # noqa: E402

CHILD = os.path.join(HERE, "child.py")
DEFAULT_EXPECTED = os.path.join(HERE, "expected_failures.txt")
FAILING = {"fail", "error", "hang", "crash", "unexpected-success"}
COLUMNS = ["passed", "failed", "stock too", "xfail", "xpass", "skipped"]
MINOR = sys.version_info[1]
# The loops' class names, as they appear in messages ("X.method() got ...").
LOOP_CLASS_NAMES = re.compile(r"\b(_UnixSelectorEventLoop|BaseSelectorEventLoop|BaseEventLoop"
                              r"|LoopBase|Loop)\b")
# Longest first, so the workers finish together.
SLOW_MODULES = ["test_tcp", "test_process", "test_signals", "test_unix", "test_context"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("modules", nargs="*", metavar="MODULE",
                   help="uvloop test modules (or module.Class[.test] prefixes, "
                        "ferroloop class names) to run; default all")
    p.add_argument("-j", "--jobs", type=int, default=4, help="processes at once (default 4)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds per test before it counts as a hang (default 60)")
    p.add_argument("--no-stock", action="store_true",
                   help="run only the ferroloop twins (every failure is then charged)")
    p.add_argument("--uvloop-branches", action="store_true",
                   help="exploratory: both loops take the tests' uvloop branches "
                        "(implementation == 'uvloop'); the expected list does not apply")
    p.add_argument("--expected", default=DEFAULT_EXPECTED,
                   help="expected-failures list (default: %(default)s)")
    p.add_argument("--cache-dir", help="where the sdist is kept (default: "
                   "$FERROLOOP_UVLOOP_CACHE, else ~/.cache/ferroloop/uvloop-VERSION)")
    p.add_argument("--log-dir", help="per-module child logs (default: a new temp dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every failing test")
    return p.parse_args(argv)


def discover(tests_dir):
    """Modules with AIO classes (the others only test uvloop itself)."""
    found = []
    for f in sorted(os.listdir(tests_dir)):
        if f.startswith("test_") and f.endswith(".py"):
            with open(os.path.join(tests_dir, f), encoding="utf-8") as src:
                if "AIOTestCase" in src.read():
                    found.append(f[:-3])
    return found


def stock_prefix(prefix):
    """A ferroloop id prefix as the stock AIO class's id."""
    parts = prefix.split(".")
    if len(parts) > 1:
        parts[1] = parts[1].replace("Ferro", "AIO")
    return ".".join(parts)


def run_all(selected, args, expected, tests_dir, log_dir):
    jobs = queue.Queue()
    for module, only in selected:
        jobs.put((module, "ferroloop", only))
        if not args.no_stock:
            jobs.put((module, "asyncio", [stock_prefix(p) for p in only]))
    runs = {}
    lock = threading.Lock()

    def worker():
        while True:
            try:
                module, target, only = jobs.get_nowait()
            except queue.Empty:
                return
            skip = expected.skip_prefixes(MINOR) if target == "ferroloop" else []
            run = ModuleRun(module, target=target, timeout=args.timeout,
                            log_path=os.path.join(log_dir, f"{module}.{target}.log"),
                            suite_dir=tests_dir, only=only, skip=skip, child=CHILD).run()
            with lock:
                runs[module, target] = run

    run_workers(worker, args.jobs)
    return runs


def categorize(ferro, stock, expected):
    """{ferroloop test id: category} for one module."""
    stock_results = stock.results if stock else {}
    categories = {}
    for tid, rec in ferro.results.items():
        outcome = rec["outcome"]
        entry = expected.lookup(tid, MINOR)
        failing = outcome in FAILING
        if outcome == "skip":
            cat = "skipped"
        elif entry is not None:
            cat = "xfail" if failing else "xpass"
        elif not failing:
            cat = "passed"
        elif same_failure(rec, stock_results.get(stock_prefix(tid))):
            cat = "stock too"
        else:
            cat = "failed"
        categories[tid] = cat
    return categories


def same_failure(ferro_rec, stock_rec):
    """Did the stock loop fail this test the same way: same outcome and,
    for a failure or error, the same exception line (numbers aside: ports,
    fds, addresses)?  A test failing differently on the two loops may hide a
    ferroloop bug behind a stock one, so it is charged."""
    if stock_rec is None or stock_rec["outcome"] != ferro_rec["outcome"]:
        return False
    if ferro_rec["outcome"] in ("hang", "crash"):
        return True
    return failure_line(ferro_rec["detail"]) == failure_line(stock_rec["detail"])


def failure_line(detail):
    """The 'SomeError: message' line of a traceback excerpt, numbers masked."""
    lines = detail.strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    rest = [line for line in lines[frames[-1] + 1 if frames else 0:]
            if line and not line[0].isspace()]
    line = re.sub(r"0x[0-9a-fA-F]+|\d+", "#", rest[0] if rest else "")
    # "BaseEventLoop.create_task() got an unexpected keyword argument"
    return LOOP_CLASS_NAMES.sub("LOOP", line)


def stock_counts(stock):
    if stock is None:
        return ""
    outcomes = [rec["outcome"] for rec in stock.results.values()]
    failed = sum(o in FAILING for o in outcomes)
    skipped = outcomes.count("skip")
    return (f"| asyncio: passed {len(outcomes) - failed - skipped}  failed {failed}  "
            f"skipped {skipped}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt))
    if args.uvloop_branches:
        os.environ["FERROLOOP_UVLOOP_SUITE_BRANCHES"] = "uvloop"
        args.expected = os.devnull
    try:
        expected = ExpectedList(args.expected)
    except FormatError as exc:
        usage_error(f"{args.expected}: {exc}")
    try:
        root = sdist.ensure(args.cache_dir)
    except (sdist.FetchError, OSError) as exc:
        print(f"error: cannot get the uvloop {sdist.VERSION} sdist: {exc}", file=sys.stderr)
        return 2
    missing = [name for name in ("uvloop", "OpenSSL", "psutil")
               if importlib.util.find_spec(name) is None]
    if missing:
        usage_error(f"{', '.join(missing)} not installed: pip install -r "
                    f"{os.path.relpath(os.path.join(HERE, 'requirements.txt'))} "
                    f"(or scripts/uvloop-suite-deps.sh VERSION)")
    tests_dir = os.path.join(root, "tests")
    selected = select(discover(tests_dir), args.modules, SLOW_MODULES)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="uvloop-suite-")
    os.makedirs(log_dir, exist_ok=True)
    print(f"uvloop {sdist.VERSION} tests, CPython {sys.version.split()[0]}: ferroloop twins"
          + ("" if args.no_stock else " and the stock AIO classes")
          + f", {len(selected)} modules, -j {args.jobs}, timeout {args.timeout:g}s", flush=True)

    t0 = time.monotonic()
    runs = run_all(selected, args, expected, tests_dir, log_dir)
    totals = dict.fromkeys(COLUMNS, 0)
    failures, passes = [], []
    for module, _ in selected:
        ferro, stock = runs[module, "ferroloop"], runs.get((module, "asyncio"))
        if ferro.skipped_module is not None:
            print(f"{module:<16} skipped: {ferro.skipped_module}")
            continue
        categories = categorize(ferro, stock, expected)
        counts = dict.fromkeys(COLUMNS, 0)
        for tid, cat in sorted(categories.items()):
            counts[cat] += 1
            if cat == "failed":
                stock_rec = stock.results.get(stock_prefix(tid)) if stock else None
                failures.append((tid, ferro.results[tid], stock_rec))
            elif cat == "xpass":
                passes.append((tid, expected.lookup(tid, MINOR)))
            elif args.verbose and cat in ("stock too", "xfail"):
                print(f"  {tid}: {ferro.results[tid]['outcome']} ({cat})")
        for name in COLUMNS:
            totals[name] += counts[name]
        cells = "  ".join(f"{c} {counts[c]}" for c in COLUMNS)
        print(f"{module:<16} ferroloop: {cells}  {stock_counts(stock)}", flush=True)
    cells = "  ".join(f"{c} {totals[c]}" for c in COLUMNS)
    print(f"{'TOTAL':<16} ferroloop: {cells}  {time.monotonic() - t0:.1f}s")

    if failures:
        print(f"\nFailing on ferroloop, not so on the stock loop ({len(failures)}):")
        for tid, rec, stock_rec in failures:
            print(f"  {tid}: {rec['outcome']}")
            if stock_rec is not None and stock_rec["outcome"] in FAILING:
                print(f"    (stock loop: {stock_rec['outcome']}, "
                      f"{failure_line(stock_rec['detail'])!r})")
            print("\n".join("      " + line for line in rec["detail"].splitlines()))
    if passes:
        print(f"\nListed but passing ({len(passes)}) -- remove from "
              f"{os.path.basename(args.expected)}:")
        for tid, entry in passes:
            print(f"  {tid}  (line {entry.lineno}: {entry.reason})")
    print(f"\nlogs: {log_dir}")
    failed = len(failures) + len(passes)
    print(f"uvloop-suite: {totals['passed']} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

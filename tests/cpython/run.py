#!/usr/bin/env python3
"""Run CPython's own asyncio test suite (test.test_asyncio) against a loop.

    python tests/cpython/run.py [options] [MODULE[.Class[.test]] ...]

The interpreter running this script is the one whose test suite is used and
which runs the tests.  Every test module runs in its own child process
(child.py) with the target loop installed as the default; see supervisor.py
for hang/crash handling and expected.py for the expected-failures format.

Per test the result is one of:
  passed       passed and created at least one target loop
  failed       failed/errored/unexpected success, not in the list   -> CI fails
  xfail        failed and listed in expected_failures.txt
  xpass        listed but passed: "now passing, remove it"          -> CI fails
  skipped      skipped by the test itself, or [skip] in the list
  not counted  never created a target loop (white-box tests of the stock loop,
               pure Future tests, ...): never a failure
  n/a          Poll/Select duplicate of an EPoll test class, not run
  hang, crash  always counted (a dead child is a real bug wherever it
               happens); fail CI unless listed
Exit status: 0 if the run agrees with the list, 1 if not, 2 on usage errors.
"""

import argparse
import importlib.util
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time

from expected import ExpectedList, FormatError
from selection import select, usage_error
from supervisor import ModuleRun, run_workers

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_EXPECTED = os.path.join(HERE, "expected_failures.txt")
FAILING = {"fail", "error", "hang", "crash", "unexpected-success"}
COLUMNS = ["passed", "failed", "xfail", "xpass", "skipped", "not counted",
           "n/a", "hang", "crash"]
MINOR = sys.version_info[1]
BRIEF_OVER = 25  # more unexpected failures than this: one line each
# Longest first (stock loop, 3.11-3.13: test_tasks ~30 s, test_subprocess
# ~15 s, test_ssl ~10 s, the rest < 7 s) so the workers finish together.
SLOW_MODULES = ["test_tasks", "test_subprocess", "test_ssl", "test_taskgroups",
                "test_events", "test_sslproto", "test_futures"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("modules", nargs="*", metavar="MODULE",
                   help="test modules (or module.Class[.test] prefixes) to run; default all")
    p.add_argument("--loop", default="ferroloop",
                   help="target: 'asyncio' (stock epoll selector loop, harness self-check) "
                        "or a module with new_event_loop() and EventLoopPolicy "
                        "(default: ferroloop)")
    p.add_argument("-j", "--jobs", type=int, default=2, help="modules run at once (default 2)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds per test before it counts as a hang (default 60)")
    p.add_argument("--expected", default=DEFAULT_EXPECTED,
                   help="expected-failures list (default: %(default)s)")
    p.add_argument("--update-expected", metavar="REASON",
                   help="rewrite the list: add new failures with REASON, drop entries "
                        "that now pass (existing reasons are kept)")
    p.add_argument("--json", metavar="PATH", help="write a JSON summary here")
    p.add_argument("--log-dir", help="per-module child logs (default: a new temp dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every test result")
    p.add_argument("--suite-dir", help=argparse.SUPPRESS)  # harness self-test only:
    # run the *.py modules of this directory instead of CPython's test_asyncio.
    return p.parse_args(argv)


def discover(suite_dir):
    if suite_dir:
        return sorted(f[:-3] for f in os.listdir(suite_dir)
                      if f.endswith(".py") and not f.startswith("_"))
    spec = importlib.util.find_spec("test.test_asyncio")
    if spec is None:
        usage_error("this interpreter has no test.test_asyncio package")
    (directory,) = spec.submodule_search_locations
    return sorted(f[:-3] for f in os.listdir(directory)
                  if f.startswith("test_") and f.endswith(".py"))


def run_all(selected, args, expected, log_dir):
    """Run the modules on args.jobs worker threads (each waits on a child)."""
    lock = threading.Lock()
    todo = queue.Queue()
    for item in selected:
        todo.put(item)
    runs = {}

    def on_event(module, ev):
        if ev["ev"] != "end":
            return
        outcome = ev["outcome"]
        if args.verbose or outcome in ("hang", "crash"):
            with lock:
                print(f"  {ev['test']}: {outcome}"
                      + ("" if ev["counted"] else " (not counted)"), flush=True)

    def worker():
        while True:
            try:
                module, only = todo.get_nowait()
            except queue.Empty:
                return
            run = ModuleRun(module, target=args.loop, timeout=args.timeout,
                            log_path=os.path.join(log_dir, module + ".log"),
                            suite_dir=args.suite_dir, only=only,
                            skip=expected.skip_prefixes(MINOR), on_event=on_event).run()
            categorize(run, expected)
            with lock:
                runs[module] = run
                print(module_line(module, run), flush=True)

    run_workers(worker, args.jobs)
    return [runs[m] for m, _ in selected]


def classify(rec, entry):
    """Category of one test result given its expected-list entry (or None)."""
    outcome = rec["outcome"]
    if outcome in ("n/a", "skip"):
        return {"n/a": "n/a", "skip": "skipped"}[outcome]
    if outcome in ("hang", "crash"):
        return outcome
    failing = outcome in FAILING
    if entry is not None and not failing:
        return "xpass"
    if not rec["counted"]:
        return "not counted"
    if failing:
        return "xfail" if entry is not None else "failed"
    return "passed"


def categorize(run, expected):
    """Fills run.categories {id: (category, entry)} and run.counts."""
    run.categories = {}
    run.counts = dict.fromkeys(COLUMNS, 0)
    for test_id, rec in run.results.items():
        entry = expected.lookup(test_id, MINOR)
        cat = classify(rec, entry)
        run.categories[test_id] = (cat, entry)
        run.counts[cat] += 1


def module_line(module, run):
    if run.skipped_module is not None:
        return f"{module:<24} skipped: {run.skipped_module}"
    return count_line(module, run.counts, run.duration, run.attempts - 1)


def count_line(name, counts, duration, restarts=0):
    cells = "  ".join(f"{column} {counts[column]}" for column in COLUMNS)
    note = f"  ({restarts} restarts)" if restarts else ""
    return f"{name:<24} {cells}  {duration:6.1f}s{note}"


def exception_line(traceback_text):
    """The 'SomeError: message' line of a traceback: the first unindented
    line after the last frame (a multi-line message may follow it)."""
    lines = traceback_text.strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    for line in lines[frames[-1] + 1 if frames else 0:]:
        if line and not line[0].isspace():
            return line.strip()
    return lines[-1].strip() if lines else ""


def indent(text, prefix="      "):
    return "\n".join(prefix + line for line in text.splitlines())


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.suite_dir:
        args.suite_dir = os.path.abspath(args.suite_dir)
    if args.loop != "asyncio" and importlib.util.find_spec(args.loop) is None:
        usage_error(f"target loop module {args.loop!r} is not importable "
                    f"(build/install it first, or use --loop asyncio)")
    try:
        expected = ExpectedList(args.expected)
    except FormatError as exc:
        usage_error(f"{args.expected}: {exc}")
    selected = select(discover(args.suite_dir), args.modules, SLOW_MODULES)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="cpython-conformance-")
    os.makedirs(log_dir, exist_ok=True)

    print(f"CPython {sys.version.split()[0]} test_asyncio against --loop {args.loop}: "
          f"{len(selected)} modules, -j {args.jobs}, timeout {args.timeout:g}s", flush=True)
    t0 = time.monotonic()
    runs = run_all(selected, args, expected, log_dir)
    duration = time.monotonic() - t0

    totals = dict.fromkeys(COLUMNS, 0)
    unexpected_failures, unexpected_passes = [], []
    for run in runs:
        for name in COLUMNS:
            totals[name] += run.counts[name]
        for test_id, (cat, entry) in sorted(run.categories.items()):
            if cat in ("failed", "hang", "crash") and entry is None:
                unexpected_failures.append((test_id, run.results[test_id]))
            elif cat == "xpass":
                unexpected_passes.append((test_id, entry))

    print(count_line("TOTAL", totals, duration))

    if unexpected_failures:
        # Many failures (early ferroloop): one line each, except hangs and
        # crashes, whose stack dump is the whole point.  --json/logs have all.
        brief = len(unexpected_failures) > BRIEF_OVER
        note = ": exception line of each; full excerpts in --json and the logs"
        print(f"\nUnexpected failures ({len(unexpected_failures)})" + (note if brief else ":"))
        for test_id, rec in unexpected_failures:
            if brief and rec["outcome"] not in ("hang", "crash"):
                line = exception_line(rec["detail"])
                print(f"  {test_id}: {rec['outcome']}" + (f" -- {line[:160]}" if line else ""))
            else:
                print(f"  {test_id}: {rec['outcome']}")
                if rec["detail"].strip():
                    print(indent(rec["detail"]))
    if unexpected_passes:
        print(f"\nUnexpected passes ({len(unexpected_passes)}) "
              f"-- now passing, remove from {os.path.basename(args.expected)}:")
        for test_id, entry in unexpected_passes:
            print(f"  {test_id}  (line {entry.lineno}: {entry.reason})")
    warn_stale(expected, selected, runs)
    print(f"\nlogs: {log_dir}")

    failed = len(unexpected_failures) + len(unexpected_passes)
    status = 1 if failed else 0
    if args.update_expected is not None:
        expected.update(MINOR, [entry for _, entry in unexpected_passes],
                        [test_id for test_id, _ in unexpected_failures],
                        args.update_expected)
        print(f"updated {args.expected}: +{len(unexpected_failures)} entries, "
              f"{len(unexpected_passes)} now-passing entries dropped/narrowed "
              f"for 3.{MINOR}")
        status = 0
    if args.json:
        write_json(args, runs, selected, totals, duration, unexpected_failures,
                   unexpected_passes, status)
    print(f"\ncpython-conformance: {totals['passed']} passed, {failed} failed")
    return status


def warn_stale(expected, selected, runs):
    """Listed tests that a full run of their module did not report at all."""
    full = {m for (m, only), run in zip(selected, runs)
            if not only and run.skipped_module is None}
    seen = {t for run in runs for t in run.results}
    for entry in expected.entries.values():
        module = entry.test_id.split(".")[0]
        if (not entry.skip and module in full and entry.applies(MINOR)
                and entry.test_id not in seen):
            print(f"warning: {os.path.basename(expected.path)} line {entry.lineno}: "
                  f"{entry.test_id} was not found in this run (renamed or removed?)")


def write_json(args, runs, selected, totals, duration, failures, passes, status):
    tests = {}
    for run in runs:
        for test_id, rec in run.results.items():
            cat, entry = run.categories[test_id]
            item = {"module": run.module, "outcome": rec["outcome"], "counted": rec["counted"],
                    "category": cat, "time": rec["time"]}
            if entry is not None:
                item["expected"] = entry.reason
            if rec["outcome"] in FAILING:
                item["detail"] = rec["detail"]
            tests[test_id] = item
    summary = {
        "python": sys.version.split()[0], "target": args.loop, "timeout": args.timeout,
        "jobs": args.jobs, "duration": round(duration, 1), "totals": totals,
        "modules": {m: {"counts": r.counts, "duration": round(r.duration, 1),
                        "attempts": r.attempts, "skipped": r.skipped_module}
                    for (m, _), r in zip(selected, runs)},
        "unexpected_failures": [t for t, _ in failures],
        "unexpected_passes": [t for t, _ in passes],
        "passed": totals["passed"], "failed": len(failures) + len(passes),
        "exit_code": status, "tests": tests,
    }
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    sys.exit(main())

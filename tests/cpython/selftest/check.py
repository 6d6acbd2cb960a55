#!/usr/bin/env python3
"""Self-test of the conformance harness itself (about 30 s).

    python tests/cpython/selftest/check.py

Runs run.py with --loop asyncio on the tiny fake suite in suite/ (one test
per result category, a test that hangs, one that segfaults, a module that
skips itself) and checks the results, the exit codes and --update-expected.
Named check.py, not test_*.py, so pytest never collects the hanging fixture.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(os.path.dirname(HERE), "run.py")
SUITE = os.path.join(HERE, "suite")
MINOR = sys.version_info[1]
sys.path.insert(0, os.path.dirname(HERE))

from expected import ExpectedList, FormatError, parse_line  # noqa: E402

LIST = """\
# comment line

case_basic.Basic.test_listed_fail  # listed failure
case_basic.Basic.test_listed_pass  # listed but passes
[3.0] case_basic.Basic.test_fail  # a version tag that never applies
[skip] case_basic.Skipped  # whole class skipped by prefix
"""

# id -> category expected from the first run against LIST.
EXPECTED = {
    "case_basic.Basic.test_pass": "passed",
    "case_basic.Basic.test_default_policy_is_target": "passed",
    "case_basic.EPollEventLoopTests.test_uses_target": "passed",
    "case_basic.PollEventLoopTests.test_uses_target": "n/a",
    "case_basic.SelectEventLoopTests.test_uses_target": "n/a",
    "case_basic.Basic.test_fail": "failed",
    "case_basic.Basic.test_error": "failed",
    "case_basic.Basic.test_subtest_fail": "failed",
    "case_basic.Basic.test_unexpected_success": "failed",
    "case_basic.BrokenFixture.setUpClass": "failed",
    "case_basic.Basic.test_listed_fail": "xfail",
    "case_basic.Basic.test_listed_pass": "xpass",
    "case_basic.Basic.test_not_counted_fail": "not counted",
    "case_basic.Basic.test_skip": "skipped",
    "case_basic.Skipped.test_would_fail": "skipped",
    "case_hang.Hang.test_1_before": "passed",
    "case_hang.Hang.test_2_sleeps_forever": "hang",
    "case_hang.Hang.test_3_after": "passed",
    "case_hang.HangInFixture.test_runs": "passed",
    "case_hang.<between-tests>": "hang",  # HangInFixture.tearDownClass
    "case_crash.Crash.test_1_before": "passed",
    "case_crash.Crash.test_2_segfault": "crash",
    "case_crash.Crash.test_3_after": "passed",
}
NEW_FAILURES = [t for t, c in EXPECTED.items() if c in ("failed", "hang", "crash")]


def run(tmp, listfile, *extra):
    summary = os.path.join(tmp, "summary.json")
    proc = subprocess.run(
        [sys.executable, RUN, "--loop", "asyncio", "--suite-dir", SUITE,
         "--timeout", "2", "--expected", listfile, "--json", summary,
         "--log-dir", os.path.join(tmp, "logs"), *extra],
        capture_output=True, text=True)
    with open(summary, encoding="utf-8") as f:
        return proc, json.load(f)


def check(condition, message):
    if not condition:
        raise SystemExit(f"FAIL: {message}")


def check_format():
    e = parse_line("[3.12+] [skip] a.B.c  # why", 1)
    check((e.lo, e.hi, e.skip, e.reason) == (12, None, True, "why"), "tags parse")
    e = parse_line("[-3.12] a.B.c  # why", 1)
    check((e.lo, e.hi) == (None, 12), "[-3.12] parses")
    e = parse_line("[3.11-3.12] a.B.c  # why", 1)
    check(e.applies(11) and e.applies(12) and not e.applies(13), "range applies")
    for bad in ("a.B.c", "a.B.c  #", "[3.x] a.B.c  # r", "[3.11] [3.12] a.B.c  # r"):
        try:
            parse_line(bad, 1)
        except FormatError:
            continue
        raise SystemExit(f"FAIL: {bad!r} should be rejected")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "list.txt")
        with open(path, "w") as f:
            f.write("# head\nx.A.gone  # all versions\n[3.11] x.A.old  # r\n")
        lst = ExpectedList(path)
        # On 3.12: x.A.gone passes (narrowed), x.A.new fails on 3.12 and was
        # already listed for 3.11 with the same reason (merged).
        lst.update(12, [lst.lookup("x.A.gone", 12)], ["x.A.old"], "r")
        with open(path) as f:
            text = f.read()
        check(text == ("# head\n[3.11] x.A.gone  # all versions\n"
                      "[3.13+] x.A.gone  # all versions\n[3.11-3.12] x.A.old  # r\n"),
              f"update/merge result:\n{text}")


def main():
    check_format()
    with tempfile.TemporaryDirectory() as tmp:
        listfile = os.path.join(tmp, "expected.txt")
        with open(listfile, "w") as f:
            f.write(LIST)

        proc, summary = run(tmp, listfile)
        check(proc.returncode == 1, f"first run should exit 1, got {proc.returncode}")
        got = {t: v["category"] for t, v in summary["tests"].items()}
        for test_id, category in EXPECTED.items():
            check(got.get(test_id) == category,
                  f"{test_id}: expected {category}, got {got.get(test_id)}")
        check(set(got) == set(EXPECTED), f"unexpected ids: {set(got) ^ set(EXPECTED)}")
        check(summary["modules"]["case_skipmod"]["skipped"] == "not on this platform",
              "module-level SkipTest is reported")
        hang = summary["tests"]["case_hang.Hang.test_2_sleeps_forever"]["detail"]
        check("Timeout (" in hang and "test_2_sleeps_forever" in hang,
              f"hang traceback excerpt:\n{hang}")
        stall = summary["tests"]["case_hang.<between-tests>"]["detail"]
        check("tearDownClass" in stall, f"stall outside a test dumps stacks:\n{stall}")
        crash = summary["tests"]["case_crash.Crash.test_2_segfault"]["detail"]
        check("SIGSEGV" in crash and "test_2_segfault" in crash, f"crash excerpt:\n{crash}")
        check(f"cpython-conformance: 8 passed, {len(NEW_FAILURES) + 1} failed"
              in proc.stdout.splitlines(), "closing line")

        proc, _ = run(tmp, listfile, "--update-expected", "selftest")
        check(proc.returncode == 0, "--update-expected exits 0")
        lst = ExpectedList(listfile)
        check(lst.lookup("case_basic.Basic.test_listed_pass", MINOR) is None,
              "now-passing entry removed for this version")
        for test_id in NEW_FAILURES:
            entry = lst.lookup(test_id, MINOR)
            check(entry is not None and entry.reason in ("selftest", "a version tag that "
                                                         "never applies"),
                  f"{test_id} added")

        proc, summary = run(tmp, listfile)
        check(proc.returncode == 0, f"run after update exits 0:\n{proc.stdout}")

        # A class prefix on the command line runs just that class.
        proc, summary = run(tmp, listfile, "case_basic.EPollEventLoopTests")
        check(list(summary["tests"]) == ["case_basic.EPollEventLoopTests.test_uses_target"]
              and proc.returncode == 0, "class selection")
    print("harness selftest: OK")


if __name__ == "__main__":
    main()

"""Splits a callgrind profile into the loop's own instructions and the rest.

    python bench/cgsplit.py CALLGRIND_OUT [--minus CALLGRIND_OUT --per N] [--top N]

Used by bench/echo_instructions.py and bench/http_instructions.py (`--split`)
to bound what a faster loop could still win. The question: of the server's
instructions per request, how many are the loop's own, that a loop with
zero cost of its own would not execute, and how many does every loop pay?

Method. Every function in the profile is put in one of three classes:

- **loop**: the loop's compiled code, that is functions in ferroloop's
  extension module (`_ferroloop*.so`, pyo3 included) or in uvloop's
  (`uvloop/loop*.so`, libuv included);
- **shared**: code every loop runs the same way: the Python interpreter's
  bytecode loop (`_PyEval_EvalFrameDefault`: uvicorn, httptools' callbacks,
  `StreamReader`, the app, asyncio's Python code) with the making and
  clearing of Python frames and the resumption of coroutines (a callback's
  code costs the same whichever loop calls it), the C `asyncio.Task` and
  `Future` (`_asyncio*.so`) and httptools' parser (`httptools/*.so`);
- **neutral**: everything else (CPython's runtime: allocation, reference
  counting, calls, dicts, the cycle collector; libc, syscall wrappers).

A neutral function's own instructions belong to whoever called it: they
are shared among its callers in proportion to the instructions spent in the
calls from each caller (callgrind's inclusive cost of each call edge), and a
neutral caller passes its share on to its own callers the same way, until a
loop or shared function (or the program's root) is reached. So `PyDict_New`
called from ferroloop is the loop's, and called from uvicorn's bytecode is
shared; a `send` wrapper belongs to the transport that called it. "The
loop's own" is then ferroloop's code plus the CPython API calls it makes,
as issue 3 asks.

Limits, all of which make the split approximate rather than exact:

- Context-insensitive: callgrind records one level of callers, so a neutral
  function reached through another neutral one (loop -> PyObject_Vectorcall
  -> method dispatch) is split by the mix of all of its callers, not by the
  path actually taken.
- Python code of the loop's own (ferroloop's `.py` files) runs in the
  bytecode loop and counts as shared. `http_instructions.py
  --python-calls` lists the Python functions that run per request, to
  check that none of them are the loop's.
- Freeing is charged to whoever drops the last reference: objects the app
  made that die when the loop lets go of a handle or a finished task count
  as the loop's (on every loop alike).

A check: the shared part should come out the same on every loop. For the
servers measured in docs/benchmarks.md it does within 3.5% (uvicorn 86.6k
instructions per request on ferroloop, 88.8k on uvloop).

Bound: a loop whose own cost were zero would execute total - own
instructions per request, so if requests/s were proportional to user-space
instructions, it would beat the measured loop by total / (total - own), and
its ratio to uvloop would be the measured ratio r times that:

    r0 = r * total / (total - own)                      (instructions only)

Kernel time is not in these counts, and every loop pays it (here the loops
make the same syscalls per request: `strace -c` shows one recv, one send
per write, and one or two epoll_waits on uvloop and ferroloop alike), so
with user and system CPU time u and s per request (bench/http.py and
bench/echo.py read them from /proc/PID/stat), removing the own share
f = own / total of the user time gives

    r0 = r * (u + s) / (u + s - f * u)                  (CPU time)

which is the honest bound when the server's core is the bottleneck. When
the load generator saturates first (wrk against the httptools server), r
is the load generator's limit, and only the CPU-per-request ratios say
anything about the servers.
"""

import argparse
import collections
import re

LOOP_OBJECTS = re.compile(r"/_ferroloop[^/]*\.so$|/uvloop/loop[^/]*\.so$")
SHARED_OBJECTS = re.compile(r"/_asyncio[^/]*\.so$|/httptools/.*\.so$")
# The bytecode loop, and setting up and tearing down the frame of a Python
# function: running a callback's code costs the same whoever calls it.
SHARED_FUNCTIONS = {
    "_PyEval_EvalFrameDefault", "_PyEval_Vector", "_PyFunction_Vectorcall",
    "_PyEvalFramePushAndInit", "_PyEvalFramePushAndInit_Ex", "initialize_locals",
    "_PyEvalFrameClearAndPop", "clear_thread_frame", "_PyFrame_Clear",
    "_PyFrame_ClearExceptCode", "gen_send_ex2", "gen_send_ex",
}
CLASSES = ("loop", "shared", "root")


def classify(obj, fn):
    fn = re.sub(r"'\d+$", "", fn)  # callgrind's suffix for a recursion level
    if LOOP_OBJECTS.search(obj):
        return "loop"
    if fn in SHARED_FUNCTIONS or SHARED_OBJECTS.search(obj):
        return "shared"
    return None


class Profile:
    """Self costs and call edges (caller, callee) -> inclusive cost, per
    function (object, name), read from one callgrind output file."""

    def __init__(self, path):
        self.self_cost = collections.Counter()
        self.edges = collections.Counter()
        self.total = 0
        names = {}

        def name(kind, value):
            # Name compression: "(id) name" the first time, "(id)" after.
            found = re.match(r"\((\d+)\)(?: (.*))?$", value)
            if not found:
                return value
            key = (kind, found.group(1))
            if found.group(2) is not None:
                names[key] = found.group(2)
            return names[key]

        obj = fn = cob = cfn = None
        call_pending = False
        with open(path) as f:
            for line in f:
                c = line[0]
                if c.isdigit() or c in "+-*":
                    cost = int(line.split()[1]) if " " in line.strip() else 0
                    if call_pending:
                        self.edges[(fn, (cob or obj, cfn))] += cost
                        call_pending = False
                        cob = None
                    else:
                        self.self_cost[fn] += cost
                        self.total += cost
                elif line.startswith("fn="):
                    fn = (obj, name("fn", line[3:].rstrip("\n")))
                elif line.startswith("ob="):
                    obj = name("ob", line[3:].rstrip("\n"))
                elif line.startswith("cob="):
                    cob = name("ob", line[4:].rstrip("\n"))
                elif line.startswith("cfn="):
                    cfn = name("fn", line[4:].rstrip("\n"))
                elif line.startswith("calls="):
                    call_pending = True

    def minus(self, other):
        """The profile of what this run did beyond `other` (the per-request
        profile when this run served more requests). Splitting the
        difference, not differencing the splits: the shares of a neutral
        function depend on all of its calls, start-up included."""
        diff = Profile.__new__(Profile)
        diff.self_cost = collections.Counter(self.self_cost)
        diff.self_cost.subtract(other.self_cost)
        diff.edges = collections.Counter(self.edges)
        diff.edges.subtract(other.edges)
        diff.total = self.total - other.total
        return diff

    def split(self):
        """Instructions per class: {"loop": n, "shared": n, "root": n}.
        A call edge with no cost (or, in a difference, a negative one)
        carries no weight."""
        callers = collections.defaultdict(list)
        for (caller, callee), cost in self.edges.items():
            if caller != callee and cost > 0:
                callers[callee].append((caller, cost))
        share = {}  # neutral function -> {class: fraction}
        fixed = {}
        for fn in self.self_cost:
            cls = classify(*fn)
            if cls:
                fixed[fn] = {cls: 1.0}
            elif not callers[fn]:
                fixed[fn] = {"root": 1.0}
            else:
                share[fn] = {"root": 1.0}
        # Fixed-point iteration: an absorbing Markov chain over callers.
        for _ in range(200):
            delta = 0.0
            for fn, old in share.items():
                weight = sum(cost for _, cost in callers[fn])
                new = collections.defaultdict(float)
                for caller, cost in callers[fn]:
                    shares = fixed.get(caller) or share.get(caller, {"root": 1.0})
                    for cls, frac in shares.items():
                        new[cls] += frac * cost / weight
                delta = max(delta, max(abs(new[c] - old.get(c, 0.0)) for c in CLASSES))
                share[fn] = dict(new)
            if delta < 1e-9:
                break
        result = dict.fromkeys(CLASSES, 0.0)
        self.loop_cost = collections.Counter()  # function -> instructions charged to the loop
        for fn, cost in self.self_cost.items():
            for cls, frac in (fixed.get(fn) or share[fn]).items():
                result[cls] += frac * cost
                if cls == "loop":
                    self.loop_cost[fn] += frac * cost
        return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--minus", metavar="PATH",
                        help="subtract this run's profile (the same server, fewer requests)")
    parser.add_argument("--per", type=int, default=1,
                        help="divide by this many (the difference in requests)")
    parser.add_argument("--top", type=int, default=25,
                        help="also list the N functions charged the most to the loop")
    args = parser.parse_args()
    profile = Profile(args.path)
    if args.minus:
        profile = profile.minus(Profile(args.minus))
    split = profile.split()
    print(f"  total {profile.total / args.per:12,.0f}")
    for cls in CLASSES:
        print(f"{cls:>7} {split[cls] / args.per:12,.0f} {split[cls] / profile.total:7.1%}")
    for (obj, fn), cost in profile.loop_cost.most_common(args.top):
        print(f"{cost / args.per:10,.0f} {fn[:90]} ({obj.rsplit('/', 1)[-1][:30]})")


if __name__ == "__main__":
    main()

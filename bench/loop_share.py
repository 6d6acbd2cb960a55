"""How much of each micro-benchmark is the loop's own work, under callgrind.

    python bench/loop_share.py [--only name,...] [--loops ferroloop,uvloop]
                               [--micro-json PATH] [--jobs 2]

Why: a wall-clock ratio to uvloop can only grow as far as the part of the
time the loop itself spends. If most instructions go to things asyncio's
semantics make every loop do, even a loop whose own code cost nothing would
stay close to uvloop. This script measures that part, so a speed target can
be judged reachable or not.

Method. Each benchmark of bench/micro.py runs under
`valgrind --tool=callgrind --separate-callers=2`, with n and 2n operations
(as in bench/instructions.py; the difference divided by n is one operation,
start-up excluded). In the call graph, the loop's code L is every function
of the loop's extension module (ferroloop's `_ferroloop*.so`; uvloop's
`loop*.so`, libuv included). Every instruction then belongs to one of two
sides:

- the loop's own side: L's code and everything it calls into CPython for
  its own purposes (allocating handles, copying and entering contexts,
  reference counting, deallocation, parsing arguments, locks, syscalls,
  garbage collections its allocations trigger);
- the side every loop pays: the benchmark's Python code, the interpreter
  calling a loop method, and whatever a callable the loop invokes does
  (the user's callback, the C `asyncio.Future`/`Task` machinery it runs,
  `Future()`/`Task()` construction, the executor).

A call from outside L into L enters the loop's side; a call from L to a
function that invokes a Python callable (`PyObject_Call`,
`PyObject_Vectorcall`, `_PyFunction_Vectorcall`, ...; see FORCED), or
straight into the C `_asyncio` module (Cython calls a callable's `tp_call`
directly, e.g. a task step), leaves it.
callgrind records the exact inclusive instruction count of every call edge,
so, summing over the edges that switch sides,

    own = sum(entries into L) - sum(forced calls out of L)

which is exact however the two sides nest (a callback that calls
`call_soon` again is an entry inside a forced call). A call from CPython into
L that CPython makes on L's behalf (`_Py_Dealloc` of a handle dropped by L,
the allocator calling L's `tp_alloc`) does not switch sides; callgrind's
two-caller contexts show those (the caller's caller is in L, and the caller
is not one of the FORCED functions) and they are skipped. The cycle
collector's calls into L (`tp_traverse`, `tp_clear`) are skipped too: a
collection is charged whole to the side whose allocation triggered it (a
collection that starts inside L is the loop's own, one that starts in a
callback is not). Deeper chains from L through CPython back into L (rare:
a deallocation that frees another object that frees a handle) are counted
twice. ferroloop's Python-level code (`run_in_executor` in
`_executors.py`, a few dozen bytecodes per `to_thread`) counts on the side
every loop pays, because callgrind sees no Python frames; uvloop's is
Cython and counts as its own.

From that, per benchmark:

- `shared = total - own`: what the loop cannot remove;
- instruction bound: `uvloop total / ferroloop shared`, the instruction
  ratio to uvloop a ferroloop whose own cost were zero would reach;
- wall bound (with `--micro-json`, from `bench/micro.py --json`): the
  measured wall ratio to uvloop times `total / shared`, assuming time
  scales with instructions. Both bounds are ceilings, not forecasts.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Benchmarks with issue #2 targets not yet met (ferroloop / uvloop).
TARGETS = {
    "call_soon": 3.0, "call_later": 3.0, "call_later+cancel": 3.0,
    "future": 2.5, "call_soon_threadsafe": 2.0, "to_thread": 1.2,
}
DEFAULT_N = {"to_thread": 500, "call_soon_threadsafe": 5000}
# Each loop's extension module, as a pattern on the object file's path.
LOOP_OBJECTS = {"ferroloop": r"/_ferroloop[^/]*\.so$", "uvloop": r"/uvloop/loop[^/]*\.so$"}
# CPython functions that invoke a Python callable: a call to one of these
# from the loop's code runs code every loop would run.
FORCED = {
    "PyObject_Call", "_PyObject_Call", "PyObject_CallObject", "PyObject_CallOneArg",
    "PyObject_CallNoArgs", "PyObject_Vectorcall", "PyObject_VectorcallDict",
    "PyObject_VectorcallMethod", "_PyObject_MakeTpCall", "_PyObject_Call_Prepend",
    "_PyFunction_Vectorcall", "PyObject_CallFunctionObjArgs", "PyObject_CallMethodObjArgs",
    "PyObject_CallMethod", "PyObject_CallFunction", "_PyObject_CallMethod_SizeT",
    "PyObject_CallMethodOneArg", "_PyObject_VectorcallTstate", "type_call",
    "method_vectorcall", "cfunction_call", "context_run",
}
# The C Task/Future module: Cython calls a callable's tp_call directly, so a
# call from the loop straight into it (a task step) is a forced call too.
ASYNCIO_OBJECT = re.compile(r"/_asyncio[^/]*\.so$")
FORCED_PREFIXES = ("method_vectorcall_", "cfunction_vectorcall_", "vectorcall_")


def base_name(context):
    """The function of a callgrind context name `fn'caller1'caller2` (or
    `fn'2` for a recursion level)."""
    return context.split("'", 1)[0]


def callers(context):
    """The callers recorded in a context name, nearest first."""
    return [p for p in context.split("'")[1:] if not p.isdigit()]


def parse(path):
    """Call edges (caller context, callee context) -> inclusive Ir, and
    function name -> object file."""
    edges = collections.Counter()
    objects = {}
    ob = fn = cob = cfn = None
    in_call = False
    with open(path) as fh:
        for line in fh:
            head = line[:4]
            if head.startswith("ob="):
                ob = line[3:].rstrip("\n")
            elif head.startswith("fn="):
                fn = line[3:].rstrip("\n")
                objects.setdefault(base_name(fn), ob)
                cob = None
            elif head == "cob=":
                cob = line[4:].rstrip("\n")
            elif head == "cfn=":
                cfn = line[4:].rstrip("\n")
            elif line.startswith("calls="):
                in_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if in_call:
                    parts = line.split()
                    edges[(fn, cfn)] += int(parts[1]) if len(parts) > 1 else 0
                    objects.setdefault(base_name(cfn), cob if cob is not None else ob)
                    in_call = False
                    cob = None
    return edges, objects


def is_forced(name):
    return name in FORCED or name.startswith(FORCED_PREFIXES)


def is_collector(caller, callee):
    """A call from the cycle collector (traversing or clearing an object)."""
    name = base_name(callee)
    return base_name(caller).startswith("gc_") or "traverse" in name or "tp_clear" in name


def split(path, loop_name):
    """(total Ir, the loop's own Ir) of one callgrind output file."""
    edges, objects = parse(path)
    pattern = re.compile(LOOP_OBJECTS[loop_name])

    def in_loop(context):
        return bool(pattern.search(objects.get(base_name(context)) or ""))

    own = 0
    for (caller, callee), cost in edges.items():
        if not in_loop(caller) and in_loop(callee):
            # Entry into the loop, unless CPython called back on the loop's
            # behalf (the caller's caller is loop code and the caller is not a
            # forced call: run_until_complete calling self.run_forever through
            # PyObject_VectorcallMethod does enter the loop again).
            chain = callers(callee)
            on_behalf = (len(chain) >= 2 and in_loop(chain[1])
                         and not is_forced(base_name(chain[0])))
            if not (on_behalf or is_collector(caller, callee)):
                own += cost
        elif in_loop(caller) and not in_loop(callee) and (
                is_forced(base_name(callee))
                or ASYNCIO_OBJECT.search(objects.get(base_name(callee)) or "")):
            own -= cost
    with open(path) as fh:
        total = int(re.search(r"^summary: (\d+)", fh.read(), re.M).group(1))
    return total, own


def run_callgrind(loop_name, bench_name, n):
    with tempfile.NamedTemporaryFile(suffix=".callgrind", delete=False) as tmp:
        out = tmp.name
    try:
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-callers=2",
             "--compress-strings=no", "--compress-pos=no", f"--callgrind-out-file={out}",
             os.path.realpath(sys.executable), os.path.join(HERE, "instructions.py"),
             "--child", loop_name, bench_name, str(n)],
            capture_output=True, text=True, check=True,
        )
        return split(out, loop_name)
    finally:
        os.unlink(out)


def per_op(loop_name, bench_name, n, pool):
    small = pool.submit(run_callgrind, loop_name, bench_name, n)
    large = pool.submit(run_callgrind, loop_name, bench_name, 2 * n)
    (t1, o1), (t2, o2) = small.result(), large.result()
    return (t2 - t1) / n, (o2 - o1) / n


def wall_ratios(path):
    """ferroloop/uvloop from a bench/micro.py --json file."""
    with open(path) as fh:
        medians = json.load(fh)["median_ops_per_s"]
    return {b: m["ferroloop"] / m["uvloop"] for b, m in medians.items()
            if m.get("ferroloop") and m.get("uvloop")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(TARGETS))
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at once")
    parser.add_argument("--micro-json", help="bench/micro.py --json output for wall ratios")
    args = parser.parse_args()
    walls = wall_ratios(args.micro_json) if args.micro_json else {}
    print(f"instructions per operation ({sys.version.split()[0]}); "
          "own = the loop's code and the CPython calls it makes for itself")
    print("| benchmark | uvloop total | uvloop own | ferroloop total | ferroloop own "
          "| ferroloop shared | own share | instr. ratio | bound, instr. "
          "| wall ratio | bound, wall | target |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for bench_name in args.only.split(","):
            n = DEFAULT_N.get(bench_name, args.n)
            u_total, u_own = per_op("uvloop", bench_name, n, pool)
            f_total, f_own = per_op("ferroloop", bench_name, n, pool)
            shared = f_total - f_own
            wall = walls.get(bench_name)
            cells = [
                f"{u_total:,.0f}", f"{u_own:,.0f}", f"{f_total:,.0f}", f"{f_own:,.0f}",
                f"{shared:,.0f}", f"{f_own / f_total:.0%}", f"{u_total / f_total:.2f}x",
                f"{u_total / shared:.2f}x",
                f"{wall:.2f}x" if wall else "-",
                f"{wall * f_total / shared:.2f}x" if wall else "-",
                f"{TARGETS[bench_name]:.1f}x" if bench_name in TARGETS else "-",
            ]
            print(f"| {bench_name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

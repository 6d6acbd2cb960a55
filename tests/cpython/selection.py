"""Which test modules a harness run covers, shared by tests/cpython/run.py
and tests/uvloop_suite/run.py."""

import sys


def usage_error(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def select(available, requested, slow_modules):
    """[(module, [id prefixes])] in run order: the modules of
    `slow_modules` first (in that order), then the others by name.
    `requested` holds module names or test id prefixes (all modules if
    empty); an unknown module is a usage error."""
    chosen = {}
    for arg in requested or available:
        module = arg.split(".")[0]
        if module not in available:
            usage_error(f"no test module {module!r} (have: {', '.join(available)})")
        prefixes = chosen.setdefault(module, [])
        if prefixes is not None:
            # A bare module name means the whole module.
            chosen[module] = None if arg == module else prefixes + [arg]
    order = {m: i for i, m in enumerate(slow_modules)}
    return sorted(((m, p or []) for m, p in chosen.items()),
                  key=lambda mp: (order.get(mp[0], len(order)), mp[0]))

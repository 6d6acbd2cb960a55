"""Formatting for the markdown tables the network benchmarks print."""


def ratio(a, b):
    """`a / b` as `1.23x`, or `-` when either side is missing."""
    return f"{a / b:.2f}x" if a and b else "-"


def num(x, spec):
    """`x` formatted with `spec`, or `-` when missing."""
    return format(x, spec) if x is not None else "-"


def times(x, prefix=""):
    """A factor (a target, a per-round ratio) as `1.23x`, or `-` when missing."""
    return f"{prefix}{x:.2f}x" if x else "-"


def interference_note(samples):
    """One line on how busy the shared machine was while we measured."""
    others = sorted(s["others_cpus"] for s in samples)
    steal = sorted(s["steal_cpus"] for s in samples)
    if not others:
        return ""
    mid = len(others) // 2
    return (f"other processes on this machine used a median {others[mid]:.2f} CPUs "
            f"(max {others[-1]:.2f}) during the measurements; CPU steal median "
            f"{steal[mid]:.2f}, max {steal[-1]:.2f}. A measurement competing with more than "
            f"~0.1 CPUs runs slow.")

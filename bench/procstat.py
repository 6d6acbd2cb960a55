"""A process's CPU time and memory, read from /proc (Linux only).

The servers are measured from outside, so that no measuring code runs
inside the loop being measured.
"""

import os

_TICK = os.sysconf("SC_CLK_TCK")  # /proc/PID/stat counts CPU time in clock ticks


def cpu_times(pid):
    """(user, system) CPU seconds used so far by all threads of `pid`."""
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    # The command name (field 2) is in parentheses and may contain spaces:
    # split after its closing one. utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def rss_bytes(pid):
    """Resident set size of `pid` in bytes (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    raise RuntimeError(f"no VmRSS for pid {pid}")

"""A process's CPU time and memory, and the machine's, read from /proc
(Linux only).

The servers are measured from outside, so that no measuring code runs
inside the loop being measured.
"""

import os
import resource
import time

_TICK = os.sysconf("SC_CLK_TCK")  # /proc counts CPU time in clock ticks


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


def machine_cpu():
    """(busy, steal) CPU seconds of all CPUs so far (first line of /proc/stat)."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(x) / _TICK for x in fh.readline().split()[1:9])
    return user + nice + system + irq + softirq, steal


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Window:
    """CPU use during one measurement: the server's, the load generator's,
    and everyone else's on this shared machine.

    Open it just before running the load generator as a child process and
    close it just after that child was waited for: the children's rusage
    then grows by exactly the load generator's CPU time.
    """

    def __init__(self, server_pid):
        self.pid = server_pid
        self.start = (time.monotonic(), cpu_times(server_pid), _children_cpu(), machine_cpu())

    def close(self):
        t0, (u0, s0), c0, (b0, st0) = self.start
        t1, (u1, s1), c1, (b1, st1) = (time.monotonic(), cpu_times(self.pid), _children_cpu(),
                                       machine_cpu())
        wall = t1 - t0
        server_user, server_system, client = u1 - u0, s1 - s0, c1 - c0
        return {
            "wall_s": wall,
            "server_user_s": server_user,
            "server_system_s": server_system,
            "client_s": client,
            # Other processes' CPU time, in CPUs (1.0 = one core busy all along):
            # what this run competed with. Never below 0 (tick rounding).
            "others_cpus": max(0.0, (b1 - b0) - server_user - server_system - client) / wall,
            "steal_cpus": (st1 - st0) / wall,
        }

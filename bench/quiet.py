"""Measuring while the shared machine is quiet, within a time budget.

Other people's processes on this 2-core VM wreck a latency-bound
benchmark: with one request in flight per connection, each wake-up of the
server or the load generator waits whenever something else holds its CPU,
and throughput drops 3x with half a core of outside load. So each
measurement starts only once the machine has been idle for a moment, and
one that competed with more than `max_others` CPUs anyway is repeated;
the least disturbed attempt is kept. All waiting and repeating shares one
budget (`patience`), so a machine that never goes quiet costs at most
that much extra time and the run still ends.
"""

import statistics
import time

from procstat import machine_cpu

PROBE = 0.25  # seconds of machine-wide idleness checked before each measurement
MAX_WAIT = 5.0  # seconds one measurement may wait for quiet


class Quiet:
    def __init__(self, max_others=0.1, retries=2, patience=240.0):
        self.max_others = max_others
        self.retries = retries
        self.patience = patience
        self.budget = patience
        self.waited = 0.0
        self.repeated = 0

    def _busy(self):
        """CPUs busy machine-wide over the next PROBE seconds. Between two
        measurements our servers are idle, so this is everybody else."""
        b0 = machine_cpu()[0]
        time.sleep(PROBE)
        return (machine_cpu()[0] - b0) / PROBE

    def _wait(self):
        start = time.monotonic()
        while (self.budget > 0 and time.monotonic() - start < MAX_WAIT
               and self._busy() > self.max_others):
            pass
        spent = time.monotonic() - start
        self.budget -= spent
        self.waited += spent

    def run(self, measure):
        """Calls `measure()` (returning a sample with `others_cpus`) until one
        attempt was quiet enough, retries or budget run out; returns the
        least disturbed sample, with `attempts` added."""
        best = None
        for attempt in range(1, self.retries + 2):
            self._wait()
            started = time.monotonic()
            sample = measure()
            if best is None or sample["others_cpus"] < best["others_cpus"]:
                best = sample
            if sample["others_cpus"] <= self.max_others or self.budget <= 0:
                break
            if attempt <= self.retries:
                self.repeated += 1
                self.budget -= time.monotonic() - started
        best["attempts"] = attempt
        return best

    def summary(self):
        return (f"waited {self.waited:.0f} s for quiet and repeated {self.repeated} "
                f"disturbed measurement(s)"
                + ("; the patience budget ran out" if self.patience > 0 >= self.budget else ""))


def add_arguments(parser):
    parser.add_argument("--max-others", type=float, default=0.1, metavar="CPUS",
                        help="repeat a measurement during which other processes used more "
                             "than this many CPUs (default 0.1)")
    parser.add_argument("--retries", type=int, default=2,
                        help="repeats per disturbed measurement (default 2; 0: never)")
    parser.add_argument("--patience", type=float, default=240.0, metavar="S",
                        help="total seconds to spend waiting and repeating (default 240)")


def from_args(args):
    return Quiet(args.max_others, args.retries, args.patience)


def calm_samples(runs, max_others):
    """The samples taken while other processes used at most `max_others`
    CPUs, and False; if there is none, all of them, and True (disturbed).

    A median over three samples of which two competed with a test suite
    is the test suite's number, not the server's: the undisturbed ones
    are kept when there are any.
    """
    calm = [r for r in runs if r["others_cpus"] <= max_others]
    return (calm, False) if calm else (list(runs), True)


def per_round_ratio(runs, base_runs, max_others, metric="requests_per_s"):
    """The median over rounds of `runs[i][metric] / base_runs[i][metric]`
    (None if there is no round with both), leaving out the rounds where
    either competed with other processes when others did not.

    Why beside the ratio of the medians: the machine drifts between speeds
    over minutes (one server's requests/s can move by 30% from one round
    to the next), while within a round the two servers run back to back,
    so their ratio compares like with like.
    """
    pairs = list(zip(runs or [], base_runs or []))
    calm = [(r, b) for r, b in pairs if max(r["others_cpus"], b["others_cpus"]) <= max_others]
    pairs = calm or pairs
    if not pairs:
        return None
    return statistics.median(r[metric] / b[metric] for r, b in pairs)


DISTURBED_NOTE = ("† every sample of this cell competed with other processes (more than "
                  "--max-others CPUs): its requests/s are too low")

//! When a busy loop needs to read the clock.
//!
//! While callbacks keep the loop busy, each iteration reads the clock only
//! to decide whether the last I/O poll is old enough to poll again (see
//! `eventloop/run.rs`). A clock read costs ~30 ns here (vDSO
//! `clock_gettime` in a VM), about a tenth of a future round trip's two
//! iterations. So once readings show iterations are fast (under
//! [`FAST_ITERATION`] each on average), the next [`SKIPS`] iterations do not
//! read the clock (nor poll). If iterations turn slow, the first reading
//! after the skips sees it and every iteration reads the clock again: the
//! extra delay to I/O is at most [`SKIPS`] iterations, once per change of
//! pace. Iterations with timers always read the clock (they need "now").
//!
//! Only the loop's thread uses this; the atomics are relaxed (plain loads
//! and stores) and exist so the owning pyclass can be `Sync`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Iterations faster than this, on average, count as fast (seconds).
pub const FAST_ITERATION: f64 = 5e-6;

/// How many iterations may skip reading the clock after a fast reading.
pub const SKIPS: u32 = 3;

/// The state behind the decision.
#[derive(Default)]
pub struct BusyClock {
    /// Iterations that may still skip reading the clock.
    skips_left: AtomicU32,
    /// Iterations since the last reading.
    since_read: AtomicU32,
    /// The last reading (f64 bits).
    last_read: AtomicU64,
}

impl BusyClock {
    /// True if this busy iteration may go without reading the clock; it
    /// then counts as one of the skips.
    pub fn may_skip(&self) -> bool {
        let left = self.skips_left.load(Ordering::Relaxed);
        if left == 0 {
            return false;
        }
        self.skips_left.store(left - 1, Ordering::Relaxed);
        self.since_read.store(
            self.since_read.load(Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
        true
    }

    /// Records a reading taken this iteration, and from it whether the next
    /// iterations may skip theirs.
    pub fn record(&self, now: f64) {
        let iterations = self.since_read.load(Ordering::Relaxed) + 1;
        let last = f64::from_bits(self.last_read.load(Ordering::Relaxed));
        let fast = now - last < f64::from(iterations) * FAST_ITERATION;
        self.skips_left
            .store(if fast { SKIPS } else { 0 }, Ordering::Relaxed);
        self.since_read.store(0, Ordering::Relaxed);
        self.last_read.store(now.to_bits(), Ordering::Relaxed);
    }

    /// Forgets the pace (after an iteration that was not busy: a poll that
    /// may have slept, a run's first iteration): the next one reads.
    pub fn reset(&self) {
        self.skips_left.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reading_allows_no_skip_unless_fast() {
        let clock = BusyClock::default();
        clock.record(100.0); // far from the initial 0.0: slow
        assert!(!clock.may_skip());
    }

    #[test]
    fn fast_iterations_skip_a_few_readings_then_read_again() {
        let clock = BusyClock::default();
        clock.record(1.0);
        clock.record(1.0 + 1e-6);
        for _ in 0..SKIPS {
            assert!(clock.may_skip());
        }
        assert!(!clock.may_skip(), "a reading is due after the skips");
        // Four iterations in 8 µs: still fast.
        clock.record(1.0 + 9e-6);
        assert!(clock.may_skip());
    }

    #[test]
    fn slow_iterations_read_every_time() {
        let clock = BusyClock::default();
        clock.record(1.0);
        clock.record(1.0 + 1e-6);
        for _ in 0..SKIPS {
            assert!(clock.may_skip());
        }
        // The skipped iterations took 1 ms together: slow.
        clock.record(1.001);
        assert!(!clock.may_skip());
        clock.record(1.002);
        assert!(!clock.may_skip());
    }

    #[test]
    fn reset_forces_the_next_reading() {
        let clock = BusyClock::default();
        clock.record(1.0);
        clock.record(1.0 + 1e-6);
        clock.reset();
        assert!(!clock.may_skip());
    }
}

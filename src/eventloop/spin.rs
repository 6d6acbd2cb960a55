//! Waiting for the default executor by spinning instead of sleeping.
//!
//! A `run_in_executor` round trip on an otherwise idle loop is mostly the
//! kernel waking threads: the loop sleeps in the poller, the worker's
//! `call_soon_threadsafe` writes to the eventfd to wake it, and the woken
//! loop then usually finds the interpreter still held by the worker (which
//! runs on to its next `queue.get()`) and sleeps a second time. Two changes
//! cut both sleeps:
//!
//! - While work the loop gave its own default executor (`LoopExecutor`,
//!   `python/ferroloop/_default_executor.py`) is outstanding and was given
//!   recently, a loop about to sleep spins first, with the interpreter
//!   released, reading the waker's state (no syscall). A wake during the
//!   spin needs no eventfd write (`core/waker.rs`).
//! - The worker hands the outcome over with `_hand_over`: it queues the
//!   callback, and if the loop spins it releases the interpreter *before*
//!   waking it, then waits (briefly) until the loop holds the interpreter.
//!   The loop thus takes a free interpreter and goes on at once; the worker
//!   takes the interpreter back when the loop next releases it, usually by
//!   then with the next work item queued.
//!
//! Bounds: a spin lasts at most [`SPIN_MAX`], never past the next timer,
//! and happens only when nothing is ready (the poll would sleep), work is
//! outstanding, and the last submission is less than [`SPIN_HORIZON`] old:
//! an idle loop never spins, and a long job costs at most a few spins. A
//! signal caught during a spin is handled right after it (a sleeping poll
//! would have been interrupted by it).

use super::callback::CallArgs;
use super::LoopBase;
use crate::core::clock;
use crate::core::waker::Wake;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The longest one spin may last (seconds): longer than a typical
/// round trip's wake-up latency plus a short job, short enough that a
/// wasted spin costs little.
const SPIN_MAX: f64 = 50e-6;

/// Spin only while the last submission is younger than this (seconds):
/// work that has run this long is not a short round trip, and the loop
/// sleeps as usual until it ends.
const SPIN_HORIZON: f64 = 1e-3;

/// How long a worker that woke a spinning loop waits for the loop to take
/// the interpreter before taking it itself (a bound for when the loop's
/// thread is preempted; normally the loop takes it within a microsecond).
const HAND_OVER_WAIT: Duration = Duration::from_micros(20);

impl LoopBase {
    /// Spins instead of sleeping if executor work is outstanding (see the
    /// module docs); `timeout` is the poll's. Returns None if it did not
    /// spin, else whether the spin ended because the loop was woken (the
    /// poll that follows must then not sleep).
    pub(super) fn spin_for_executor(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<bool>> {
        if self.executor_outstanding.load(Ordering::Relaxed) == 0 {
            return Ok(None);
        }
        // A worker that last ran on this CPU will likely be woken here
        // again: spinning would only keep it off the CPU it needs.
        if current_cpu() == self.worker_cpu.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let now = clock::monotonic();
        let last_submit = f64::from_bits(self.last_submit.load(Ordering::Relaxed));
        // False for NaN (never submitted).
        let recent = now - last_submit < SPIN_HORIZON;
        if !recent {
            return Ok(None);
        }
        let limit = timeout.map_or(SPIN_MAX, |t| t.as_secs_f64().min(SPIN_MAX));
        let deadline = now + limit;
        let waker = &self.waker;
        waker.begin_spin();
        let woken = py.detach(|| {
            let mut woken = false;
            'spin: loop {
                for _ in 0..32 {
                    if waker.spin_woken() {
                        woken = true;
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
                if clock::monotonic() >= deadline {
                    break;
                }
            }
            // After this, producers write to the eventfd again.
            waker.end_spin() || woken
        });
        waker.mark_resumed();
        // A signal that arrived during the spin interrupted no syscall: run
        // its handler now, as an interrupted poll would.
        py.check_signals()?;
        Ok(Some(woken))
    }
}

#[pymethods]
impl LoopBase {
    /// `LoopExecutor` queued work for this loop; it will end with
    /// `_hand_over` or `_executor_abandoned`.
    fn _executor_submitted(&self) {
        self.executor_outstanding.fetch_add(1, Ordering::Relaxed);
        self.last_submit
            .store(clock::monotonic().to_bits(), Ordering::Relaxed);
    }

    /// Work counted by `_executor_submitted` ended without an outcome to
    /// hand over (its future was cancelled before it ran).
    fn _executor_abandoned(&self) {
        self.work_ended();
    }

    /// `call_soon_threadsafe(setter, fut, value)` for the worker that ran
    /// counted work: same checks, same handle, same wake-up, except that a
    /// spinning loop is woken with the interpreter released (module docs).
    fn _hand_over(
        slf: &Bound<'_, Self>,
        setter: Bound<'_, PyAny>,
        fut: Bound<'_, PyAny>,
        value: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        this.check_schedule(&setter, "call_soon_threadsafe", true)?;
        let args = PyTuple::new(py, [fut, value])?.unbind();
        Self::schedule_soon(slf, setter, CallArgs::Tuple(args), None)?;
        this.work_ended();
        this.worker_cpu.store(current_cpu(), Ordering::Relaxed);
        let waker = &this.waker;
        if !waker.loop_spins() {
            waker.wake();
            return Ok(());
        }
        let seen = waker.resumed();
        py.detach(|| {
            if waker.wake() == Wake::Notified {
                waker.wait_resumed(seen, HAND_OVER_WAIT);
            }
        });
        Ok(())
    }
}

/// The CPU the calling thread runs on (-1 if unknown): a hint, which may
/// be stale as soon as it is read. glibc answers from rseq or the vDSO,
/// without a syscall.
fn current_cpu() -> i32 {
    // SAFETY: sched_getcpu takes no arguments; -1 on failure.
    unsafe { libc::sched_getcpu() }
}

impl LoopBase {
    /// One piece of counted executor work is over (never below zero: a
    /// miscount is bounded by `SPIN_HORIZON` anyway).
    fn work_ended(&self) {
        let _ = self
            .executor_outstanding
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

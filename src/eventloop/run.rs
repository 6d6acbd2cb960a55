//! One loop iteration, and the loop that repeats it until `stop()`.
//!
//! An iteration, in this order (the same as asyncio's `_run_once`):
//! 1. compute the poll timeout: zero if callbacks are ready or the loop is
//!    stopping, else until the earliest timer, else forever;
//! 2. re-arm the one-shot waits that the last poll woke and that still wait
//!    (`rearm_unfinished_waits`); poll, with the interpreter released; a
//!    signal ends the poll and its Python handler runs here (so Ctrl-C
//!    raises `KeyboardInterrupt` at once).
//!    When callbacks are already waiting, the zero-timeout poll is a syscall
//!    that mostly finds nothing, so it is skipped unless the last poll is
//!    older than [`BUSY_POLL_INTERVAL`] or this is the first iteration of a
//!    run (so `call_soon(stop); run_forever()` still processes I/O once).
//!    Busy loops thus still see I/O within microseconds. Fast busy
//!    iterations without timers may even skip reading the clock for that
//!    decision (`core/busy_clock.rs`). A poll that would sleep while work
//!    given to the default executor is outstanding may be preceded by a
//!    short spin (`spin.rs`);
//! 3. queue the reader/writer callbacks of ready fds;
//! 4. queue the timers that are due;
//! 5. run the callbacks that were queued when this step began — callbacks
//!    they schedule wait for the next iteration.
//!
//! Step 5 is the only place callbacks run.

use super::handle::Handle;
use super::python::{current_thread_id, future_is_done};
use super::{LoopBase, PollBuffers, Slot, SPARE_HANDLES};
use crate::core::clock;
use crate::core::poller::Events;
use crate::errors::os_error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// asyncio caps one poll at a day; so do we (a later timer just means
/// another poll).
const MAX_POLL_SECONDS: f64 = 24.0 * 3600.0;

/// While callbacks keep the loop busy, poll for I/O at least this often.
const BUSY_POLL_INTERVAL: f64 = 50e-6;

/// The buffer a run takes each iteration's snapshot of the ready queue
/// into. The run owns it from one iteration to the next (it is empty
/// between them), so a batch that ran to the end needs no second lock to
/// give anything back, and the queue and the batch just swap allocations.
type Batch = VecDeque<Py<Handle>>;

/// What an iteration learns before polling (`poll_timeout`).
struct PollPlan {
    /// How long the poll may sleep (None: until woken).
    timeout: Option<Duration>,
    /// Timers were scheduled.
    has_timers: bool,
    /// `LoopBase::timers_scheduled` then.
    timers_scheduled: u64,
}

impl PollPlan {
    /// Whether due timers may exist after the poll step: there were timers,
    /// or one was scheduled since.
    fn may_have_due_timers(&self, this: &LoopBase) -> bool {
        self.has_timers || this.timers_scheduled.load(Ordering::Relaxed) != self.timers_scheduled
    }
}

/// The buffers a run of the loop owns while it runs: the batch, and what
/// the poll step fills.
struct RunBuffers {
    batch: Batch,
    poll: PollBuffers,
}

/// Drops a buffer of objects gathered under a lock (dropping them may run
/// Python code, so only once the lock is released). Usually nothing was
/// gathered and the buffer never allocated: then the out-of-line drop call
/// (~20 instructions, paid every iteration) is skipped.
#[inline(always)]
fn drop_gathered<T>(gathered: Vec<T>) {
    if gathered.capacity() == 0 {
        std::mem::forget(gathered);
    } else {
        drop(gathered);
    }
}

impl LoopBase {
    /// How long the poller may sleep, and whether timers are scheduled.
    fn poll_timeout(&self) -> PollPlan {
        let mut sched = self.sched.lock();
        let has_timers = !sched.timers.is_empty();
        let timers_scheduled = self.timers_scheduled.load(Ordering::Relaxed);
        let plan = |timeout| PollPlan {
            timeout,
            has_timers,
            timers_scheduled,
        };
        if !sched.ready.is_empty() || self.stopping.load(Ordering::Acquire) {
            return plan(Some(Duration::ZERO));
        }
        // Cancelled timers found on top are dropped once the lock is free.
        let mut garbage = Vec::new();
        let next = sched.timers.next_deadline(&mut garbage);
        drop(sched);
        drop_gathered(garbage);
        plan(next.map(|when| {
            let delay = when - clock::monotonic();
            // NaN and past deadlines poll without sleeping.
            if delay > 0.0 {
                Duration::from_secs_f64(delay.min(MAX_POLL_SECONDS))
            } else {
                Duration::ZERO
            }
        }))
    }

    /// Re-arms the one-shot registrations the last poll reported (which
    /// disarmed them) for the waits on them that are not finished: a wait
    /// whose callback found nothing (a spurious wake-up, a partial send)
    /// must be called again once the fd is ready, as a level-triggered
    /// reader would be. A finished wait (its future done) is left disarmed:
    /// its done callback, already queued, removes it at no syscall cost.
    /// See `core/registration.rs`.
    fn rearm_unfinished_waits(&self, py: Python<'_>) {
        // Usually nothing was disarmed: return without a lock, and without
        // taking the buffer out (and dropping the empty one left in its
        // place).
        if !self.disarmed_pending.load(Ordering::Acquire) {
            return;
        }
        self.disarmed_pending.store(false, Ordering::Release);
        let mut disarmed = {
            let mut slot = self.disarmed.lock();
            if slot.is_empty() {
                return;
            }
            std::mem::take(&mut *slot)
        };
        for (fd, futures) in &disarmed {
            // The usual case first, without calling into Python: every wait
            // the poll woke has ended since (a `sock_*` wait that completed
            // its future ends itself). An ended or replaced wait needs no
            // re-arming: a replacement armed the fd when it was installed.
            let installed = {
                let fds = self.fds.lock();
                let watch = fds.get(fd);
                [Slot::Reader, Slot::Writer].map(|slot| {
                    let until = watch.and_then(|w| w.watcher(slot)?.until.as_ref());
                    matches!((until, &futures[slot as usize]), (Some(u), Some(f)) if u.is(f))
                })
            };
            if installed == [false; 2] {
                continue;
            }
            // No lock held: `done()` may run Python code. An error counts
            // as not done (re-arming is always safe).
            let finished = [0, 1].map(|i| {
                !installed[i]
                    || futures[i]
                        .as_ref()
                        .is_none_or(|f| future_is_done(f.bind(py)))
            });
            // Every wait still installed is over (a Python wait, whose done
            // callback will remove it). Nothing can have left an unfinished
            // wait disarmed since the poll (installing a wait arms it), so
            // there is nothing to do.
            if finished == [true; 2] {
                continue;
            }
            let mut fds = self.fds.lock();
            let Some(w) = fds.get_mut(fd).filter(|w| w.registration.is_disarmed()) else {
                continue;
            };
            // Finished: the waits still holding the futures found done.
            let finished = [Slot::Reader, Slot::Writer].map(|slot| {
                let i = slot as usize;
                let until = w.watcher(slot).and_then(|w| w.until.as_ref());
                finished[i] && matches!((until, &futures[i]), (Some(u), Some(f)) if u.is(f))
            });
            // An error (the fd was closed) leaves the wait as a closed fd
            // leaves a level-triggered reader: never called.
            let _ = w.update_registration(&self.poller, *fd, finished);
        }
        // Dropped with no lock held; the buffer goes back, keeping its
        // allocation, unless the futures' `done()` filled another.
        disarmed.clear();
        let mut slot = self.disarmed.lock();
        if slot.is_empty() {
            *slot = disarmed;
        }
    }

    /// Polls and queues the callbacks of ready fds, with the run's buffers.
    fn poll_and_dispatch(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
        buffers: &mut PollBuffers,
    ) -> PyResult<()> {
        self.rearm_unfinished_waits(py);
        let PollBuffers { events, handles } = buffers;
        let result = if timeout == Some(Duration::ZERO) {
            self.poller.wait(events, timeout)
        } else {
            py.detach(|| self.poller.wait(events, timeout))
        };
        let outcome = match result {
            Ok(()) => Ok(()),
            // A signal arrived: run its Python handler now. It may raise
            // (KeyboardInterrupt); otherwise carry on with no events.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => py.check_signals(),
            Err(e) => Err(os_error(e)),
        };
        if outcome.is_ok() && !events.is_empty() {
            self.dispatch_io(py, events, handles);
        }
        outcome
    }

    /// Queues the reader/writer handles of ready fds and drains the waker.
    /// `to_queue` is an empty buffer to gather them in; it is left empty.
    fn dispatch_io(&self, py: Python<'_>, ready: &Events, to_queue: &mut Vec<Py<Handle>>) {
        debug_assert!(to_queue.is_empty());
        let waker_fd = self.waker.fd();
        let mut cancelled_fds = Vec::new();
        let mut disarmed = Vec::new();
        {
            let mut fds = self.fds.lock();
            for ev in ready.iter() {
                if ev.fd == waker_fd {
                    self.waker.drain();
                    continue;
                }
                let Some(watch) = fds.get_mut(&ev.fd) else {
                    continue;
                };
                if watch.registration.fired() {
                    let futures = [Slot::Reader, Slot::Writer].map(|slot| {
                        let w = watch.watcher(slot)?;
                        w.until.as_ref().map(|f| f.clone_ref(py))
                    });
                    disarmed.push((ev.fd, futures));
                }
                for (is_ready, slot) in [(ev.readable, Slot::Reader), (ev.writable, Slot::Writer)] {
                    if let (true, Some(h)) = (is_ready, watch.handle(slot)) {
                        if h.get().is_cancelled() {
                            cancelled_fds.push(ev.fd);
                        } else {
                            to_queue.push(h.clone_ref(py));
                        }
                    }
                }
            }
        }
        // Gathered apart (no two locks at once), and usually empty, which
        // costs neither a lock nor an allocation.
        if !disarmed.is_empty() {
            self.disarmed.lock().append(&mut disarmed);
            self.disarmed_pending.store(true, Ordering::Release);
        }
        if !cancelled_fds.is_empty() {
            self.forget_cancelled_watchers(&cancelled_fds);
        }
        self.sched.lock().ready.push_all(to_queue);
    }

    /// Moves the timers due at `now` (loop time) to the ready queue.
    fn queue_due_timers(&self, py: Python<'_>, now: f64) {
        let mut sched = self.sched.lock();
        if sched.timers.is_empty() {
            return;
        }
        let (mut due, mut garbage) = (Vec::new(), Vec::new());
        sched.timers.pop_due(now, &mut due, &mut garbage);
        for timer in due {
            timer.get().mark_fired();
            sched.ready.push(timer.into_bound(py).into_super().unbind());
        }
        drop(sched);
        drop_gathered(garbage);
    }

    /// Keeps an emptied handle for `call_soon` to reuse, unless the pool is
    /// full. Returns whether the pool has room for more.
    fn keep_spare(&self, py: Python<'_>, spare: Py<Handle>) -> bool {
        let mut sched = self.sched.lock();
        if sched.spare_handles.len() < SPARE_HANDLES {
            sched.spare_handles.push(spare);
            return sched.spare_handles.len() < SPARE_HANDLES;
        }
        drop(sched);
        // Freed with no lock held (it holds a reference to the loop). As a
        // Bound: a Py drop checks a thread-local first, and that lookup was
        // hoisted to the top of `run_ready`, ~11 instructions per iteration.
        drop(spare.into_bound(py));
        false
    }

    /// Runs the callbacks queued when this step began. The whole snapshot
    /// is taken under one lock, into `batch` (an empty buffer the run owns:
    /// see `Batch`); if `SystemExit`/`KeyboardInterrupt` stops the run, the
    /// callbacks not yet run go back to the front of the queue, as asyncio
    /// leaves them in its deque.
    fn run_ready(slf: &Bound<'_, Self>, batch: &mut Batch) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        this.sched.lock().ready.take_batch(batch);
        let mut outcome = Ok(());
        let mut spares_wanted = true;
        while let Some(handle) = batch.pop_front() {
            let handle = handle.into_bound(py);
            if handle.get().is_cancelled() {
                continue;
            }
            outcome = if this.is_debug() {
                slf.call_method1(intern!(py, "_run_handle_debug"), (&handle,))
                    .map(drop)
            } else {
                Handle::run(&handle)
            };
            // Emptied for reuse or dropped here, with no lock held: the
            // handle may be the last reference to objects whose finalisers
            // call the loop. Once the spare pool is full, the rest of the
            // batch is freed without being emptied first.
            if outcome.is_ok() && spares_wanted {
                if let Some(spare) = Handle::recycle(handle) {
                    spares_wanted = this.keep_spare(py, spare);
                }
            }
            if outcome.is_err() {
                break;
            }
        }
        if !batch.is_empty() {
            this.sched.lock().ready.restore_batch(batch);
        }
        outcome
    }

    /// Runs `body` with the loop's run buffers (`RunBuffers`), and keeps
    /// them, with their allocations, for the next run. (A run nested in a
    /// callback finds them taken and starts with empty ones.)
    fn with_run_buffers<R>(&self, body: impl FnOnce(&mut RunBuffers) -> R) -> R {
        let mut buffers = RunBuffers {
            batch: self.sched.lock().ready.take_batch_buffer(),
            poll: std::mem::take(&mut *self.poll_buffers.lock()),
        };
        let result = body(&mut buffers);
        let RunBuffers { batch, poll } = buffers;
        self.sched.lock().ready.keep_batch_buffer(batch);
        // What it replaces is empty (or a nested run's, just as good).
        let replaced = std::mem::replace(&mut *self.poll_buffers.lock(), poll);
        drop(replaced);
        result
    }

    /// One full iteration (see the module docs for the order). `first` is
    /// true for the first iteration of a run.
    ///
    /// The clock is read at most once: before a zero-timeout poll (that
    /// reading decides whether the poll may be skipped, and serves as the
    /// poll's time and the timers' "now", since such a poll does not wait),
    /// or after a poll that may have slept. A "now" taken a little early can
    /// only make a timer fire later, never before its deadline. Busy
    /// iterations without timers may skip the reading, and then the poll
    /// (`core/busy_clock.rs`).
    fn run_once(slf: &Bound<'_, Self>, first: bool, buffers: &mut RunBuffers) -> PyResult<()> {
        let this = slf.get();
        let RunBuffers { batch, poll } = buffers;
        let plan = this.poll_timeout();
        let timeout = plan.timeout;
        if timeout == Some(Duration::ZERO) {
            if !first && !plan.has_timers && this.busy_clock.may_skip() {
                return Self::run_ready(slf, batch);
            }
            let now = clock::monotonic();
            this.busy_clock.record(now);
            let last = f64::from_bits(this.last_poll.load(Ordering::Relaxed));
            if first || now - last >= BUSY_POLL_INTERVAL {
                this.poll_and_dispatch(slf.py(), timeout, poll)?;
                this.last_poll.store(now.to_bits(), Ordering::Relaxed);
            }
            if plan.may_have_due_timers(this) {
                this.queue_due_timers(slf.py(), now);
            }
        } else {
            // Outstanding executor work may make the loop spin first
            // (`spin.rs`); woken during the spin, the poll must not sleep.
            let timeout = match this.spin_for_executor(slf.py(), timeout)? {
                None => timeout,
                Some(true) => Some(Duration::ZERO),
                Some(false) => this.poll_timeout().timeout,
            };
            this.poll_and_dispatch(slf.py(), timeout, poll)?;
            let now = clock::monotonic();
            this.busy_clock.reset();
            this.last_poll.store(now.to_bits(), Ordering::Relaxed);
            if plan.may_have_due_timers(this) {
                this.queue_due_timers(slf.py(), now);
            }
        }
        Self::run_ready(slf, batch)
    }
}

#[pymethods]
impl LoopBase {
    /// Marks the loop as running in this thread (part of the Python
    /// `_run_forever_setup`); refuses if it already runs.
    fn _mark_running(&self) -> PyResult<()> {
        self.check_closed()?;
        self.thread_id
            .compare_exchange(0, current_thread_id(), Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(|_| PyRuntimeError::new_err("This event loop is already running"))
    }

    /// Marks the loop as stopped (part of `_run_forever_cleanup`): not
    /// running, and no stop pending.
    fn _mark_stopped(&self) {
        self.stopping.store(false, Ordering::Release);
        self.thread_id.store(0, Ordering::Release);
    }

    /// Runs iterations until `stop()`, between `_run_forever_setup` and
    /// `_run_forever_cleanup` (see the Python `run_forever`).
    fn _run_forever_core(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        this.with_run_buffers(|buffers| {
            let mut first = true;
            loop {
                Self::run_once(slf, first, buffers)?;
                first = false;
                if this.stopping.load(Ordering::Acquire) {
                    return Ok(());
                }
            }
        })
    }

    /// Runs a single iteration (asyncio's private `_run_once`, which loops
    /// embedded in another event loop call after `_run_forever_setup`).
    fn _run_once(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.get().check_closed()?;
        slf.get()
            .with_run_buffers(|buffers| Self::run_once(slf, true, buffers))
    }
}

//! The `LoopBase` pyclass: the Rust half of `ferroloop.Loop`.
//!
//! `ferroloop.Loop` (Python) subclasses this and `asyncio.AbstractEventLoop`.
//! This half holds the state every iteration touches and the hot methods;
//! the Python half holds the rare and version-dependent ones. One asyncio
//! API area per file:
//! - `call_soon.rs`: `call_soon` and `call_soon_threadsafe` (raw vectorcall
//!   methods, added to the class by `register`);
//! - `raw.rs`: adding such raw methods (also `create_future`, `get_debug`);
//! - `raw_args.rs`: binding a raw method's arguments to asyncio's signature,
//!   with CPython's TypeErrors;
//! - `scheduling.rs`: `time`, `create_future`, and the queueing the
//!   scheduling methods share;
//! - `timers.rs`: `call_later` and `call_at` (raw methods);
//! - `callback.rs`: a handle's callback and arguments, and calling them;
//! - `run.rs`: one loop iteration and the run-until-stopped loop;
//! - `fd_watchers.rs`: `add_reader`/`add_writer` and their removal;
//! - `tasks.rs`: `create_task` and the task factory (raw methods);
//! - `lifecycle.rs`: `stop`, `close`, `is_running`, `is_closed`, debug flag;
//! - `spin.rs`: spinning instead of sleeping while default-executor work is
//!   outstanding, and the worker's hand-over of its outcome.
//!
//! Locking rules: the state lives behind short-lived mutexes, never held
//! while Python code runs or while a Python object is dropped (a drop may run
//! a finaliser that calls back into the loop), and never two at a time.

mod call_soon;
mod callback;
pub(crate) use callback::{NativeCall, NativeFn};
mod fd_watchers;
pub mod handle;
mod lifecycle;
pub(crate) mod python;
pub(crate) mod raw;
pub(crate) mod raw_args;
mod run;
mod scheduling;
mod spin;
mod tasks;
mod timers;

use crate::core::busy_clock::BusyClock;
use crate::core::fd_map::FdMap;
use crate::core::poller::{Events, Interest, Poller, Trigger};
use crate::core::ready_queue::ReadyQueue;
use crate::core::registration::Registration;
use crate::core::timer_heap::TimerHeap;
use crate::core::waker::Waker;
use crate::errors::os_error;
use handle::{Handle, TimerHandle};
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Callbacks waiting to run: ready now, or at a deadline.
#[derive(Default)]
pub(crate) struct Scheduler {
    /// Handles to run on the next iteration, in order.
    pub(crate) ready: ReadyQueue<Py<Handle>>,
    /// Handles to run at their deadline.
    pub(crate) timers: TimerHeap<Py<TimerHandle>>,
    /// Handles that ran and that nothing else referenced, emptied for
    /// `call_soon` to reuse (`Handle::recycle`); at most [`SPARE_HANDLES`].
    pub(crate) spare_handles: Vec<Py<Handle>>,
}

/// How many emptied handles a loop keeps for reuse: enough for the
/// callbacks of a busy iteration, few enough not to hold memory after a
/// burst (the rest are freed, and pyo3's own freelist takes them).
pub(crate) const SPARE_HANDLES: usize = 256;

/// One callback registered for an fd: a level watcher (`add_reader`, the
/// transports) or a one-shot wait (`sock_recv` and friends).
pub(crate) struct Watcher {
    /// The callback.
    pub(crate) handle: Py<Handle>,
    /// For a one-shot wait: the future whose completion ends it (its done
    /// callback removes the watcher). None for a level watcher.
    pub(crate) until: Option<Py<PyAny>>,
}

/// The reader and writer callbacks registered for one fd, and what the
/// poller holds for it. An entry with neither callback stays in the table
/// while the poller holds the fd parked (see `core/registration.rs`).
#[derive(Default)]
pub(crate) struct FdWatch {
    /// Runs while the fd is readable.
    pub(crate) reader: Option<Watcher>,
    /// Runs while the fd is writable.
    pub(crate) writer: Option<Watcher>,
    /// The poller's registration of the fd.
    pub(crate) registration: Registration,
}

impl FdWatch {
    /// The watcher in `slot`, if any.
    pub(crate) fn watcher(&self, slot: Slot) -> Option<&Watcher> {
        match slot {
            Slot::Reader => self.reader.as_ref(),
            Slot::Writer => self.writer.as_ref(),
        }
    }

    /// The handle in `slot`, if any.
    pub(crate) fn handle(&self, slot: Slot) -> Option<&Py<Handle>> {
        self.watcher(slot).map(|w| &w.handle)
    }

    /// True when no callback is registered.
    pub(crate) fn is_idle(&self) -> bool {
        self.reader.is_none() && self.writer.is_none()
    }

    /// Brings the poller's registration up to date with the watchers (one
    /// syscall at most). `finished` marks the reader and writer waits whose
    /// future is done: they need no poller (their done callback removes them).
    pub(crate) fn update_registration(
        &mut self,
        poller: &Poller,
        fd: i32,
        finished: [bool; 2],
    ) -> std::io::Result<()> {
        let (mut level, mut once) = (Interest::default(), Interest::default());
        for (slot, finished) in [Slot::Reader, Slot::Writer].into_iter().zip(finished) {
            let Some(w) = self.watcher(slot) else {
                continue;
            };
            let interest = match w.until {
                None => &mut level,
                Some(_) if finished => continue,
                Some(_) => &mut once,
            };
            match slot {
                Slot::Reader => interest.readable = true,
                Slot::Writer => interest.writable = true,
            }
        }
        self.registration.update(poller, fd, level, once)
    }
}

/// Which callback slot of an fd (as an index: reader, writer).
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Reader = 0,
    Writer = 1,
}

/// Every callback a loop held, taken out so the caller can drop them once it
/// holds no lock (a drop may run a finaliser that calls back into the loop).
pub(crate) type TakenCallbacks = (
    std::collections::VecDeque<Py<Handle>>,
    Vec<Py<TimerHandle>>,
    Vec<(i32, FdWatch)>,
    Vec<Disarmed>,
);

/// An fd whose one-shot registration a poll reported (which disarmed it),
/// with the futures of the waits installed on it then (reader, writer).
pub(crate) type Disarmed = (i32, [Option<Py<PyAny>>; 2]);

/// The buffers one poll fills, kept with their allocations from one
/// iteration to the next (allocating and freeing them cost ~150
/// instructions per iteration). A run of the loop owns them while it runs
/// (`run.rs`), so an iteration needs no lock to use them.
#[derive(Default)]
pub(crate) struct PollBuffers {
    /// What the poller reported.
    pub(crate) events: Events,
    /// The handles of the ready fds, gathered under the fd table's lock
    /// before being queued under the scheduler's (never two locks at once).
    /// Always empty between iterations: they are moved to the ready queue.
    pub(crate) handles: Vec<Py<Handle>>,
}

/// State and hot paths of an event loop.
#[pyclass(subclass, frozen, module = "ferroloop._ferroloop")]
pub struct LoopBase {
    /// Ready queue and timer heap.
    pub(crate) sched: Mutex<Scheduler>,
    /// fd -> callbacks registered with `add_reader`/`add_writer`.
    pub(crate) fds: Mutex<FdMap<FdWatch>>,
    /// The OS poller.
    pub(crate) poller: Poller,
    /// Wakes the poller from other threads (`call_soon_threadsafe`).
    pub(crate) waker: Waker,
    /// The buffers of the poll step, kept here between runs (a run takes
    /// them for its duration).
    pub(crate) poll_buffers: Mutex<PollBuffers>,
    /// The fds whose one-shot registration the last poll reported: re-armed
    /// before the next poll if a wait on them is not finished (`run.rs`).
    pub(crate) disarmed: Mutex<Vec<Disarmed>>,
    /// `disarmed` may be non-empty: set when the poll step adds to it, so
    /// that the usual iteration, with nothing there, checks without a lock.
    pub(crate) disarmed_pending: AtomicBool,
    /// Set by `close()`.
    pub(crate) closed: AtomicBool,
    /// Set by `stop()`: the current iteration is the last.
    pub(crate) stopping: AtomicBool,
    /// Debug mode (`set_debug`).
    pub(crate) debug: AtomicBool,
    /// Thread running the loop (`threading.get_ident()`), 0 when not running.
    pub(crate) thread_id: AtomicU64,
    /// Loop time of the last poll (f64 bits); see `run.rs` on busy polling.
    pub(crate) last_poll: AtomicU64,
    /// How many timers were ever scheduled. Changed only under `sched`'s
    /// lock, read without it: an iteration that saw no timers before its
    /// poll skips looking for due ones after it (a lock) unless this moved
    /// (Python code that runs during the poll step, such as a signal
    /// handler, may schedule one).
    pub(crate) timers_scheduled: AtomicU64,
    /// Whether busy iterations may skip reading the clock (`run.rs`).
    pub(crate) busy_clock: BusyClock,
    /// Default-executor work submitted and not yet handed back (`spin.rs`).
    pub(crate) executor_outstanding: AtomicU32,
    /// Loop time of the last default-executor submission (f64 bits).
    pub(crate) last_submit: AtomicU64,
    /// The CPU the last worker handing work back ran on, -1 before any.
    pub(crate) worker_cpu: AtomicI32,
    /// `{"loop": self}`, made once and passed to every `asyncio.Future(...)`
    /// (the constructor only reads it). Visited and cleared by the GC hooks:
    /// it refers back to the loop.
    pub(crate) future_kwargs: Mutex<Option<Py<pyo3::types::PyDict>>>,
    /// The task factory (`set_task_factory`), or None.
    pub(crate) task_factory: Mutex<Option<Py<PyAny>>>,
    /// `self._transports.data`, the fd -> transport dict behind asyncio's
    /// `_ensure_fd_no_transport`, fetched once by the `sock_*` fast paths
    /// (`transports/sock_fast.rs`). It holds no reference to the loop.
    pub(crate) transports_by_fd: pyo3::sync::PyOnceLock<Py<pyo3::types::PyDict>>,
}

impl LoopBase {
    /// True in debug mode.
    pub(crate) fn is_debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    /// Raises asyncio's error when the loop is closed.
    pub(crate) fn check_closed(&self) -> PyResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "Event loop is closed",
            ));
        }
        Ok(())
    }

    /// Empties the ready queue, the timer heap and the fd table.
    pub(crate) fn take_callbacks(&self) -> TakenCallbacks {
        let (ready, timers) = {
            let mut sched = self.sched.lock();
            let mut ready = sched.ready.take_all();
            ready.extend(sched.spare_handles.drain(..));
            (ready, sched.timers.take_all())
        };
        let watches = self.fds.lock().drain().collect();
        let disarmed = std::mem::take(&mut *self.disarmed.lock());
        (ready, timers, watches, disarmed)
    }

    /// Called by `TimerHandle.cancel()` for a timer still in the heap.
    pub(crate) fn timer_cancelled(&self) {
        self.sched.lock().timers.note_cancelled();
    }
}

#[pymethods]
impl LoopBase {
    /// Accepts and ignores any arguments, so Python subclasses are free to
    /// define their own `__init__` signature.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(
        _args: &Bound<'_, pyo3::types::PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Self> {
        let poller = Poller::new().map_err(os_error)?;
        let waker = Waker::new().map_err(os_error)?;
        poller
            .add(
                waker.fd(),
                Interest {
                    readable: true,
                    writable: false,
                },
                Trigger::Level,
            )
            .map_err(os_error)?;
        Ok(LoopBase {
            sched: Mutex::new(Scheduler::default()),
            fds: Mutex::new(FdMap::default()),
            poller,
            waker,
            poll_buffers: Mutex::new(PollBuffers {
                events: Events::default(),
                handles: Vec::with_capacity(64),
            }),
            disarmed: Mutex::new(Vec::new()),
            disarmed_pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            debug: AtomicBool::new(false),
            thread_id: AtomicU64::new(0),
            last_poll: AtomicU64::new(0),
            timers_scheduled: AtomicU64::new(0),
            busy_clock: BusyClock::default(),
            executor_outstanding: AtomicU32::new(0),
            last_submit: AtomicU64::new(f64::NAN.to_bits()),
            worker_cpu: AtomicI32::new(-1),
            future_kwargs: Mutex::new(None),
            task_factory: Mutex::new(None),
            transports_by_fd: pyo3::sync::PyOnceLock::new(),
        })
    }
}

/// Registers the classes on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LoopBase>()?;
    let ty = m.py().get_type::<LoopBase>();
    call_soon::install(&ty)?;
    scheduling::install(&ty)?;
    timers::install(&ty)?;
    tasks::install(&ty)?;
    lifecycle::install(&ty)?;
    m.add_class::<Handle>()?;
    m.add_class::<TimerHandle>()?;
    Ok(())
}

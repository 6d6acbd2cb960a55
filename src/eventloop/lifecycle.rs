//! Loop state transitions: stop, close, running and debug flags.

use super::handle::{timer_as_handle, Handle};
use super::{raw, LoopBase};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyType};
use pyo3::{ffi, PyTraverseError};
use std::sync::atomic::Ordering;

#[pymethods]
impl LoopBase {
    /// Reports what the loop's callbacks reference (queued, scheduled, fd
    /// watchers) to the cycle collector, so a loop dropped without `close()`
    /// is still collected (and warns "unclosed event loop"), as the stock
    /// loop is. See `Handle::visit_if_owned` for why handles are seen
    /// through rather than visited.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // The collector stops the world, so these locks are free; try_lock
        // only rules out any chance of deadlocking inside the collector.
        if let Some(sched) = self.sched.try_lock() {
            for handle in sched.ready.iter() {
                Handle::visit_if_owned(handle, &visit)?;
            }
            for timer in sched.timers.iter() {
                Handle::visit_if_owned(timer_as_handle(timer), &visit)?;
            }
            // Spare handles hold nothing but the loop itself.
            for handle in &sched.spare_handles {
                Handle::visit_if_owned(handle, &visit)?;
            }
        }
        if let Some(kwargs) = self.future_kwargs.try_lock() {
            visit.call(&*kwargs)?;
        }
        if let Some(factory) = self.task_factory.try_lock() {
            visit.call(&*factory)?;
        }
        if let Some(fds) = self.fds.try_lock() {
            for watch in fds.values() {
                for w in [&watch.reader, &watch.writer].into_iter().flatten() {
                    Handle::visit_if_owned(&w.handle, &visit)?;
                    visit.call(&w.until)?;
                }
            }
        }
        if let Some(disarmed) = self.disarmed.try_lock() {
            for (_, futures) in disarmed.iter() {
                for f in futures {
                    visit.call(f)?;
                }
            }
        }
        Ok(())
    }

    /// Breaks cycles by dropping every queued and scheduled callback.
    fn __clear__(&self) {
        let kwargs = self.future_kwargs.lock().take();
        let factory = self.task_factory.lock().take();
        drop((kwargs, factory));
        drop(self.take_callbacks());
    }

    /// Stops the loop after the current iteration.
    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// True while `run_forever` is running.
    fn is_running(&self) -> bool {
        self.thread_id.load(Ordering::Acquire) != 0
    }

    /// True once `close()` was called.
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// `is_closed()` as the stock loop's private attribute, which code
    /// written for it (and uvloop's test suite) reads.
    #[getter]
    fn _closed(&self) -> bool {
        self.is_closed()
    }

    /// Sets the debug flag (the Python `set_debug` wraps this).
    fn _set_debug_flag(&self, enabled: bool) {
        self.debug.store(enabled, Ordering::Relaxed);
    }

    /// `threading.get_ident()` of the thread running the loop, or None.
    #[getter]
    fn _thread_id(&self) -> Option<u64> {
        match self.thread_id.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// Whether `stop()` was called and the loop has not yet stopped.
    #[getter]
    fn _stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Marks the loop closed and releases everything it holds: queued
    /// callbacks, timers, fd registrations, the poller and the waker. The
    /// Python `close()` checks that the loop is not running first.
    fn _close_core(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let callbacks = self.take_callbacks();
        self.poller.close();
        self.waker.close();
        drop(callbacks);
    }

    /// Number of callbacks in the ready queue (for tests and debugging).
    fn _ready_count(&self) -> usize {
        self.sched.lock().ready.len()
    }

    /// Number of entries in the timer heap, cancelled ones included.
    fn _timer_count(&self) -> usize {
        self.sched.lock().timers.len()
    }
}

/// `get_debug`, a raw `METH_NOARGS` method (see `raw.rs`): the C
/// `asyncio.Future` calls it for every future created.
pub(crate) fn install_get_debug(ty: &Bound<'_, PyType>) -> PyResult<()> {
    raw::add_method(
        ty,
        c"get_debug",
        ffi::PyMethodDefPointer {
            PyCFunction: get_debug,
        },
        ffi::METH_NOARGS,
        c"get_debug($self, /)\n--\n\nTrue in debug mode.",
    )
}

/// True in debug mode.
unsafe extern "C" fn get_debug(
    slf: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls METH_NOARGS methods attached to the interpreter.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: the method descriptor checked that `slf` is a LoopBase (or
    // subclass) instance, borrowed for the duration of the call.
    let slf = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<LoopBase>() };
    // Cannot fail nor panic: no `guard` needed.
    PyBool::new(py, slf.get().is_debug()).to_owned().into_ptr()
}

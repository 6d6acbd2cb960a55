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

    /// `is_closed()` as the stock loop's private attribute, which code
    /// written for it (and uvloop's test suite) reads.
    #[getter]
    fn _closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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

/// Adds the raw methods of this module (see `raw.rs`): `get_debug`, which
/// the C `asyncio.Future` calls for every future created, and `stop`,
/// `is_running` and `is_closed`, raw for asyncio's wording of a wrong call.
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    raw::add_fastcall_methods(
        ty,
        &[
            (
                c"get_debug",
                get_debug,
                c"get_debug($self, /)\n--\n\nTrue in debug mode.",
            ),
            (
                c"stop",
                stop,
                c"stop($self, /)\n--\n\nStops the loop after the current iteration.",
            ),
            (
                c"is_running",
                is_running,
                c"is_running($self, /)\n--\n\nTrue while `run_forever` is running.",
            ),
            (
                c"is_closed",
                is_closed,
                c"is_closed($self, /)\n--\n\nTrue once `close()` was called.",
            ),
        ],
    )
}

/// True in debug mode.
unsafe extern "C" fn get_debug(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>, slf: Borrowed<'_, '_, LoopBase>| {
        // Cannot fail nor panic: no `guard` needed (same for the three below).
        PyBool::new(py, slf.get().is_debug()).to_owned().into_ptr()
    };
    // SAFETY: CPython calls this raw method of LoopBase with its own
    // arguments (`raw::without_arguments`' contract).
    unsafe { raw::without_arguments("get_debug", slf, nargs, kwnames, body) }
}

/// Stops the loop after the current iteration.
unsafe extern "C" fn stop(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>, slf: Borrowed<'_, '_, LoopBase>| {
        slf.get().stopping.store(true, Ordering::Release);
        py.None().into_ptr()
    };
    // SAFETY: as in `get_debug`.
    unsafe { raw::without_arguments("stop", slf, nargs, kwnames, body) }
}

/// True while `run_forever` is running.
unsafe extern "C" fn is_running(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>, slf: Borrowed<'_, '_, LoopBase>| {
        let running = slf.get().thread_id.load(Ordering::Acquire) != 0;
        PyBool::new(py, running).to_owned().into_ptr()
    };
    // SAFETY: as in `get_debug`.
    unsafe { raw::without_arguments("is_running", slf, nargs, kwnames, body) }
}

/// True once `close()` was called.
unsafe extern "C" fn is_closed(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>, slf: Borrowed<'_, '_, LoopBase>| {
        let closed = slf.get().closed.load(Ordering::Acquire);
        PyBool::new(py, closed).to_owned().into_ptr()
    };
    // SAFETY: as in `get_debug`.
    unsafe { raw::without_arguments("is_closed", slf, nargs, kwnames, body) }
}

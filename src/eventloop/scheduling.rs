//! Scheduling: `time` and `create_future`, and the checks and queueing
//! `call_soon`/`call_soon_threadsafe` (`call_soon.rs`) and `call_later`/
//! `call_at` (`timers.rs`) share. These are the hottest methods of the loop: the C
//! `asyncio.Task` calls `call_soon` on every step.

use super::callback::CallArgs;
use super::handle::{new_untracked, Handle, TimerHandle};
use super::python::{current_thread_id, future_type, support};
use super::{raw, LoopBase};
use crate::core::clock;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyTuple, PyType};
use pyo3::{ffi, intern};
use std::sync::atomic::Ordering;

impl LoopBase {
    /// The checks every scheduling method starts with: the loop is open
    /// and, in debug mode, the call comes from the loop's thread (unless
    /// `threadsafe`) with a callable that is not a coroutine. Inlined: out
    /// of line, the call cost `call_soon` a sixth of its own work.
    #[inline(always)]
    pub(crate) fn check_schedule(
        &self,
        callback: &Bound<'_, PyAny>,
        method: &str,
        threadsafe: bool,
    ) -> PyResult<()> {
        self.check_closed()?;
        if !self.is_debug() {
            return Ok(());
        }
        if !threadsafe {
            self.check_thread()?;
        }
        support(callback.py())?
            .call_method1(intern!(callback.py(), "check_callback"), (callback, method))?;
        Ok(())
    }

    /// In debug mode, asyncio refuses non-thread-safe calls from a thread
    /// other than the one running the loop.
    pub(crate) fn check_thread(&self) -> PyResult<()> {
        let owner = self.thread_id.load(Ordering::Acquire);
        if owner != 0 && owner != current_thread_id() {
            return Err(PyRuntimeError::new_err(
                "Non-thread-safe operation invoked on an event loop other than the current one",
            ));
        }
        Ok(())
    }

    /// Queues a new handle for the next iteration.
    pub(crate) fn schedule_soon(
        slf: &Bound<'_, Self>,
        callback: Bound<'_, PyAny>,
        args: CallArgs,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let this = slf.get();
        // Debug-mode handles carry their creation traceback: always new.
        let spare = match this.is_debug() {
            false => this.sched.lock().spare_handles.pop(),
            true => None,
        };
        let handle = match spare {
            Some(handle) => {
                Handle::refill(&handle, callback, args, context)?;
                handle
            }
            None => new_untracked(py, Handle::build_with(slf, callback, args, context)?)?,
        };
        slf.get().sched.lock().ready.push(handle.clone_ref(py));
        Ok(handle)
    }

    /// Schedules a timer at `when` (seconds on the loop clock).
    pub(crate) fn schedule_at(
        slf: &Bound<'_, Self>,
        when: f64,
        callback: Bound<'_, PyAny>,
        args: CallArgs,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        let py = slf.py();
        let base = Handle::build_with(slf, callback, args, context)?;
        let timer = new_untracked(py, TimerHandle::build(when, base))?;
        let this = slf.get();
        let mut sched = this.sched.lock();
        sched.timers.push(when, timer.clone_ref(py));
        // Under the lock, the only place it changes: no atomic add needed.
        let scheduled = this.timers_scheduled.load(Ordering::Relaxed);
        this.timers_scheduled
            .store(scheduled + 1, Ordering::Relaxed);
        drop(sched);
        Ok(timer)
    }
}

/// Converts a `when`/`delay` argument to seconds, accepting what Python's
/// arithmetic accepts (int, float, objects with `__float__`).
pub(crate) fn seconds(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(f.value());
    }
    value.extract::<f64>()
}

#[pymethods]
impl LoopBase {
    /// Wakes the loop if it sleeps in the poller (asyncio's private
    /// `_write_to_self`, used by some libraries).
    fn _write_to_self(&self) {
        self.waker.wake();
    }
}

/// Adds the raw methods of this module (see `raw.rs`): `create_future`
/// (every `await` on a loop-made future starts there, and pyo3's trampoline
/// was a fifth of the loop's own part of it), and `time`, raw for asyncio's
/// wording of a wrong call.
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    raw::add_fastcall_methods(
        ty,
        &[
            (
                c"create_future",
                create_future,
                c"create_future($self, /)\n--\n\nA new `asyncio.Future` attached to this loop.",
            ),
            (
                c"time",
                time,
                c"time($self, /)\n--\n\nThe loop's clock: `time.monotonic()`.",
            ),
        ],
    )
}

/// The loop's clock: `time.monotonic()`.
unsafe extern "C" fn time(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>, _: Borrowed<'_, '_, LoopBase>| {
        // Cannot fail nor panic: no `guard` needed.
        PyFloat::new(py, clock::monotonic()).into_ptr()
    };
    // SAFETY: CPython calls this raw method of LoopBase with its own
    // arguments (`raw::without_arguments`' contract).
    unsafe { raw::without_arguments("time", slf, nargs, kwnames, body) }
}

/// A new `asyncio.Future` attached to this loop: `Future(loop=self)`.
unsafe extern "C" fn create_future(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>, slf: Borrowed<'_, '_, LoopBase>| {
        raw::guard(py, || {
            let kwargs = LoopBase::loop_kwargs(&slf)?;
            let empty = PyTuple::empty(py);
            // SAFETY: the three objects are live for the call (we hold
            // them); it returns a new reference, or NULL with an
            // exception set.
            let fut = unsafe {
                Bound::from_owned_ptr_or_err(
                    py,
                    ffi::PyObject_Call(future_type(py)?.as_ptr(), empty.as_ptr(), kwargs.as_ptr()),
                )
            }?;
            Ok(fut.into_ptr())
        })
    };
    // SAFETY: CPython calls this raw method of LoopBase with its own
    // arguments (`raw::without_arguments`' contract).
    unsafe { raw::without_arguments("create_future", slf, nargs, kwnames, body) }
}

//! Python objects the Rust layer uses, imported once, and the small unsafe
//! helpers around CPython's context API.

use super::callback::BoundArgs;
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;
use pyo3::{ffi, intern};

static SUPPORT: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `ferroloop._support`: the Python helpers for rare paths (reprs, debug
/// stacks, argument checks), so the hot paths here stay free of them.
pub fn support(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    SUPPORT
        .get_or_try_init(py, || {
            Ok(PyModule::import(py, "ferroloop._support")?.unbind())
        })
        .map(|m| m.bind(py))
}

/// `asyncio.Future` (the C implementation when available).
pub fn future_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static FUTURE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    FUTURE
        .get_or_try_init(py, || {
            Ok(PyModule::import(py, "asyncio")?.getattr("Future")?.unbind())
        })
        .map(|f| f.bind(py))
}

/// `fut.done()`, false if that fails (for callers to whom re-checking is
/// always safe). For an exact `asyncio.Future`, the method is called
/// without looking it up: that lookup goes through the interpreter's method
/// cache, whose collisions (they depend on the hash seed) made it a visible
/// part of a `sock_recv` wait.
pub fn future_is_done(fut: &Bound<'_, PyAny>) -> bool {
    static DONE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = fut.py();
    let exact_done = future_type(py).ok().and_then(|t| {
        if !fut.get_type().is(t) {
            return None;
        }
        DONE.get_or_try_init(py, || {
            Ok::<_, PyErr>(t.getattr(intern!(py, "done"))?.unbind())
        })
        .ok()
    });
    let result = match exact_done {
        Some(done) => done.bind(py).call1((fut,)),
        None => fut.call_method0(intern!(py, "done")),
    };
    result.and_then(|d| d.is_truthy()).unwrap_or(false)
}

/// `asyncio.Task` (the C implementation when available).
pub fn task_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static TASK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    TASK.get_or_try_init(py, || {
        Ok(PyModule::import(py, "asyncio")?.getattr("Task")?.unbind())
    })
    .map(|t| t.bind(py))
}

/// A new `contextvars.Context`, a copy of the current one, as asyncio's
/// handles take when no `context=` is given.
pub fn copy_current_context(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: we are attached to the interpreter (`py`); the call returns a
    // new reference or NULL with an exception set, both handled here.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }.map(Bound::unbind)
}

/// Calls `func(*args)` inside `context`, like `context.run(func, *args)`.
pub fn call_in_context<'py>(
    context: &Bound<'py, PyAny>,
    func: &Bound<'py, PyAny>,
    args: &BoundArgs<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    if !is_real_context(context) {
        // Not a real Context: let its own `run` decide (and fail) as
        // asyncio's `self._context.run(...)` would.
        return args.run_in(context, func);
    }
    run_in_real_context(context, || args.call(func))
}

/// True if `context` is a `contextvars.Context` (and not a stand-in whose
/// own `run` must be called).
pub fn is_real_context(context: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `context` is a live object (we hold it).
    unsafe { ffi::PyContext_CheckExact(context.as_ptr()) != 0 }
}

/// Runs `body` with `context` entered, as `context.run` would; `context`
/// must be a real Context (`is_real_context`).
pub fn run_in_real_context<R>(
    context: &Bound<'_, PyAny>,
    body: impl FnOnce() -> PyResult<R>,
) -> PyResult<R> {
    let py = context.py();
    let ctx = context.as_ptr();
    debug_assert!(is_real_context(context));
    // SAFETY: `ctx` is a Context (the caller checked; PyContext_Enter would
    // also refuse anything else with a TypeError). Enter/Exit are balanced
    // below and report failures (e.g. a context already entered) as -1
    // with an exception set, which we fetch.
    if unsafe { ffi::PyContext_Enter(ctx) } < 0 {
        return Err(PyErr::fetch(py));
    }
    let result = body();
    // SAFETY: balances the successful Enter above.
    if unsafe { ffi::PyContext_Exit(ctx) } < 0 {
        return Err(PyErr::fetch(py));
    }
    result
}

/// True for the exceptions asyncio lets escape from callbacks and the loop:
/// `SystemExit` and `KeyboardInterrupt`.
pub fn is_exit_exception(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py)
}

/// The current thread's id, equal to `threading.get_ident()`.
pub fn current_thread_id() -> u64 {
    // SAFETY: PyThread_get_thread_ident has no preconditions.
    unsafe { ffi::PyThread_get_thread_ident() as u64 }
}

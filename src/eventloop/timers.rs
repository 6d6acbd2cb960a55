//! `call_at` and `call_later`, as raw `METH_FASTCALL | METH_KEYWORDS`
//! methods of `LoopBase` (`raw.rs`).
//!
//! Why raw: with `#[pymethods]`, pyo3 worded a wrong call's TypeError with
//! the Rust class and counted positional arguments without `self`
//! (`LoopBase.call_at() missing ...`); `raw_args.rs` raises asyncio's
//! messages word for word. It also skips pyo3's trampoline and the `*args`
//! tuple: none or one callback argument is stored without one
//! (`callback.rs`), as for `call_soon`.

use super::callback::CallArgs;
use super::raw_args::{Param, Parsed, Signature, LOOP_OWNER};
use super::scheduling::seconds;
use super::{raw, LoopBase};
use crate::core::clock;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyType};

/// asyncio's `call_at(self, when, callback, *args, context=None)`.
static CALL_AT: Signature<2, 1> = Signature {
    owner: LOOP_OWNER,
    method: "call_at",
    positional: [Param::new(c"when"), Param::new(c"callback")],
    var_args: true,
    keyword_only: [Param::new(c"context")],
};

/// asyncio's `call_later(self, delay, callback, *args, context=None)`.
static CALL_LATER: Signature<2, 1> = Signature {
    owner: LOOP_OWNER,
    method: "call_later",
    positional: [Param::new(c"delay"), Param::new(c"callback")],
    var_args: true,
    keyword_only: [Param::new(c"context")],
};

/// Which of the two methods an entry point implements.
#[derive(Clone, Copy)]
enum Method {
    /// `call_at`: the first argument is the deadline on the loop clock.
    At,
    /// `call_later`: the first argument is a delay from now.
    Later,
}

/// Adds the two methods to `LoopBase` (once, at module init).
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    raw::add_fastcall_methods(
        ty,
        &[
            (
                c"call_at",
                call_at,
                c"call_at($self, when, callback, *args, context=None)\n--\n\n\
                  Schedules `callback(*args)` at loop time `when`.",
            ),
            (
                c"call_later",
                call_later,
                c"call_later($self, delay, callback, *args, context=None)\n--\n\n\
                  Schedules `callback(*args)` after `delay` seconds.",
            ),
        ],
    )
}

/// The `call_at` method (vectorcall convention).
unsafe extern "C" fn call_at(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this as a METH_FASTCALL|METH_KEYWORDS method of
    // LoopBase, which is what `entry` requires.
    unsafe { entry(slf, args, nargs, kwnames, Method::At) }
}

/// The `call_later` method (vectorcall convention).
unsafe extern "C" fn call_later(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as for `call_at`.
    unsafe { entry(slf, args, nargs, kwnames, Method::Later) }
}

/// Binds the arguments and runs `schedule`, raising its error (or a panic).
///
/// # Safety
/// Called by CPython through a method descriptor of `LoopBase`, with that
/// method's own arguments (`raw::with_bound_arguments`' contract).
#[inline(always)]
unsafe fn entry(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    method: Method,
) -> *mut ffi::PyObject {
    let signature = match method {
        Method::At => &CALL_AT,
        Method::Later => &CALL_LATER,
    };
    let body = |loop_: Borrowed<'_, '_, LoopBase>, bound: Parsed<'_, 2, 1>| {
        // SAFETY: the bound arguments are live for the call.
        unsafe { schedule(loop_, bound, method) }
    };
    // SAFETY: forwarded from this function's contract.
    unsafe { raw::with_bound_arguments(signature, slf, args, nargs, kwnames, body) }
}

/// Runs asyncio's checks in its order and pushes the timer; returns a new
/// reference to it.
///
/// # Safety
/// The pointers in `bound` are live objects borrowed for the call.
#[inline(always)]
unsafe fn schedule(
    loop_: Borrowed<'_, '_, LoopBase>,
    bound: Parsed<'_, 2, 1>,
    method: Method,
) -> PyResult<*mut ffi::PyObject> {
    let py = loop_.py();
    // SAFETY (for every `from_ptr` below): the bound arguments are live
    // objects borrowed for the call (this function's contract).
    let [first, callback] = bound
        .positional
        .map(|p| unsafe { Borrowed::from_ptr(py, p) });
    let context = match bound.keyword_only[0] {
        p if p.is_null() => None,
        p => Some(unsafe { Borrowed::from_ptr(py, p) }).filter(|c| !c.is_none()),
    };
    let when = match method {
        Method::At => {
            if first.is_none() {
                return Err(PyTypeError::new_err("when cannot be None"));
            }
            None // converted after the checks, as before
        }
        Method::Later => {
            if first.is_none() {
                return Err(PyTypeError::new_err("delay must not be None"));
            }
            let now = clock::monotonic();
            // `loop.time() + delay` with Python's arithmetic, so odd delays
            // fail (or succeed) exactly as they do on the stock loop.
            Some(match first.cast::<PyFloat>() {
                Ok(f) => now + f.value(),
                Err(_) => seconds(&PyFloat::new(py, now).add(&*first)?)?,
            })
        }
    };
    let callback = callback.to_owned();
    // `call_later` calls `call_at` on the stock loop: its debug checks name
    // `call_at`.
    loop_.get().check_schedule(&callback, "call_at", false)?;
    let when = match when {
        Some(when) => when,
        None => seconds(&first)?,
    };
    // SAFETY: pointers from the call, live for its duration.
    let call_args = unsafe { CallArgs::from_call(py, bound.var_args) }?;
    let context = context.map(|c| c.to_owned());
    let timer = LoopBase::schedule_at(&loop_, when, callback, call_args, context)?;
    Ok(timer.into_ptr())
}

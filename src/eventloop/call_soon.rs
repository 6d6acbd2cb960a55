//! `call_soon` and `call_soon_threadsafe`, as raw `METH_FASTCALL |
//! METH_KEYWORDS` methods of `LoopBase`.
//!
//! Why not `#[pymethods]`: the C `asyncio.Future` calls
//! `loop.call_soon(callback, fut, context=ctx)` for every done callback and
//! the C `asyncio.Task` `loop.call_soon(step, context=ctx)` for every step,
//! so these two are the loop's most frequent entry points. pyo3's argument
//! parsing copied `*args` into a new tuple and matched each keyword name by
//! comparing UTF-8 (~280 instructions of a ~820-instruction `call_soon`).
//! Here the positional arguments stay in the caller's vector (none or one is
//! stored without a tuple, see `callback.rs`) and the keyword name is
//! recognised by pointer (Python code passes the interned "context"; the C
//! `_asyncio` module passes a string of its own, which is compared once and
//! then recognised by pointer too).
//!
//! Wrong calls raise the TypeErrors asyncio's Python methods raise, with
//! the same wording (`BaseEventLoop.call_soon() missing 1 required
//! positional argument: 'callback'`, ...).

use super::callback::CallArgs;
use super::raw_args::LOOP_OWNER;
use super::{raw, LoopBase};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};
use pyo3::{ffi, intern};
use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Which of the two methods an entry point implements.
#[derive(Clone, Copy)]
enum Method {
    /// `call_soon`.
    Soon,
    /// `call_soon_threadsafe`: no thread check in debug mode, wakes the loop.
    Threadsafe,
}

impl Method {
    /// The name asyncio's debug-mode checks and messages use.
    fn name(self) -> &'static str {
        match self {
            Method::Soon => "call_soon",
            Method::Threadsafe => "call_soon_threadsafe",
        }
    }
}

/// Adds the two methods to `LoopBase` (called once, when the module is
/// initialised, after the class exists).
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    raw::add_fastcall_methods(
        ty,
        &[
            (
                c"call_soon",
                call_soon,
                c"call_soon($self, callback, *args, context=None)\n--\n\n\
                  Schedules `callback(*args)` for the next iteration.",
            ),
            (
                c"call_soon_threadsafe",
                call_soon_threadsafe,
                c"call_soon_threadsafe($self, callback, *args, context=None)\n--\n\n\
                  Like `call_soon`, from any thread: also wakes the loop.",
            ),
        ],
    )
}

/// The `call_soon` method (vectorcall convention).
unsafe extern "C" fn call_soon(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this as a METH_FASTCALL|METH_KEYWORDS method,
    // which is exactly what `entry` requires.
    unsafe { entry(slf, args, nargs, kwnames, Method::Soon) }
}

/// The `call_soon_threadsafe` method (vectorcall convention).
unsafe extern "C" fn call_soon_threadsafe(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as for `call_soon`.
    unsafe { entry(slf, args, nargs, kwnames, Method::Threadsafe) }
}

/// Runs `schedule` and turns its error, or a panic, into a raised Python
/// exception (`raw::guard`).
///
/// # Safety
/// Called by CPython through a method descriptor of `LoopBase` with the
/// interpreter attached: `slf` is an instance of `LoopBase` (the descriptor
/// checks the type before calling), `args` holds `nargs` positional
/// arguments followed by one value per name in `kwnames` (a tuple of str,
/// or NULL), all borrowed for the duration of the call.
unsafe fn entry(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    method: Method,
) -> *mut ffi::PyObject {
    // SAFETY: the interpreter is attached (we are called by it).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: forwarded from this function's contract.
    raw::guard(py, || unsafe {
        schedule(py, slf, args, nargs, kwnames, method)
    })
}

/// Parses the arguments as asyncio's `call_soon(self, callback, *args,
/// context=None)` would and queues the handle; returns a new reference to it.
///
/// # Safety
/// As for `entry`.
unsafe fn schedule(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    method: Method,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: the descriptor checked that `slf` is a LoopBase (or subclass)
    // instance, and it is borrowed for the call.
    let loop_ = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<LoopBase>() };
    let nargs = nargs as usize;
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: a non-NULL `kwnames` is a tuple (vectorcall protocol).
        unsafe { ffi::PyTuple_GET_SIZE(kwnames) as usize }
    };
    let all: &[*mut ffi::PyObject] = if nargs + nkw == 0 {
        &[]
    } else {
        // SAFETY: `args` holds `nargs + nkw` live borrowed pointers.
        unsafe { std::slice::from_raw_parts(args, nargs + nkw) }
    };
    // SAFETY (for every `from_ptr` below): the pointers in `all` and in
    // `kwnames` are live objects borrowed for the duration of the call.
    let arg = |p: *mut ffi::PyObject| unsafe { Borrowed::from_ptr(py, p) };
    let (positional, keyword_values) = all.split_at(nargs);
    let mut callback = positional.first().copied();
    let mut context = None;
    for (i, &value) in keyword_values.iter().enumerate() {
        // SAFETY: `i < nkw`, the size of the `kwnames` tuple.
        let name = unsafe { ffi::PyTuple_GET_ITEM(kwnames, i as ffi::Py_ssize_t) };
        if is_context_name(py, name) {
            context = Some(value);
        } else if is_name(name, c"callback") && callback.is_none() {
            callback = Some(value);
        } else if is_name(name, c"callback") {
            return Err(bad_call(
                method,
                "got multiple values for argument 'callback'",
            ));
        } else {
            let name = arg(name).str()?;
            return Err(bad_call(
                method,
                &format!("got an unexpected keyword argument '{name}'"),
            ));
        }
    }
    let Some(callback) = callback else {
        return Err(bad_call(
            method,
            "missing 1 required positional argument: 'callback'",
        ));
    };
    let callback = arg(callback).to_owned();
    let context = context
        .map(arg)
        .filter(|c| !c.is_none())
        .map(|c| c.to_owned());
    let threadsafe = matches!(method, Method::Threadsafe);
    loop_
        .get()
        .check_schedule(&callback, method.name(), threadsafe)?;
    // SAFETY: pointers from the call, live for its duration.
    let call_args = unsafe { CallArgs::from_call(py, positional.get(1..).unwrap_or(&[])) }?;
    let handle = LoopBase::schedule_soon(&loop_, callback, call_args, context)?;
    if threadsafe {
        loop_.get().waker.wake();
    }
    Ok(handle.into_ptr())
}

/// asyncio's TypeError for a wrong call, worded as for its Python method.
fn bad_call(method: Method, problem: &str) -> PyErr {
    PyTypeError::new_err(format!("{LOOP_OWNER}.{}() {problem}", method.name()))
}

/// True if the keyword name `name` (a str) is `expected`.
fn is_name(name: *mut ffi::PyObject, expected: &CStr) -> bool {
    // SAFETY: `name` is a live str; this comparison never raises.
    unsafe { ffi::PyUnicode_CompareWithASCIIString(name, expected.as_ptr()) == 0 }
}

/// A "context" string other than the interned one, seen as a keyword name
/// before (the C `_asyncio` module builds its own for every done callback).
/// It holds a reference that is never released, so the address cannot be
/// reused by another object while we compare against it.
static OTHER_CONTEXT_NAME: AtomicPtr<ffi::PyObject> = AtomicPtr::new(ptr::null_mut());

/// True if the keyword name `name` (a str) is "context": by pointer for the
/// interned string and for the one `OTHER_CONTEXT_NAME` remembers, by value
/// otherwise.
fn is_context_name(py: Python<'_>, name: *mut ffi::PyObject) -> bool {
    let interned: &Bound<'_, PyString> = intern!(py, "context");
    if ptr::eq(name, interned.as_ptr()) || ptr::eq(name, OTHER_CONTEXT_NAME.load(Ordering::Acquire))
    {
        return true;
    }
    if !is_name(name, c"context") {
        return false;
    }
    // SAFETY: `name` is live; the new reference is kept forever if stored
    // (see OTHER_CONTEXT_NAME), released at once if another thread stored
    // one first.
    unsafe {
        ffi::Py_INCREF(name);
        if OTHER_CONTEXT_NAME
            .compare_exchange(ptr::null_mut(), name, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            ffi::Py_DECREF(name);
        }
    }
    true
}

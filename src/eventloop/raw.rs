//! Raw CPython methods of `LoopBase`: methods defined with a plain
//! `PyMethodDef` and added to the class at module init, instead of through
//! `#[pymethods]`, for the few that run once per callback or per future.
//!
//! Why: pyo3's method trampoline (attached-thread bookkeeping in
//! thread-locals, the deferred-decref pool check, its own argument
//! handling) costs ~60 instructions per call, as much as the body of
//! `get_debug` or `create_future` many times over. `call_soon.rs` explains
//! the same choice for `call_soon`.

use super::raw_args::{Parsed, Signature, LOOP_OWNER};
use super::LoopBase;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::PyType;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// Adds a method to `ty`, with `name`, `meth` (of the calling convention
/// `flags` says) and docstring `doc` (which carries the text signature).
fn add_method(
    ty: &Bound<'_, PyType>,
    name: &'static CStr,
    meth: ffi::PyMethodDefPointer,
    flags: std::os::raw::c_int,
    doc: &'static CStr,
) -> PyResult<()> {
    // The definition must outlive the descriptor, which lives as long as the
    // class: leaked on purpose (a few small structs per interpreter).
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: meth,
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    }));
    // SAFETY: `ty` is a live type object and `def` a valid definition that
    // is never freed (the caller pairs `meth` with the `flags` describing its
    // signature); the call returns a new reference or NULL with an exception
    // set.
    let descr = unsafe {
        Bound::from_owned_ptr_or_err(ty.py(), ffi::PyDescr_NewMethod(ty.as_type_ptr(), def))
    }?;
    let name = name
        .to_str()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    ty.setattr(name, descr)
}

/// A raw method: its name, its `METH_FASTCALL | METH_KEYWORDS` function
/// and its docstring (which carries the text signature).
pub(crate) type FastcallMethod = (
    &'static CStr,
    ffi::PyCFunctionFastWithKeywords,
    &'static CStr,
);

/// Adds `methods` to `ty`. Every raw method uses this convention, even one
/// that takes no argument (it starts with `no_arguments`): METH_NOARGS
/// would word a wrong call "Loop.time() takes no arguments (1 given)" where
/// asyncio's Python method says "BaseEventLoop.time() takes 1 positional
/// argument but 2 were given"; the call itself costs the same.
pub(crate) fn add_fastcall_methods(
    ty: &Bound<'_, PyType>,
    methods: &[FastcallMethod],
) -> PyResult<()> {
    for &(name, meth, doc) in methods {
        add_method(
            ty,
            name,
            ffi::PyMethodDefPointer {
                PyCFunctionFastWithKeywords: meth,
            },
            ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            doc,
        )?;
    }
    Ok(())
}

/// Runs the body of a raw method: returns the new reference it made, or
/// raises its error (or a panic, which must not unwind into C) and returns
/// NULL, as CPython expects of a C method.
pub(crate) fn guard<F>(py: Python<'_>, body: F) -> *mut ffi::PyObject
where
    F: FnOnce() -> PyResult<*mut ffi::PyObject>,
{
    let err = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(obj)) => return obj,
        Ok(Err(err)) => err,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic from Rust code".to_owned());
            PanicException::new_err(message)
        }
    };
    err.restore(py);
    ptr::null_mut()
}

/// The body of a raw method of `LoopBase` that takes no argument: runs
/// `body` with the loop once `no_arguments` accepted the call, or returns
/// NULL with its TypeError raised. `body` returns a new reference, or NULL
/// with an exception set (wrapping fallible work in `guard`).
///
/// # Safety
/// Called from a raw `METH_FASTCALL | METH_KEYWORDS` method of `LoopBase`
/// with its own arguments: CPython calls those attached to the interpreter,
/// with `slf` an instance of `LoopBase` (the method descriptor checks the
/// type) borrowed for the call, and `kwnames` NULL or a tuple of str.
#[inline(always)]
pub(crate) unsafe fn without_arguments(
    name: &'static str,
    slf: *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    body: impl for<'py> FnOnce(Python<'py>, Borrowed<'py, 'py, LoopBase>) -> *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: forwarded from this function's contract.
    unsafe { without_arguments_of(LOOP_OWNER, name, slf, nargs, kwnames, body) }
}

/// `without_arguments` for a raw method of any class `T`, whose stock
/// counterpart is `owner.name` (what a wrong call's TypeError names).
///
/// # Safety
/// As for `without_arguments`, with `T` in place of `LoopBase`.
#[inline(always)]
pub(crate) unsafe fn without_arguments_of<T>(
    owner: &'static str,
    name: &'static str,
    slf: *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    body: impl for<'py> FnOnce(Python<'py>, Borrowed<'py, 'py, T>) -> *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: attached (this function's contract).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: forwarded from this function's contract.
    if !unsafe { no_arguments(owner, name, nargs, kwnames) } {
        return ptr::null_mut();
    }
    // SAFETY: `slf` is a live instance of `T` borrowed for the call.
    body(py, unsafe {
        Borrowed::from_ptr(py, slf).cast_unchecked::<T>()
    })
}

/// The body of a raw method whose arguments `signature` binds
/// (`raw_args.rs`): runs `body` with the receiver, an instance of `T`, and
/// the bound arguments, or raises the stock TypeError of a wrong call.
/// `body` returns a new reference, or an error, which (as a panic) is
/// raised.
///
/// # Safety
/// Called from a raw `METH_FASTCALL | METH_KEYWORDS` method of class `T`
/// with its own arguments: CPython calls those attached to the interpreter,
/// with `slf` an instance of `T` (the method descriptor checks the type),
/// `args` holding `nargs` values then one per name in `kwnames` (NULL or a
/// tuple of str), all borrowed for the call.
#[inline(always)]
pub(crate) unsafe fn with_bound_arguments<T, const P: usize, const K: usize>(
    signature: &Signature<P, K>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    body: impl for<'a, 'py> FnOnce(
        Borrowed<'a, 'py, T>,
        Parsed<'a, P, K>,
    ) -> PyResult<*mut ffi::PyObject>,
) -> *mut ffi::PyObject {
    // SAFETY: attached (this function's contract).
    let py = unsafe { Python::assume_attached() };
    guard(py, || {
        // SAFETY: the arguments as CPython passed them (contract).
        let bound = unsafe { signature.bind(args, nargs, kwnames) }?;
        // SAFETY: `slf` is a live instance of `T` borrowed for the call.
        let slf = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<T>() };
        body(slf, bound)
    })
}

/// Checks the arguments of a raw `METH_FASTCALL | METH_KEYWORDS` method that
/// takes none, as asyncio's `def name(self)` in class `owner` does: true if
/// there are none; otherwise raises the TypeError CPython raises for that
/// Python method (`BaseEventLoop.time() takes 1 positional argument but 2
/// were given`; tests/test_wrong_arity.py checks the wording against the
/// stock loop on each Python version) and returns false. The usual call
/// costs two comparisons.
///
/// # Safety
/// `kwnames` is NULL or a tuple of str (the vectorcall protocol), and the
/// interpreter is attached.
#[inline(always)]
unsafe fn no_arguments(
    owner: &'static str,
    name: &'static str,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> bool {
    if nargs == 0 && kwnames.is_null() {
        return true;
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { refuse_arguments(owner, name, nargs, kwnames) }
}

/// `no_arguments` with arguments: CPython's checks in its order (an
/// unknown keyword first, then the positional count; `self=` is a second
/// value for `self`).
///
/// # Safety
/// As for `no_arguments`.
#[cold]
#[inline(never)]
unsafe fn refuse_arguments(
    owner: &'static str,
    name: &'static str,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> bool {
    // SAFETY: the interpreter is attached (this function's contract).
    let py = unsafe { Python::assume_attached() };
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: a non-NULL `kwnames` is a tuple.
        unsafe { ffi::PyTuple_GET_SIZE(kwnames) }
    };
    let problem = if nkw > 0 {
        // SAFETY: index 0 < size; the item is a str borrowed from the tuple,
        // which the caller keeps alive.
        let keyword = unsafe { Borrowed::from_ptr(py, ffi::PyTuple_GET_ITEM(kwnames, 0)) };
        let keyword = match keyword.str() {
            Ok(keyword) => keyword,
            Err(err) => {
                err.restore(py);
                return false;
            }
        };
        if keyword == "self" {
            "got multiple values for argument 'self'".to_owned()
        } else {
            format!("got an unexpected keyword argument '{keyword}'")
        }
    } else if nargs > 0 {
        format!("takes 1 positional argument but {} were given", nargs + 1)
    } else {
        return true; // an empty keyword tuple: no arguments after all
    };
    PyTypeError::new_err(format!("{owner}.{name}() {problem}")).restore(py);
    false
}

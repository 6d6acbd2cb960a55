//! Raw CPython methods of `LoopBase`: methods defined with a plain
//! `PyMethodDef` and added to the class at module init, instead of through
//! `#[pymethods]`, for the few that run once per callback or per future.
//!
//! Why: pyo3's method trampoline (attached-thread bookkeeping in
//! thread-locals, the deferred-decref pool check, its own argument
//! handling) costs ~60 instructions per call, as much as the body of
//! `get_debug` or `create_future` many times over. `call_soon.rs` explains
//! the same choice for `call_soon`.

use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::{exceptions::PyValueError, ffi};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// Adds a method to `ty`, with `name`, `meth` (of the calling convention
/// `flags` says) and docstring `doc` (which carries the text signature).
pub(crate) fn add_method(
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

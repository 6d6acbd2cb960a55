//! Borrowing the bytes behind any object with the buffer protocol.

use pyo3::ffi;
use pyo3::prelude::*;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// The contiguous bytes of a bytes-like object, borrowed for as long as
/// this lives (the exporter keeps them valid and unmoved until release).
pub(crate) struct BufferView<'py> {
    view: ffi::Py_buffer,
    /// Ties the view to a GIL-holding scope, so it is released with it held.
    _gil: PhantomData<Python<'py>>,
}

impl<'py> BufferView<'py> {
    /// Borrows `obj`'s bytes, writable when `writable`; raises what CPython
    /// raises for objects that are not contiguous bytes-like ones.
    pub(crate) fn new(obj: &Bound<'py, PyAny>, writable: bool) -> PyResult<Self> {
        let flags = if writable {
            ffi::PyBUF_WRITABLE
        } else {
            ffi::PyBUF_SIMPLE
        };
        let mut view = MaybeUninit::<ffi::Py_buffer>::uninit();
        // SAFETY: `obj` is a live object (we hold the GIL through `Bound`);
        // PyObject_GetBuffer fully initialises `view` when it returns 0 and
        // leaves nothing to release when it fails.
        let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), flags) };
        if rc != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        // SAFETY: initialised by the successful call above.
        Ok(BufferView {
            view: unsafe { view.assume_init() },
            _gil: PhantomData,
        })
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.view.len as usize
    }

    /// The bytes, read-only.
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.view.len == 0 {
            return &[];
        }
        // SAFETY: PyBUF_SIMPLE/PyBUF_WRITABLE requests guarantee a
        // C-contiguous region of `len` bytes at `buf`, valid until release.
        unsafe { std::slice::from_raw_parts(self.view.buf as *const u8, self.len()) }
    }

    /// Raw pointer to the start, for filling a writable view.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.view.buf as *mut u8
    }
}

impl Drop for BufferView<'_> {
    fn drop(&mut self) {
        // SAFETY: `view` came from a successful PyObject_GetBuffer and is
        // released exactly once, while the GIL is held: the view cannot
        // outlive the `Python<'py>` scope it was made in.
        unsafe { ffi::PyBuffer_Release(&mut self.view) };
    }
}

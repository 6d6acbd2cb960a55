//! `write`, `is_closing`, `close` and `__del__` of the Python
//! `SocketTransport` class (`ferroloop/_transports.py`): raw methods
//! (`eventloop/raw.rs`) that reach the transport's `StreamCore` through its
//! `_core` slot.
//!
//! Why raw methods of the transport class: protocols call
//! `transport.write(data)` once per message, and `StreamWriter.drain()`
//! calls `transport.is_closing()` on every write, so neither may run a
//! Python frame or pyo3's trampoline. `close` and `__del__` run once per
//! connection, a Python frame each (~1,000 instructions) that servers
//! with short connections felt. `write` and `is_closing` used to be the
//! core's bound methods stored in two slots of every transport: 160 bytes
//! per connection, which a method of the class does not need.
//!
//! The slot is read with `PyMember_GetOne`, CPython's own accessor for
//! `__slots__` (a strong reference, taken safely on free-threaded builds
//! too); its offset is read once, from the slot's descriptor, when the
//! methods are installed.

use super::stream::StreamCore;
use crate::eventloop::raw;
use crate::eventloop::raw_args::{Param, Parsed, Signature};
use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyType};
use pyo3::{ffi, intern};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// The class whose `close` asyncio's socket transport runs, for the
/// wording of a wrong call: 3.12 gave `_SelectorSocketTransport` its own.
static CLOSE_OWNER_IS_SOCKET_TRANSPORT: AtomicBool = AtomicBool::new(false);

/// Where the `_core` slot sits in a `SocketTransport` (0: not installed):
/// the same in every subclass, and in the class of every interpreter (each
/// defines it from the same source; `_install_transport_methods` checks).
static CORE_SLOT_OFFSET: AtomicIsize = AtomicIsize::new(0);

/// Adds the methods to `cls`, the `SocketTransport` class, whose `_core`
/// slot holds the `StreamCore`. Refuses a class whose slot is elsewhere
/// than the first one's: every class with these methods must have it at
/// `CORE_SLOT_OFFSET` (what makes `core_of` sound).
#[pyfunction]
pub(super) fn _install_transport_methods(cls: &Bound<'_, PyType>) -> PyResult<()> {
    let offset = core_slot_offset(cls)?;
    match CORE_SLOT_OFFSET.compare_exchange(0, offset, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => {}
        Err(first) if first == offset => {}
        Err(_) => {
            return Err(PyRuntimeError::new_err(
                "the _core slot is not where SocketTransport has it",
            ))
        }
    }
    CLOSE_OWNER_IS_SOCKET_TRANSPORT.store(cls.py().version_info() >= (3, 12), Ordering::Relaxed);
    raw::add_fastcall_methods(
        cls,
        &[
            (
                c"write",
                write,
                c"write($self, data)\n--\n\n\
                  Sends `data` now if nothing is pending, else buffers it.",
            ),
            (
                c"is_closing",
                is_closing,
                c"is_closing($self, /)\n--\n\nTrue once closing started.",
            ),
            (
                c"close",
                close,
                c"close($self, /)\n--\n\nCloses once the buffered data is sent.",
            ),
            (
                c"__del__",
                finalize,
                c"__del__($self, /)\n--\n\n\
                  Warns of a transport collected unclosed, and closes its socket.",
            ),
        ],
    )
}

/// The offset of `cls`'s own `_core` slot, from its member descriptor.
fn core_slot_offset(cls: &Bound<'_, PyType>) -> PyResult<isize> {
    let py = cls.py();
    let descr = cls
        .getattr(intern!(py, "__dict__"))?
        .get_item(intern!(py, "_core"))
        .map_err(|_| PyTypeError::new_err("_core must be a slot of the class"))?;
    // Taking the address of the static type object reads nothing.
    let member_type = ptr::addr_of_mut!(ffi::PyMemberDescr_Type);
    if descr.get_type().as_type_ptr() != member_type {
        return Err(PyTypeError::new_err("_core must be a slot of the class"));
    }
    // SAFETY: `descr` is a member descriptor (checked above), so it has
    // that layout, and its `d_member` lives as long as the class.
    let member = unsafe { &*(*descr.as_ptr().cast::<ffi::PyMemberDescrObject>()).d_member };
    if member.type_code != ffi::Py_T_OBJECT_EX || member.offset <= 0 {
        return Err(PyTypeError::new_err("_core must be an object slot"));
    }
    Ok(member.offset)
}

/// The `StreamCore` in `transport`'s `_core` slot. Raises AttributeError
/// if the slot is empty (the transport's `__init__` did not run), as
/// reading `transport._core` would.
///
/// # Safety
/// `transport` is a live instance of the class `install` saw (the method
/// descriptors check that before calling), and the interpreter is attached.
unsafe fn core_of<'py>(
    py: Python<'py>,
    transport: *mut ffi::PyObject,
) -> PyResult<Bound<'py, StreamCore>> {
    let mut slot = ffi::PyMemberDef {
        name: c"_core".as_ptr(),
        type_code: ffi::Py_T_OBJECT_EX,
        offset: CORE_SLOT_OFFSET.load(Ordering::Relaxed),
        flags: 0,
        doc: ptr::null(),
    };
    // SAFETY: `slot` describes the `_core` slot of `transport`'s class
    // (this function's contract), at an offset inside the object; the call
    // returns a new reference or NULL with an exception set.
    let core = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyMember_GetOne(transport.cast(), &mut slot))
    }?;
    Ok(core.cast_into::<StreamCore>()?)
}

/// asyncio's `_SelectorSocketTransport.write(self, data)`.
static WRITE: Signature<1, 0> = Signature {
    owner: "_SelectorSocketTransport",
    method: "write",
    positional: [Param::new(c"data")],
    var_args: false,
    keyword_only: [],
};

/// `SocketTransport.write(data)` (vectorcall convention). A wrong call
/// raises the stock transport's TypeError.
///
/// It runs outside pyo3's trampolines, so a `Py` dropped here while pyo3
/// has not marked the thread attached would be queued for later instead of
/// released: the paths below hold `Bound` values (the usual caller, a
/// protocol callback the loop runs, is inside the loop's own trampoline
/// anyway).
unsafe extern "C" fn write(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |slf: Borrowed<'_, '_, PyAny>, bound: Parsed<'_, 1, 0>| {
        let py = slf.py();
        // SAFETY: CPython calls this method with an instance of its class.
        let core = unsafe { core_of(py, slf.as_ptr()) }?;
        // SAFETY: the bound argument is live for the call.
        let data = unsafe { Borrowed::from_ptr(py, bound.positional[0]) };
        StreamCore::write(&core, &data)?;
        Ok(py.None().into_ptr())
    };
    // SAFETY: CPython calls this raw method with its own arguments
    // (`raw::with_bound_arguments`' contract; the receiver is any object).
    unsafe { raw::with_bound_arguments(&WRITE, slf, args, nargs, kwnames, body) }
}

/// The body of a raw method of the class that takes no argument and works
/// on the core: `body` runs with the core once `raw::without_arguments_of`
/// accepted the call (a wrong call raises `owner.name()`'s TypeError).
///
/// # Safety
/// As for `raw::without_arguments_of`, with `slf` an instance of the class
/// the methods were installed on.
#[inline(always)]
unsafe fn core_method(
    owner: &'static str,
    name: &'static str,
    slf: *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    body: impl for<'py> FnOnce(&Bound<'py, StreamCore>) -> PyResult<*mut ffi::PyObject>,
) -> *mut ffi::PyObject {
    let run = |py: Python<'_>, transport: Borrowed<'_, '_, PyAny>| {
        raw::guard(py, || {
            // SAFETY: an instance of the class (this function's contract).
            let core = unsafe { core_of(py, transport.as_ptr()) }?;
            body(&core)
        })
    };
    // SAFETY: forwarded from this function's contract (the receiver type
    // is any object: `core_of` finds the core).
    unsafe { raw::without_arguments_of(owner, name, slf, nargs, kwnames, run) }
}

/// `SocketTransport.is_closing()`: true once closing started (vectorcall
/// convention; no `Py` is dropped).
unsafe extern "C" fn is_closing(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |core: &Bound<'_, StreamCore>| {
        let closing = core.get().state.lock().closing;
        Ok(PyBool::new(core.py(), closing)
            .to_owned()
            .into_any()
            .into_ptr())
    };
    // SAFETY: CPython calls this raw method of the class with its own
    // arguments (`core_method`'s contract).
    unsafe {
        core_method(
            "_SelectorTransport",
            "is_closing",
            slf,
            nargs,
            kwnames,
            body,
        )
    }
}

/// `SocketTransport.close()`: stop reading; once the buffered data is sent
/// (now, if there is none), the connection is lost with no error.
unsafe extern "C" fn close(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |core: &Bound<'_, StreamCore>| {
        StreamCore::close_core(core)?;
        Ok(core.py().None().into_ptr())
    };
    let owner = if CLOSE_OWNER_IS_SOCKET_TRANSPORT.load(Ordering::Relaxed) {
        "_SelectorSocketTransport"
    } else {
        "_SelectorTransport"
    };
    // SAFETY: CPython calls this raw method of the class with its own
    // arguments (`core_method`'s contract).
    unsafe { core_method(owner, "close", slf, nargs, kwnames, body) }
}

/// `SocketTransport.__del__()`: nothing for a transport whose socket is
/// closed (the usual case, decided here without a Python frame); else
/// `_finalize_unclosed()`, which warns and closes it as asyncio's
/// `__del__` does. A transport whose `__init__` did not set `_core` has
/// nothing to finalize.
unsafe extern "C" fn finalize(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>, transport: Borrowed<'_, '_, PyAny>| {
        raw::guard(py, || {
            // SAFETY: CPython calls this method with an instance of its class.
            let core = match unsafe { core_of(py, transport.as_ptr()) } {
                Ok(core) => core,
                Err(err) if err.is_instance_of::<PyAttributeError>(py) => {
                    return Ok(py.None().into_ptr())
                }
                Err(err) => return Err(err),
            };
            if core.get().state.lock().sock.is_none() {
                return Ok(py.None().into_ptr());
            }
            let done = transport.call_method0(intern!(py, "_finalize_unclosed"))?;
            Ok(done.into_ptr())
        })
    };
    // SAFETY: CPython calls this raw method with its own arguments
    // (`raw::without_arguments_of`' contract; the receiver is any object).
    unsafe { raw::without_arguments_of("SocketTransport", "__del__", slf, nargs, kwnames, body) }
}

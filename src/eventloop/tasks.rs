//! Tasks: `create_task` and the task factory. `asyncio.gather` and
//! `to_thread` call `create_task` for every awaitable, so it lives here
//! rather than in Python. `create_task` and `set_task_factory` are raw
//! methods (`raw.rs`) whose arguments `raw_args.rs` binds, so that wrong
//! calls raise asyncio's TypeErrors word for word (pyo3 named the Rust
//! class and counted positional arguments without `self`).

use super::python::task_type;
use super::raw_args::{Param, Parsed, Signature, LOOP_OWNER};
use super::{raw, LoopBase};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use pyo3::{ffi, intern};

/// 3.13 names factory-made tasks even when `name` is None (3.13's
/// `create_task` calls `task.set_name(name)` unconditionally); earlier
/// versions leave the factory's name alone.
fn always_sets_name(py: Python<'_>) -> bool {
    py.version_info() >= (3, 13)
}

impl LoopBase {
    /// `{"loop": self}`, shared by every Future/Task this loop creates (the
    /// constructors only read it).
    pub(crate) fn loop_kwargs<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        if let Some(kwargs) = slf.get().future_kwargs.lock().as_ref() {
            return Ok(kwargs.bind(py).clone());
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "loop"), slf)?;
        *slf.get().future_kwargs.lock() = Some(kwargs.clone().unbind());
        Ok(kwargs)
    }
}

impl LoopBase {
    /// Wraps a coroutine in a Task (or whatever the task factory makes);
    /// `name` and `context` are None when not given or given as None.
    fn create_task<'py>(
        slf: &Bound<'py, Self>,
        coro: Bound<'py, PyAny>,
        name: Option<Bound<'py, PyAny>>,
        context: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        slf.get().check_closed()?;
        let factory = slf
            .get()
            .task_factory
            .lock()
            .as_ref()
            .map(|f| f.bind(py).clone());
        let Some(factory) = factory else {
            let kwargs = if name.is_none() && context.is_none() {
                Self::loop_kwargs(slf)?
            } else {
                let kwargs = Self::loop_kwargs(slf)?.copy()?;
                kwargs.set_item(intern!(py, "name"), name)?;
                kwargs.set_item(intern!(py, "context"), context)?;
                kwargs
            };
            return task_type(py)?.call((coro,), Some(&kwargs));
        };
        let task = match context {
            // The factory's legacy two-argument form when no context is given.
            None => factory.call1((slf, coro))?,
            Some(context) => {
                let kwargs = PyDict::new(py);
                kwargs.set_item(intern!(py, "context"), context)?;
                factory.call((slf, coro), Some(&kwargs))?
            }
        };
        if name.is_some() || always_sets_name(py) {
            task.call_method1(intern!(py, "set_name"), (name,))?;
        }
        Ok(task)
    }

    /// Sets the factory `create_task` uses; None (or no factory) restores
    /// the default.
    fn set_task_factory(&self, py: Python<'_>, factory: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(f) = &factory {
            if !f.is_callable() {
                return Err(PyTypeError::new_err(
                    "task factory must be a callable or None",
                ));
            }
        }
        let old = std::mem::replace(&mut *self.task_factory.lock(), factory.map(Bound::unbind));
        // Released now, after the lock, as a Bound: raw methods run outside
        // pyo3's trampolines, where dropping a `Py` would defer the decref.
        drop(old.map(|f| f.into_bound(py)));
        Ok(())
    }
}

#[pymethods]
impl LoopBase {
    /// asyncio's private spelling of the factory, read by some libraries.
    #[getter]
    fn _task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.current_task_factory(py)
    }
}

impl LoopBase {
    /// The task factory, or None.
    fn current_task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.task_factory.lock().as_ref().map(|f| f.clone_ref(py))
    }
}

/// asyncio's `create_task(self, coro, *, name=None, context=None)` (3.11
/// to 3.13).
static CREATE_TASK: Signature<1, 2> = Signature {
    owner: LOOP_OWNER,
    method: "create_task",
    positional: [Param::new(c"coro")],
    var_args: false,
    keyword_only: [Param::new(c"name"), Param::new(c"context")],
};

/// asyncio's `set_task_factory(self, factory)`.
static SET_TASK_FACTORY: Signature<1, 0> = Signature {
    owner: LOOP_OWNER,
    method: "set_task_factory",
    positional: [Param::new(c"factory")],
    var_args: false,
    keyword_only: [],
};

/// Adds the raw methods of this module (see `raw.rs`), for asyncio's
/// wording of a wrong call: `get_task_factory`, and
/// `create_task` and `set_task_factory` (arguments bound by `raw_args.rs`).
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    raw::add_fastcall_methods(
        ty,
        &[
            (
                c"get_task_factory",
                get_task_factory,
                c"get_task_factory($self, /)\n--\n\nThe task factory, or None.",
            ),
            (
                c"create_task",
                create_task,
                c"create_task($self, coro, *, name=None, context=None)\n--\n\n\
                  Wraps a coroutine in a Task (or whatever the task factory makes).",
            ),
            (
                c"set_task_factory",
                set_task_factory,
                c"set_task_factory($self, factory)\n--\n\n\
                  Sets the factory `create_task` uses; None restores the default.",
            ),
        ],
    )
}

/// A bound argument as an object, None for an absent or None argument
/// (asyncio's defaults are None and it tests `is None`).
///
/// # Safety
/// `arg` is NULL or a live object borrowed for the call.
unsafe fn optional<'py>(py: Python<'py>, arg: *mut ffi::PyObject) -> Option<Bound<'py, PyAny>> {
    if arg.is_null() {
        return None;
    }
    // SAFETY: a live object (this function's contract).
    let arg = unsafe { Borrowed::from_ptr(py, arg) };
    (!arg.is_none()).then(|| arg.to_owned())
}

/// The `create_task` method (vectorcall convention).
unsafe extern "C" fn create_task(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |slf: Borrowed<'_, '_, LoopBase>, bound: Parsed<'_, 1, 2>| {
        let py = slf.py();
        // SAFETY: the bound arguments are live for the call.
        let (coro, name, context) = unsafe {
            (
                Borrowed::from_ptr(py, bound.positional[0]).to_owned(),
                optional(py, bound.keyword_only[0]),
                optional(py, bound.keyword_only[1]),
            )
        };
        Ok(LoopBase::create_task(&slf, coro, name, context)?.into_ptr())
    };
    // SAFETY: CPython calls this raw method of LoopBase with its own
    // arguments (`raw::with_bound_arguments`' contract).
    unsafe { raw::with_bound_arguments(&CREATE_TASK, slf, args, nargs, kwnames, body) }
}

/// The `set_task_factory` method (vectorcall convention).
unsafe extern "C" fn set_task_factory(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |slf: Borrowed<'_, '_, LoopBase>, bound: Parsed<'_, 1, 0>| {
        let py = slf.py();
        // SAFETY: the bound argument is live for the call.
        let factory = unsafe { optional(py, bound.positional[0]) };
        slf.get().set_task_factory(py, factory)?;
        Ok(py.None().into_ptr())
    };
    // SAFETY: as in `create_task`.
    unsafe { raw::with_bound_arguments(&SET_TASK_FACTORY, slf, args, nargs, kwnames, body) }
}

/// The task factory, or None.
unsafe extern "C" fn get_task_factory(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let body = |py: Python<'_>, slf: Borrowed<'_, '_, LoopBase>| {
        // Cannot fail nor panic: no `guard` needed.
        slf.get()
            .current_task_factory(py)
            .unwrap_or_else(|| py.None())
            .into_ptr()
    };
    // SAFETY: CPython calls this raw method of LoopBase with its own
    // arguments (`raw::without_arguments`' contract).
    unsafe { raw::without_arguments("get_task_factory", slf, nargs, kwnames, body) }
}

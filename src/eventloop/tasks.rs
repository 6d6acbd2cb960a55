//! Tasks: `create_task` and the task factory. `asyncio.gather` and
//! `to_thread` call `create_task` for every awaitable, so it lives here
//! rather than in Python.

use super::python::task_type;
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

#[pymethods]
impl LoopBase {
    /// Wraps a coroutine in a Task (or whatever the task factory makes).
    #[pyo3(signature = (coro, *, name=None, context=None))]
    fn create_task(
        slf: &Bound<'_, Self>,
        coro: Bound<'_, PyAny>,
        name: Option<Bound<'_, PyAny>>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
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
            return Ok(task_type(py)?.call((coro,), Some(&kwargs))?.unbind());
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
        Ok(task.unbind())
    }

    /// Sets the factory `create_task` uses; None restores the default.
    fn set_task_factory(&self, factory: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(f) = &factory {
            if !f.is_callable() {
                return Err(PyTypeError::new_err(
                    "task factory must be a callable or None",
                ));
            }
        }
        let old = std::mem::replace(&mut *self.task_factory.lock(), factory.map(Bound::unbind));
        drop(old);
        Ok(())
    }

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

/// Adds `get_task_factory`, raw for asyncio's wording of a wrong call
/// (`raw::add_no_argument_method`).
pub(crate) fn install(ty: &Bound<'_, PyType>) -> PyResult<()> {
    raw::add_no_argument_method(
        ty,
        c"get_task_factory",
        get_task_factory,
        c"get_task_factory($self, /)\n--\n\nThe task factory, or None.",
    )
}

/// The task factory, or None.
unsafe extern "C" fn get_task_factory(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls raw methods attached to the interpreter.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: our own arguments, as CPython passed them.
    let Some(slf) =
        (unsafe { raw::loop_without_arguments(py, "get_task_factory", slf, nargs, kwnames) })
    else {
        return std::ptr::null_mut();
    };
    // Cannot fail nor panic: no `guard` needed.
    slf.get()
        .current_task_factory(py)
        .unwrap_or_else(|| py.None())
        .into_ptr()
}

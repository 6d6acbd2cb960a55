//! Tasks: `create_task` and the task factory. `asyncio.gather` and
//! `to_thread` call `create_task` for every awaitable, so it lives here
//! rather than in Python.

use super::python::task_type;
use super::LoopBase;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

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

    /// The task factory, or None.
    fn get_task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.task_factory.lock().as_ref().map(|f| f.clone_ref(py))
    }

    /// asyncio's private spelling of the factory, read by some libraries.
    #[getter]
    fn _task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.get_task_factory(py)
    }
}

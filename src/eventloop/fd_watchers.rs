//! `add_reader`, `remove_reader`, `add_writer`, `remove_writer`.
//!
//! Level-triggered, as asyncio's: a reader runs on every iteration while its
//! fd stays readable. The fd's blocking mode is never touched.

use super::handle::{new_untracked, Handle};
use super::{FdWatch, LoopBase, Slot};
use crate::errors::os_error;
use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};

impl FdWatch {
    fn slot(&mut self, slot: Slot) -> &mut Option<Py<Handle>> {
        match slot {
            Slot::Reader => &mut self.reader,
            Slot::Writer => &mut self.writer,
        }
    }
}

/// An int fd, or the result of `fileobj.fileno()`, validated as CPython's
/// selectors do (same ValueError messages). `Ok(None)` is a non-negative
/// int too large to be an fd: nothing can be registered under it.
pub(crate) fn fileobj_to_fd(fileobj: &Bound<'_, PyAny>) -> PyResult<Option<i32>> {
    let py = fileobj.py();
    let fd = if fileobj.is_instance_of::<PyInt>() {
        fileobj.clone()
    } else {
        // `int(fileobj.fileno())`, as selectors do.
        let fileno = fileobj
            .call_method0(intern!(py, "fileno"))
            .and_then(|f| py.get_type::<PyInt>().call1((f,)));
        match fileno {
            Ok(fd) => fd,
            Err(e)
                if e.is_instance_of::<PyAttributeError>(py)
                    || e.is_instance_of::<PyTypeError>(py)
                    || e.is_instance_of::<PyValueError>(py) =>
            {
                return Err(PyValueError::new_err(format!(
                    "Invalid file object: {}",
                    fileobj.repr()?
                )));
            }
            Err(e) => return Err(e),
        }
    };
    // Compared as a Python int, so that huge values get the same messages.
    if fd.lt(0)? {
        return Err(PyValueError::new_err(format!(
            "Invalid file descriptor: {fd}"
        )));
    }
    Ok(fd.extract::<i32>().ok())
}

/// The error the stock loop's poller raises for an fd beyond a C int.
fn fd_too_large() -> PyErr {
    pyo3::exceptions::PyOverflowError::new_err("Python int too large to convert to C int")
}

impl LoopBase {
    /// Installs `handle` in `slot` of `fd` and updates the poller. Returns
    /// the handle it replaced (the caller cancels it).
    fn watch(&self, fd: i32, slot: Slot, handle: Py<Handle>) -> PyResult<Option<Py<Handle>>> {
        let mut fds = self.fds.lock();
        let watch = fds.entry(fd).or_default();
        let before = watch.interest();
        let old = watch.slot(slot).replace(handle);
        let after = watch.interest();
        let result = if before.is_empty() {
            self.poller.add(fd, after)
        } else if before != after {
            self.poller.modify(fd, after).or_else(|e| {
                // The fd was closed and its number reused behind our back:
                // the poller forgot it, so register it afresh.
                if e.raw_os_error() == Some(libc::ENOENT) {
                    self.poller.add(fd, after)
                } else {
                    Err(e)
                }
            })
        } else {
            Ok(())
        };
        if let Err(e) = result {
            let failed = std::mem::replace(watch.slot(slot), old);
            if watch.interest().is_empty() {
                fds.remove(&fd);
            }
            drop(fds);
            drop(failed);
            return Err(os_error(e));
        }
        Ok(old)
    }

    /// Clears `slot` of `fd`; returns the handle that was there.
    fn unwatch(&self, fd: i32, slot: Slot) -> Option<Py<Handle>> {
        let mut fds = self.fds.lock();
        let watch = fds.get_mut(&fd)?;
        let old = watch.slot(slot).take()?;
        let after = watch.interest();
        // Errors are ignored as CPython's selectors ignore them: the fd may
        // already be closed, which removed it from the poller.
        if after.is_empty() {
            fds.remove(&fd);
            let _ = self.poller.delete(fd);
        } else {
            let _ = self.poller.modify(fd, after);
        }
        Some(old)
    }

    /// Drops watchers whose handles were cancelled (asyncio removes a
    /// reader it finds cancelled when its fd becomes ready).
    pub(crate) fn forget_cancelled_watchers(&self, fds_to_check: &[i32]) {
        let mut removed = Vec::new();
        for &fd in fds_to_check {
            for slot in [Slot::Reader, Slot::Writer] {
                let cancelled = self
                    .fds
                    .lock()
                    .get(&fd)
                    .and_then(|w| w.handle(slot))
                    .is_some_and(|h| h.get().is_cancelled());
                if cancelled {
                    removed.extend(self.unwatch(fd, slot));
                }
            }
        }
        drop(removed);
    }

    fn add_watcher(
        slf: &Bound<'_, Self>,
        fileobj: &Bound<'_, PyAny>,
        slot: Slot,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        let fd = fileobj_to_fd(fileobj)?;
        slf.get().check_closed()?;
        let fd = fd.ok_or_else(fd_too_large)?;
        Self::watch_fd(slf, fd, slot, callback, args)
    }

    /// Runs `callback(*args)` whenever `fd` is ready for `slot`, replacing
    /// (and cancelling) what was there; returns the new handle. For Rust
    /// callers that already hold a valid fd (the transports).
    pub(crate) fn watch_fd(
        slf: &Bound<'_, Self>,
        fd: i32,
        slot: Slot,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        slf.get().check_closed()?;
        let handle = new_untracked(slf.py(), Handle::build(slf, callback, args, None)?)?;
        if let Some(old) = slf.get().watch(fd, slot, handle.clone_ref(slf.py()))? {
            old.bind(slf.py())
                .call_method0(intern!(slf.py(), "cancel"))?;
        }
        Ok(handle)
    }

    fn remove_watcher(
        slf: &Bound<'_, Self>,
        fileobj: &Bound<'_, PyAny>,
        slot: Slot,
    ) -> PyResult<bool> {
        if slf.get().closed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(false);
        }
        match fileobj_to_fd(fileobj)? {
            Some(fd) => Self::unwatch_fd(slf, fd, slot),
            None => Ok(false),
        }
    }

    /// Stops watching `fd` for `slot` and cancels the handle; true if one
    /// was registered. Does nothing on a closed loop, as asyncio.
    pub(crate) fn unwatch_fd(slf: &Bound<'_, Self>, fd: i32, slot: Slot) -> PyResult<bool> {
        let this = slf.get();
        if this.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(false);
        }
        match this.unwatch(fd, slot) {
            Some(old) => {
                old.bind(slf.py())
                    .call_method0(intern!(slf.py(), "cancel"))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[pymethods]
impl LoopBase {
    /// Runs `callback(*args)` whenever `fd` is readable; returns the handle.
    #[pyo3(signature = (fd, callback, *args))]
    fn _add_reader(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        Self::add_watcher(slf, fd, Slot::Reader, callback, args)
    }

    /// Runs `callback(*args)` whenever `fd` is writable; returns the handle.
    #[pyo3(signature = (fd, callback, *args))]
    fn _add_writer(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        Self::add_watcher(slf, fd, Slot::Writer, callback, args)
    }

    /// Stops watching `fd` for reading; True if a reader was registered.
    fn _remove_reader(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        Self::remove_watcher(slf, fd, Slot::Reader)
    }

    /// Stops watching `fd` for writing; True if a writer was registered.
    fn _remove_writer(slf: &Bound<'_, Self>, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        Self::remove_watcher(slf, fd, Slot::Writer)
    }
}

/// The reader and writer handles of one fd, either possibly absent.
type WatchHandles = (Option<Py<Handle>>, Option<Py<Handle>>);

#[pymethods]
impl LoopBase {
    /// `(reader handle, writer handle)` registered for `fd` (either may be
    /// None), or None when the fd is not watched. Backs the read-only
    /// `_selector` view that code written for the selector loop inspects.
    fn _fd_handles(&self, py: Python<'_>, fd: i32) -> Option<WatchHandles> {
        let fds = self.fds.lock();
        let watch = fds.get(&fd)?;
        Some((
            watch.reader.as_ref().map(|h| h.clone_ref(py)),
            watch.writer.as_ref().map(|h| h.clone_ref(py)),
        ))
    }

    /// Every watched fd.
    fn _watched_fds(&self) -> Vec<i32> {
        self.fds.lock().keys().copied().collect()
    }
}

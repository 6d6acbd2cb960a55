//! `add_reader`, `remove_reader`, `add_writer`, `remove_writer`, and the
//! one-shot waits of `sock_recv` and friends (`_add_reader_until`).
//!
//! Level-triggered, as asyncio's: a reader runs on every iteration while its
//! fd stays readable (one-shot waits too, until their future is done; see
//! `core/registration.rs` for how they save a syscall). The fd's blocking
//! mode is never touched.

use super::callback::NativeCall;
use super::handle::{new_untracked, Handle};
use super::{FdWatch, LoopBase, Slot, Watcher};
use crate::errors::os_error;
use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};

impl FdWatch {
    fn slot(&mut self, slot: Slot) -> &mut Option<Watcher> {
        match slot {
            Slot::Reader => &mut self.reader,
            Slot::Writer => &mut self.writer,
        }
    }

    /// True when the loop can forget the fd: no watcher, and the poller
    /// does not hold it (a parked fd is kept: its next wait re-arms it with
    /// MOD).
    fn is_unused(&self) -> bool {
        self.is_idle() && self.registration.is_absent()
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
    /// Installs `watcher` in `slot` of `fd` and updates the poller. Returns
    /// the watcher it replaced (the caller cancels its handle).
    fn watch(&self, fd: i32, slot: Slot, watcher: Watcher) -> PyResult<Option<Watcher>> {
        let mut fds = self.fds.lock();
        let watch = fds.entry(fd).or_default();
        let old = watch.slot(slot).replace(watcher);
        if let Err(e) = watch.update_registration(&self.poller, fd, [false; 2]) {
            let failed = std::mem::replace(watch.slot(slot), old);
            if watch.is_unused() {
                fds.remove(&fd);
            }
            drop(fds);
            drop(failed);
            return Err(os_error(e));
        }
        Ok(old)
    }

    /// Clears `slot` of `fd`; returns the watcher that was there.
    fn unwatch(&self, fd: i32, slot: Slot) -> Option<Watcher> {
        let mut fds = self.fds.lock();
        let watch = fds.get_mut(&fd)?;
        let old = watch.slot(slot).take()?;
        // Errors are ignored as CPython's selectors ignore them: the fd may
        // already be closed, which removed it from the poller.
        let _ = watch.update_registration(&self.poller, fd, [false; 2]);
        if watch.is_unused() {
            fds.remove(&fd);
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
        until: Option<Bound<'_, PyAny>>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        let fd = fileobj_to_fd(fileobj)?;
        slf.get().check_closed()?;
        let fd = fd.ok_or_else(fd_too_large)?;
        Self::install(slf, fd, slot, until, || {
            Handle::build(slf, callback, args, None)
        })
    }

    /// Runs `native` (a callback without arguments, in Rust) whenever `fd`
    /// is ready for `slot`, replacing (and cancelling) what was there;
    /// returns the new handle, which shows `callback`. For Rust callers that
    /// already hold a valid fd (the transports).
    pub(crate) fn watch_fd(
        slf: &Bound<'_, Self>,
        fd: i32,
        slot: Slot,
        callback: Bound<'_, PyAny>,
        native: NativeCall,
    ) -> PyResult<Py<Handle>> {
        Self::install(slf, fd, slot, None, || {
            Handle::build_native(slf, callback, native)
        })
    }

    /// A one-shot wait that runs `callback()` whenever `fd` is ready for
    /// `slot` until the future `fut` is done (see `_add_reader_until`); for
    /// the Rust `sock_*` waits (`transports/sock_wait.rs`), which end it
    /// with `end_wait`.
    pub(crate) fn watch_until(
        slf: &Bound<'_, Self>,
        fd: i32,
        slot: Slot,
        fut: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
    ) -> PyResult<Py<Handle>> {
        let args = PyTuple::empty(slf.py());
        Self::install(slf, fd, slot, Some(fut), || {
            Handle::build(slf, callback, args, None)
        })
    }

    /// Removes the wait of `fut` from `slot` of `fd` and cancels its
    /// handle, if it is still the one installed there (another watcher that
    /// replaced it is left alone, as asyncio's done callback leaves it: the
    /// replacement cancelled the wait's handle). Returns true if it did.
    /// Ending a wait the poller just reported costs no syscall.
    pub(crate) fn end_wait(
        slf: &Bound<'_, Self>,
        fd: i32,
        slot: Slot,
        fut: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let this = slf.get();
        let is_ours = {
            let fds = this.fds.lock();
            fds.get(&fd)
                .and_then(|w| w.watcher(slot))
                .and_then(|w| w.until.as_ref())
                .is_some_and(|until| until.is(fut))
        };
        if !is_ours {
            return Ok(false);
        }
        match this.unwatch(fd, slot) {
            Some(old) => {
                Handle::cancel_once(old.handle.bind(slf.py()))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The fd and slot of the wait whose future is `fut`, searching the
    /// whole table (for the rare caller that lost track of the fd).
    pub(crate) fn find_wait(&self, fut: &Bound<'_, PyAny>) -> Option<(i32, Slot)> {
        let fds = self.fds.lock();
        fds.iter().find_map(|(&fd, watch)| {
            [Slot::Reader, Slot::Writer].into_iter().find_map(|slot| {
                let until = watch.watcher(slot)?.until.as_ref()?;
                until.is(fut).then_some((fd, slot))
            })
        })
    }

    /// `watch_fd`, for a level watcher (`until` None) or a one-shot wait
    /// that ends when the future `until` is done; `build` makes the handle.
    fn install(
        slf: &Bound<'_, Self>,
        fd: i32,
        slot: Slot,
        until: Option<Bound<'_, PyAny>>,
        build: impl FnOnce() -> PyResult<Handle>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        slf.get().check_closed()?;
        let handle = new_untracked(py, build()?)?;
        let watcher = Watcher {
            handle: handle.clone_ref(py),
            until: until.map(Bound::unbind),
        };
        if let Some(old) = slf.get().watch(fd, slot, watcher)? {
            old.handle.bind(py).call_method0(intern!(py, "cancel"))?;
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
                old.handle
                    .bind(slf.py())
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
        Self::add_watcher(slf, fd, Slot::Reader, None, callback, args)
    }

    /// Runs `callback(*args)` whenever `fd` is writable; returns the handle.
    #[pyo3(signature = (fd, callback, *args))]
    fn _add_writer(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        Self::add_watcher(slf, fd, Slot::Writer, None, callback, args)
    }

    /// `_add_reader(fd, callback, *args)` for a one-shot wait: the reader
    /// of `sock_recv` and friends, which a done callback of `fut` removes.
    /// It behaves the same, except that it is not called again once `fut`
    /// is done (it would return at once: the done callback, queued first,
    /// removes it before the next iteration's I/O callbacks run anyway).
    /// Its registration is one-shot: the wait costs one syscall, not two.
    #[pyo3(signature = (fd, fut, callback, *args))]
    fn _add_reader_until(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        fut: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        Self::add_watcher(slf, fd, Slot::Reader, Some(fut), callback, args)
    }

    /// `_add_reader_until` for writing (`sock_sendall`).
    #[pyo3(signature = (fd, fut, callback, *args))]
    fn _add_writer_until(
        slf: &Bound<'_, Self>,
        fd: &Bound<'_, PyAny>,
        fut: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<Py<Handle>> {
        Self::add_watcher(slf, fd, Slot::Writer, Some(fut), callback, args)
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
        let watch = fds.get(&fd).filter(|w| !w.is_idle())?;
        Some((
            watch.handle(Slot::Reader).map(|h| h.clone_ref(py)),
            watch.handle(Slot::Writer).map(|h| h.clone_ref(py)),
        ))
    }

    /// Every watched fd (parked ones, with no callback, are not watched).
    fn _watched_fds(&self) -> Vec<i32> {
        let fds = self.fds.lock();
        fds.iter()
            .filter(|(_, w)| !w.is_idle())
            .map(|(&fd, _)| fd)
            .collect()
    }
}

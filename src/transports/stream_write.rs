//! The write path of `StreamCore`: `write`, the writer callback,
//! `write_eof`, flow control and the sendfile "buffer empty" waiter.
//!
//! `write` sends at once when nothing is pending (the common case: the
//! kernel takes it all and no poller registration happens); the rest is
//! buffered and sent by `_write_ready` when the socket is writable, all
//! pending bytes in one `send`.

use super::buffer::BufferView;
use super::is_exit;
use super::recv::would_block;
use super::stream::{Parts, StreamCore, StreamState};
use crate::core::sys::check;
use crate::errors::os_error;
use crate::eventloop::{LoopBase, Slot};
use parking_lot::MutexGuard;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView};

/// asyncio's `LOG_THRESHOLD_FOR_CONNLOST_WRITES`: writes after the
/// connection was lost are ignored, with a warning from this many on.
const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;

/// One non-blocking `send`; `Ok(0)` when the kernel's buffer is full.
fn send_some(fd: i32, data: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `data` is a live, initialised slice for the whole call.
    // MSG_NOSIGNAL: a closed peer yields EPIPE instead of SIGPIPE, even in
    // a host program that did not ignore SIGPIPE as Python does.
    let sent =
        check(unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) });
    match sent {
        Ok(n) => Ok(n as usize),
        Err(e) if would_block(&e) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Shuts down the sending side (`write_eof`).
fn shutdown_write(fd: i32) -> PyResult<()> {
    // SAFETY: plain syscall on an fd we own; no memory is passed.
    check(unsafe { libc::shutdown(fd, libc::SHUT_WR) }).map_err(os_error)?;
    Ok(())
}

/// asyncio's checks of `write()` after the type's: no write after
/// `write_eof()`, none while sendfile waits for the buffer to empty.
fn check_writable(st: &StreamState) -> PyResult<()> {
    if st.eof {
        return Err(PyRuntimeError::new_err(
            "Cannot call write() after write_eof()",
        ));
    }
    if st.empty_waiter.is_some() {
        return Err(PyRuntimeError::new_err(
            "unable to write; sendfile is in progress",
        ));
    }
    Ok(())
}

/// asyncio's type check for `write()`.
fn check_bytes_like(data: &Bound<'_, PyAny>) -> PyResult<()> {
    if data.is_instance_of::<PyBytes>()
        || data.is_instance_of::<PyByteArray>()
        || data.is_instance_of::<PyMemoryView>()
    {
        return Ok(());
    }
    // The name as Python's repr() quotes it ('str'), as asyncio's f-string.
    Err(PyTypeError::new_err(format!(
        "data argument must be a bytes-like object, not {}",
        data.get_type().name()?.repr()?
    )))
}

impl StreamCore {
    /// Calls `protocol.<method>()` for flow control; a failure goes to the
    /// loop's exception handler, as asyncio reports it.
    fn notify_flow_control(
        py: Python<'_>,
        parts: &Parts,
        method: &Bound<'_, pyo3::types::PyString>,
    ) -> PyResult<()> {
        let Parts {
            event_loop,
            protocol,
            outer,
            ..
        } = parts;
        let Err(err) = protocol.bind(py).call_method0(method) else {
            return Ok(());
        };
        if is_exit(py, &err) {
            return Err(err);
        }
        let context = PyDict::new(py);
        context.set_item("message", format!("protocol.{method}() failed"))?;
        context.set_item("exception", err.into_value(py))?;
        context.set_item("transport", outer)?;
        context.set_item("protocol", protocol)?;
        event_loop
            .bind(py)
            .call_method1(intern!(py, "call_exception_handler"), (context,))?;
        Ok(())
    }

    /// Tells the protocol to pause writing if the buffer passed the
    /// high-water mark (asyncio's `_maybe_pause_protocol`).
    pub(crate) fn maybe_pause_protocol(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        {
            let mut st = slf.get().state.lock();
            if st.protocol_paused || st.buffer.len() <= st.high {
                return Ok(());
            }
            st.protocol_paused = true;
        }
        match slf.get().parts(py) {
            Some(parts) => Self::notify_flow_control(py, &parts, intern!(py, "pause_writing")),
            None => Ok(()),
        }
    }

    /// Stops watching for writability.
    fn stop_writing(py: Python<'_>, event_loop: &Py<LoopBase>, fd: i32) -> PyResult<()> {
        LoopBase::unwatch_fd(event_loop.bind(py), fd, Slot::Writer)?;
        Ok(())
    }

    /// Reports a failed send: the buffer is dropped, the transport
    /// force-closed, a sendfile waiting for the buffer to empty fails.
    fn write_failed(slf: &Bound<'_, Self>, err: PyErr) -> PyResult<()> {
        let py = slf.py();
        if is_exit(py, &err) {
            return Err(err);
        }
        let waiter = {
            let mut st = slf.get().state.lock();
            st.buffer.clear();
            st.empty_waiter.as_ref().map(|w| w.clone_ref(py))
        };
        let Some(Parts {
            fd,
            event_loop,
            outer,
            ..
        }) = slf.get().parts(py)
        else {
            return Ok(());
        };
        Self::stop_writing(py, &event_loop, fd)?;
        let exc = err.into_value(py);
        outer.bind(py).call_method1(
            intern!(py, "_fatal_error"),
            (exc.clone_ref(py), "Fatal write error on socket transport"),
        )?;
        if let Some(waiter) = waiter {
            waiter
                .bind(py)
                .call_method1(intern!(py, "set_exception"), (exc,))?;
        }
        Ok(())
    }
}

impl StreamCore {
    /// `write` past its checks, with the state locked: counts writes after
    /// the connection was lost, sends at once when nothing is pending,
    /// buffers the rest.
    fn write_locked(
        slf: &Bound<'_, Self>,
        mut st: MutexGuard<'_, StreamState>,
        bytes: &[u8],
    ) -> PyResult<()> {
        let py = slf.py();
        if bytes.is_empty() {
            return Ok(());
        }
        if st.conn_lost > 0 {
            let warn = st.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES;
            st.conn_lost += 1;
            drop(st);
            if warn {
                py.import("asyncio.log")?
                    .getattr("logger")?
                    .call_method1("warning", ("socket.send() raised exception.",))?;
            }
            return Ok(());
        }
        let mut pending = bytes;
        let mut start_writing = false;
        if st.buffer.is_empty() {
            match send_some(st.fd, bytes) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(n) => {
                    pending = &bytes[n..];
                    start_writing = true;
                }
                Err(e) => {
                    drop(st);
                    return Self::write_failed(slf, os_error(e));
                }
            }
        }
        st.buffer.push(pending);
        let fd = st.fd;
        // A Bound: `write` runs outside pyo3's trampolines (see
        // `transport_methods.rs`); the transport is moved into the handle's
        // callback, never dropped as a Py here.
        let watch = match (start_writing, &st.event_loop) {
            (true, Some(l)) => Some((
                l.bind(py).clone(),
                st.outer.as_ref().map(|o| o.clone_ref(py)),
            )),
            _ => None,
        };
        drop(st);
        if let Some((event_loop, outer)) = watch {
            Self::watch(slf, &event_loop, fd, Slot::Writer, outer)?;
        }
        Self::maybe_pause_protocol(slf)
    }
}

impl StreamCore {
    /// Sends `data` now if nothing is pending, buffers what the kernel did
    /// not take, and pauses the protocol past the high-water mark.
    pub(super) fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        check_bytes_like(data)?;
        if let Ok(b) = data.cast::<PyBytes>() {
            // `bytes`, what protocols nearly always write: the checks and
            // the send under one lock (no Python code runs in between).
            let st = slf.get().state.lock();
            check_writable(&st)?;
            return Self::write_locked(slf, st, b.as_bytes());
        }
        check_writable(&slf.get().state.lock())?;
        let view = match BufferView::new(data, false) {
            Ok(view) => view,
            // Not contiguous: asyncio's send() fails the same way.
            Err(err) => return Self::write_failed(slf, err),
        };
        Self::write_locked(slf, slf.get().state.lock(), view.as_slice())
    }
}

#[pymethods]
impl StreamCore {
    /// The loop's writer callback (the writer handle calls `write_ready`
    /// directly; this is for others).
    fn _write_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::write_ready(slf)
    }
}

impl StreamCore {
    /// `write_ready` as the writer handle runs it (`NativeCall`).
    pub(super) fn write_ready_native(target: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::write_ready(target.cast::<StreamCore>()?)
    }

    /// The loop's writer callback: sends what is pending; once the buffer
    /// is empty, stops watching and finishes a pending close or EOF.
    fn write_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let resume = {
            let mut st = slf.get().state.lock();
            if st.conn_lost > 0 {
                return Ok(());
            }
            let sent = if st.buffer.is_empty() {
                Ok(0)
            } else {
                send_some(st.fd, st.buffer.pending())
            };
            match sent {
                Ok(n) => st.buffer.consume(n),
                Err(e) => {
                    drop(st);
                    return Self::write_failed(slf, os_error(e));
                }
            }
            let resume = st.protocol_paused && st.buffer.len() <= st.low;
            if resume {
                st.protocol_paused = false;
            }
            resume
        };
        let Some(parts) = slf.get().parts(py) else {
            return Ok(());
        };
        if resume {
            // May write again, refilling the buffer.
            Self::notify_flow_control(py, &parts, intern!(py, "resume_writing"))?;
        }
        let Parts {
            fd,
            event_loop,
            outer,
            ..
        } = parts;
        let (waiter, closing, eof) = {
            let st = slf.get().state.lock();
            if !st.buffer.is_empty() || st.conn_lost > 0 {
                return Ok(());
            }
            (
                st.empty_waiter.as_ref().map(|w| w.clone_ref(py)),
                st.closing,
                st.eof,
            )
        };
        Self::stop_writing(py, &event_loop, fd)?;
        if let Some(waiter) = waiter {
            waiter
                .bind(py)
                .call_method1(intern!(py, "set_result"), (py.None(),))?;
        }
        if closing {
            outer
                .bind(py)
                .call_method1(intern!(py, "_call_connection_lost"), (py.None(),))?;
        } else if eof {
            shutdown_write(fd)?;
        }
        Ok(())
    }
}

#[pymethods]
impl StreamCore {
    /// Closes the sending side once the buffer is flushed.
    fn write_eof(&self) -> PyResult<()> {
        let mut st = self.state.lock();
        if st.closing || st.eof {
            return Ok(());
        }
        st.eof = true;
        if st.buffer.is_empty() {
            shutdown_write(st.fd)?;
        }
        Ok(())
    }

    /// Sockets support half-close.
    fn can_write_eof(&self) -> bool {
        true
    }

    /// Bytes accepted by `write` and not yet sent.
    fn get_write_buffer_size(&self) -> usize {
        self.state.lock().buffer.len()
    }

    /// `(low, high)` water marks.
    fn get_write_buffer_limits(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.low, st.high)
    }

    /// Sets validated water marks (the Python transport validates them as
    /// asyncio does) and pauses the protocol if already above.
    fn _set_write_buffer_limits(slf: &Bound<'_, Self>, high: usize, low: usize) -> PyResult<()> {
        {
            let mut st = slf.get().state.lock();
            st.high = high;
            st.low = low;
        }
        Self::maybe_pause_protocol(slf)
    }

    /// A future done once the buffer is empty (for sendfile).
    fn _make_empty_waiter(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (event_loop, empty) = {
            let st = self.state.lock();
            if st.empty_waiter.is_some() {
                return Err(PyRuntimeError::new_err("Empty waiter is already set"));
            }
            (
                st.event_loop.as_ref().map(|l| l.clone_ref(py)),
                st.buffer.is_empty(),
            )
        };
        let event_loop =
            event_loop.ok_or_else(|| PyRuntimeError::new_err("Transport is closed"))?;
        let waiter = event_loop
            .bind(py)
            .call_method0(intern!(py, "create_future"))?;
        if empty {
            waiter.call_method1(intern!(py, "set_result"), (py.None(),))?;
        }
        self.state.lock().empty_waiter = Some(waiter.clone().unbind());
        Ok(waiter.unbind())
    }

    /// Forgets the empty waiter.
    fn _reset_empty_waiter(&self) {
        let old = self.state.lock().empty_waiter.take();
        drop(old);
    }

    /// The empty waiter, if any.
    #[getter]
    fn _empty_waiter(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state
            .lock()
            .empty_waiter
            .as_ref()
            .map(|w| w.clone_ref(py))
    }
}

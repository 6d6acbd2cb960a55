//! `SockWait`: the wake-up of a `sock_recv`, `sock_recv_into` or
//! `sock_sendall` that had to wait, run by the loop each time the socket is
//! ready (started by `sock_fast.rs`).
//!
//! It does what asyncio's `_sock_recv`, `_sock_recv_into` and
//! `_sock_sendall` do (nothing once the future is done, so a cancelled wait
//! never consumes data; keep waiting on EAGAIN; complete the future with the
//! data, the count, None, or the error), plus the job of asyncio's done
//! callback (`_sock_read_done`/`_sock_write_done`): a wait that completes
//! its future ends itself first, which costs no syscall (the poller's
//! report just disarmed the one-shot registration, see
//! `core/registration.rs`) and no extra callback. A wait whose future ends
//! otherwise (cancelled) is ended by the coroutine that awaited it
//! (`_sock_wait_abandoned`, `sock_fast.rs`).

use super::buffer::BufferView;
use super::recv::{recv_bytes, recv_into, Received};
use super::sock_fast::note_read;
use crate::errors::os_error;
use crate::eventloop::python::{future_is_done, future_type};
use crate::eventloop::{LoopBase, Slot};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;
use pyo3::{intern, PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a wait does when its socket is ready.
pub(crate) enum WaitKind {
    /// `sock_recv(sock, size)`: a `bytes` of at most `size` bytes.
    Recv {
        /// Most bytes to read (at most `recv::MAX_READ`).
        size: usize,
    },
    /// `sock_recv_into(sock, buf)`: fill `buf`, answer the count.
    RecvInto {
        /// The caller's writable buffer.
        buf: Py<PyAny>,
    },
    /// `sock_sendall(sock, data)`: send the rest of `view`.
    Sendall {
        /// `memoryview(data)`, held as asyncio holds it (a `bytearray`
        /// cannot be resized while the send is pending).
        view: Py<PyAny>,
        /// Bytes of `view` already sent.
        sent: AtomicUsize,
    },
}

impl WaitKind {
    /// The watcher slot the wait occupies.
    pub(crate) fn slot(&self) -> Slot {
        match self {
            WaitKind::Sendall { .. } => Slot::Writer,
            _ => Slot::Reader,
        }
    }
}

/// One pending `sock_*` operation: the loop's callback for its fd.
#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub(crate) struct SockWait {
    /// The loop whose fd table holds the wait.
    pub(crate) event_loop: Py<LoopBase>,
    /// The future the coroutine awaits.
    pub(crate) fut: Py<PyAny>,
    /// The socket (kept alive while waiting, as asyncio's callback args do).
    pub(crate) sock: Py<PyAny>,
    /// Its fd when the wait began (asyncio's `fd = sock.fileno()`).
    pub(crate) fd: i32,
    /// What to do when ready.
    pub(crate) kind: WaitKind,
}

/// `fut.set_result(value)` (or `set_exception`, by `name`). For an exact
/// `asyncio.Future` (the usual case) the method is looked up once and
/// called unbound (see `future_is_done` for why); the future of a loop
/// whose `create_future` is overridden gets an ordinary method call.
fn complete<'py>(
    fut: &Bound<'py, PyAny>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &'static str,
    value: Bound<'py, PyAny>,
) -> PyResult<()> {
    let py = fut.py();
    let future = future_type(py)?;
    if !fut.get_type().is(future) {
        return fut.call_method1(name, (value,)).map(drop);
    }
    let method = cell.get_or_try_init(py, || Ok::<_, PyErr>(future.getattr(name)?.unbind()))?;
    method.bind(py).call1((fut, value)).map(drop)
}

impl SockWait {
    /// One attempt at the operation: Some(result) once it is over, None to
    /// keep waiting.
    fn attempt<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let fd = self.fd;
        match &self.kind {
            WaitKind::Recv { size } => Ok(match recv_bytes(py, fd, *size)? {
                Received::Data(data) => {
                    note_read(fd, data.as_bytes().len(), *size);
                    Some(data.into_any())
                }
                Received::Eof => {
                    note_read(fd, 0, *size);
                    Some(PyBytes::new(py, b"").into_any())
                }
                Received::WouldBlock => None,
            }),
            WaitKind::RecvInto { buf } => {
                let mut view = BufferView::new(buf.bind(py), true)?;
                let asked = view.len();
                let received = recv_into(fd, view.as_mut_ptr(), asked).map_err(os_error)?;
                drop(view);
                Ok(match received {
                    Received::Data(n) => {
                        note_read(fd, n, asked);
                        Some(n.into_pyobject(py)?.into_any())
                    }
                    Received::Eof => {
                        note_read(fd, 0, asked);
                        Some(0usize.into_pyobject(py)?.into_any())
                    }
                    Received::WouldBlock => None,
                })
            }
            WaitKind::Sendall { view, sent } => {
                let data = BufferView::new(view.bind(py), false)?;
                let start = sent.load(Ordering::Relaxed);
                let rest = data.as_slice().get(start..).unwrap_or_default();
                match super::sock_fast::send_now(fd, rest)? {
                    n if start + n >= data.len() => Ok(Some(py.None().into_bound(py))),
                    n => {
                        sent.store(start + n, Ordering::Relaxed);
                        Ok(None)
                    }
                }
            }
        }
    }
}

#[pymethods]
impl SockWait {
    /// The loop calls this while the socket is ready and the wait is on.
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let fut = self.fut.bind(py);
        if future_is_done(fut) {
            return Ok(()); // cancelled: data read now would be lost
        }
        let outcome = match self.attempt(py) {
            Ok(None) => return Ok(()),
            Ok(Some(value)) => Ok(value),
            Err(err) => Err(err),
        };
        LoopBase::end_wait(self.event_loop.bind(py), self.fd, self.kind.slot(), fut)?;
        static SET_RESULT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        static SET_EXCEPTION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        match outcome {
            Ok(value) => complete(fut, &SET_RESULT, "set_result", value),
            Err(err) => complete(
                fut,
                &SET_EXCEPTION,
                "set_exception",
                err.into_value(py).into_bound(py).into_any(),
            ),
        }
    }

    fn __repr__(&self) -> String {
        let what = match self.kind {
            WaitKind::Recv { .. } => "sock_recv",
            WaitKind::RecvInto { .. } => "sock_recv_into",
            WaitKind::Sendall { .. } => "sock_sendall",
        };
        format!("<{what} wait on fd {}>", self.fd)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        visit.call(&self.fut)?;
        visit.call(&self.sock)?;
        match &self.kind {
            WaitKind::Recv { .. } => Ok(()),
            WaitKind::RecvInto { buf } => visit.call(buf),
            WaitKind::Sendall { view, .. } => visit.call(view),
        }
    }
}

/// `fut.cancelled()`, for the rare paths.
pub(crate) fn future_cancelled(fut: &Bound<'_, PyAny>) -> PyResult<bool> {
    fut.call_method0(intern!(fut.py(), "cancelled"))?
        .is_truthy()
}

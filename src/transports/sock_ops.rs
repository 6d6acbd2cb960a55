//! The try-at-once halves of `sock_recv` and `sock_recv_into`.
//!
//! asyncio's versions call `sock.recv(n)` and catch `BlockingIOError` when
//! nothing has arrived yet, which is the usual case for a server waiting on
//! its next request: raising and catching that exception costs more than the
//! syscall. These do the syscall directly and answer None instead. Anything
//! unusual (a socket subclass, a timeout, an odd size or buffer) goes
//! through `sock.recv`/`sock.recv_into` as asyncio does, so results and
//! errors stay identical.

use super::buffer::BufferView;
use super::recv::{recv_bytes, recv_into, Received, MAX_READ};
use crate::errors::os_error;
use pyo3::exceptions::{PyBlockingIOError, PyInterruptedError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyFloat, PyInt};

/// Registers the functions on the extension module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sock_recv_now, m)?)?;
    m.add_function(wrap_pyfunction!(sock_recv_into_now, m)?)?;
    Ok(())
}

/// `socket.socket`, looked up once.
fn socket_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    TYPE.get_or_try_init(py, || Ok(py.import("socket")?.getattr("socket")?.unbind()))
        .map(|t| t.bind(py))
}

/// `socket.socket.gettimeout` and `socket.socket.fileno`, looked up once
/// on the class: calling them unbound on an exact `socket.socket` skips
/// the per-call method lookup, about a third of each call's cost.
fn socket_methods(py: Python<'_>) -> PyResult<&(Py<PyAny>, Py<PyAny>)> {
    static METHODS: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();
    METHODS.get_or_try_init(py, || {
        let class = socket_type(py)?;
        Ok((
            class.getattr(intern!(py, "gettimeout"))?.unbind(),
            class.getattr(intern!(py, "fileno"))?.unbind(),
        ))
    })
}

/// The fd of `sock` when it is a plain `socket.socket` in non-blocking mode
/// (timeout 0), the only kind whose `recv` is exactly one `recv(2)`.
pub(super) fn plain_nonblocking_fd(sock: &Bound<'_, PyAny>) -> PyResult<Option<i32>> {
    let py = sock.py();
    if !sock.get_type().is(socket_type(py)?) {
        return Ok(None);
    }
    let (gettimeout, fileno) = socket_methods(py)?;
    let timeout = gettimeout.bind(py).call1((sock,))?;
    match timeout.cast::<PyFloat>() {
        Ok(t) if t.value() == 0.0 => {}
        _ => return Ok(None),
    }
    fileno.bind(py).call1((sock,))?.extract().map(Some)
}

/// The result of `sock.<method>(arg)`, or None if it would block.
fn call_unless_blocking<'py>(
    sock: &Bound<'py, PyAny>,
    method: &Bound<'py, pyo3::types::PyString>,
    arg: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = sock.py();
    match sock.call_method1(method, (arg,)) {
        Ok(result) => Ok(Some(result)),
        Err(e)
            if e.is_instance_of::<PyBlockingIOError>(py)
                || e.is_instance_of::<PyInterruptedError>(py) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `sock.recv(n)`, or None when nothing has arrived yet.
#[pyfunction]
fn sock_recv_now<'py>(
    sock: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = sock.py();
    let size = match n.cast::<PyInt>() {
        Ok(n) => n.extract::<usize>().ok().filter(|&n| n <= MAX_READ),
        Err(_) => None,
    };
    let (Some(size), Some(fd)) = (size, plain_nonblocking_fd(sock)?) else {
        return call_unless_blocking(sock, intern!(py, "recv"), n);
    };
    match recv_bytes(py, fd, size)? {
        Received::Data(data) => Ok(Some(data.into_any())),
        Received::Eof => Ok(Some(PyBytes::new(py, b"").into_any())),
        Received::WouldBlock => Ok(None),
    }
}

/// `sock.recv_into(buf)`, or None when nothing has arrived yet.
#[pyfunction]
fn sock_recv_into_now<'py>(
    sock: &Bound<'py, PyAny>,
    buf: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = sock.py();
    let view = match plain_nonblocking_fd(sock)? {
        Some(fd) => BufferView::new(buf, true).ok().map(|v| (fd, v)),
        None => None,
    };
    let Some((fd, mut view)) = view else {
        // Unusual socket or buffer: let `recv_into` decide, errors included.
        return call_unless_blocking(sock, intern!(py, "recv_into"), buf);
    };
    let received = recv_into(fd, view.as_mut_ptr(), view.len()).map_err(os_error)?;
    drop(view);
    match received {
        Received::Data(n) => Ok(Some(n.into_pyobject(py)?.into_any())),
        Received::Eof => Ok(Some(0usize.into_pyobject(py)?.into_any())),
        Received::WouldBlock => Ok(None),
    }
}

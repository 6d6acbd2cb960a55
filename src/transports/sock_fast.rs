//! `sock_recv`, `sock_recv_into` and `sock_sendall` in one call each, for
//! plain non-blocking sockets: try at once, and when that would block,
//! create the future and install the one-shot wait (`sock_wait.rs`) whose
//! wake-up finishes the job. asyncio does the same in Python (a future, a
//! reader handle calling a bound method with four arguments, a
//! `functools.partial` done callback that removes the reader); per request
//! that was most of a `sock_*` echo server's own CPU time.
//!
//! A read that drained the socket (got some bytes, but less than it asked
//! for) marks the fd: the next `sock_recv` or `sock_recv_into` on it waits
//! without trying first, since the try would most likely find nothing. In
//! the request/response pattern (the next request cannot arrive before the
//! response to this one was sent) that try was a `recv` (plus an `ioctl`
//! for large reads) failing with EAGAIN on every request. A read that fills
//! its request, or finds EOF, clears the mark. When the guess is wrong the
//! data is reported by the next poll: one loop iteration later, never lost
//! (uvloop's `sock_recv` always waits first).
//!
//! Each `_sock_*_fast` method answers the result, the future to await, or
//! `NotImplemented` when the call is not one it handles: debug mode, a
//! socket subclass (`ssl.SSLSocket` included), a socket with a timeout, an
//! unusual size or buffer. The Python coroutine (`_network.py`) then runs
//! the asyncio-equivalent path, so checks, results and errors stay
//! asyncio's exactly.

use super::buffer::BufferView;
use super::recv::{recv_bytes, Received, MAX_READ};
use super::sock_ops::plain_nonblocking_fd;
use super::sock_wait::{future_cancelled, SockWait, WaitKind};
use crate::core::fd_bits::FdBits;
use crate::core::sys::check;
use crate::eventloop::{LoopBase, Slot};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyInt, PyMemoryView};
use std::cell::RefCell;
use std::sync::atomic::AtomicUsize;

thread_local! {
    /// The fds whose next read waits before trying (see the module docs).
    /// Per thread: a socket is read by the loop it belongs to, and loops on
    /// one thread run one at a time. Only a hint (`core/fd_bits.rs`).
    static WAIT_FIRST: RefCell<FdBits> = const { RefCell::new(FdBits::new()) };
}

/// Records, after a read of `fd` got `got` bytes of `asked` (0 at EOF),
/// whether the next read on `fd` should wait before trying.
pub(crate) fn note_read(fd: i32, got: usize, asked: usize) {
    let drained = got > 0 && got < asked;
    WAIT_FIRST.with_borrow_mut(|bits| {
        if bits.get(fd) != drained {
            bits.set(fd, drained);
        }
    });
}

/// True when a read of `asked` bytes on `fd` should wait before trying: a
/// read of 0 bytes never waits (asyncio answers it at once).
fn waits_first(fd: i32, asked: usize) -> bool {
    asked > 0 && WAIT_FIRST.with_borrow(|bits| bits.get(fd))
}

/// One `send` of `data` (flags 0, as `socket.send`); the byte count, 0 when
/// the socket cannot take any now (EAGAIN, EINTR).
pub(crate) fn send_now(fd: i32, data: &[u8]) -> PyResult<usize> {
    // SAFETY: `data` is a valid slice for the duration of the call.
    let sent = check(unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), 0) });
    match sent {
        Ok(n) => Ok(n as usize),
        Err(e) if super::recv::would_block(&e) => Ok(0),
        Err(e) => Err(crate::errors::os_error(e)),
    }
}

impl LoopBase {
    /// The fd of `sock` if this module handles it: not in debug mode (where
    /// asyncio checks the socket's mode first), and a plain non-blocking
    /// `socket.socket`.
    fn fast_fd(slf: &Bound<'_, Self>, sock: &Bound<'_, PyAny>) -> PyResult<Option<i32>> {
        if slf.get().is_debug() {
            return Ok(None);
        }
        plain_nonblocking_fd(sock)
    }

    /// asyncio's `_ensure_fd_no_transport(fd)`: the dict lookup here, the
    /// Python method (which raises asyncio's RuntimeError) only when a
    /// transport was registered for the fd.
    fn ensure_no_transport(slf: &Bound<'_, Self>, fd: i32) -> PyResult<()> {
        let py = slf.py();
        // `_transports` is made once by `Loop.__init__` and its `data` dict
        // is never replaced (WeakValueDictionary mutates it in place).
        let data = slf.get().transports_by_fd.get_or_try_init(py, || {
            let data = slf
                .getattr(intern!(py, "_transports"))?
                .getattr(intern!(py, "data"))?;
            Ok::<_, PyErr>(data.cast_into::<PyDict>()?.unbind())
        })?;
        if data.bind(py).contains(fd)? {
            slf.call_method1(intern!(py, "_ensure_fd_no_transport"), (fd,))?;
        }
        Ok(())
    }

    /// The second half of asyncio's `sock_*`: a future, the transport
    /// check, and the wait on `fd` (which raises on a closed loop).
    fn start_wait<'py>(
        slf: &Bound<'py, Self>,
        sock: &Bound<'py, PyAny>,
        fd: i32,
        kind: WaitKind,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        // Through the method, as asyncio's sock_* do: a subclass or a patch
        // of `create_future` sees these futures too.
        let fut = slf.call_method0(intern!(py, "create_future"))?;
        Self::ensure_no_transport(slf, fd)?;
        let slot = kind.slot();
        let wait = SockWait {
            event_loop: slf.clone().unbind(),
            fut: fut.clone().unbind(),
            sock: sock.clone().unbind(),
            fd,
            kind,
        };
        let wait = Bound::new(py, wait)?;
        Self::watch_until(slf, fd, slot, fut.clone(), wait.into_any())?;
        Ok(fut)
    }
}

#[pymethods]
impl LoopBase {
    /// `sock_recv(sock, n)`: the `bytes` read at once, the future a wait
    /// completes, or NotImplemented (see the module docs).
    fn _sock_recv_fast<'py>(
        slf: &Bound<'py, Self>,
        sock: &Bound<'py, PyAny>,
        n: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let size = match n.cast::<PyInt>() {
            Ok(n) => n.extract::<usize>().ok().filter(|&n| n <= MAX_READ),
            Err(_) => None,
        };
        let (Some(size), Some(fd)) = (size, Self::fast_fd(slf, sock)?) else {
            return Ok(py.NotImplemented().into_bound(py));
        };
        if waits_first(fd, size) {
            return Self::start_wait(slf, sock, fd, WaitKind::Recv { size });
        }
        match recv_bytes(py, fd, size)? {
            Received::Data(data) => {
                note_read(fd, data.as_bytes().len(), size);
                Ok(data.into_any())
            }
            Received::Eof => {
                note_read(fd, 0, size);
                Ok(PyBytes::new(py, b"").into_any())
            }
            Received::WouldBlock => Self::start_wait(slf, sock, fd, WaitKind::Recv { size }),
        }
    }

    /// `sock_recv_into(sock, buf)`: the count read at once, the future a
    /// wait completes, or NotImplemented.
    fn _sock_recv_into_fast<'py>(
        slf: &Bound<'py, Self>,
        sock: &Bound<'py, PyAny>,
        buf: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let view = match Self::fast_fd(slf, sock)? {
            Some(fd) => BufferView::new(buf, true).ok().map(|v| (fd, v)),
            None => None,
        };
        let Some((fd, mut view)) = view else {
            return Ok(py.NotImplemented().into_bound(py));
        };
        if waits_first(fd, view.len()) {
            drop(view);
            let kind = WaitKind::RecvInto {
                buf: buf.clone().unbind(),
            };
            return Self::start_wait(slf, sock, fd, kind);
        }
        let asked = view.len();
        let received = super::recv::recv_into(fd, view.as_mut_ptr(), asked)
            .map_err(crate::errors::os_error)?;
        drop(view);
        match received {
            Received::Data(n) => {
                note_read(fd, n, asked);
                Ok(n.into_pyobject(py)?.into_any())
            }
            Received::Eof => {
                note_read(fd, 0, asked);
                Ok(0usize.into_pyobject(py)?.into_any())
            }
            Received::WouldBlock => {
                let kind = WaitKind::RecvInto {
                    buf: buf.clone().unbind(),
                };
                Self::start_wait(slf, sock, fd, kind)
            }
        }
    }

    /// `sock_sendall(sock, data)`: None once all is sent at once, the
    /// future a wait completes, or NotImplemented. Only `bytes` and
    /// `bytearray` are handled: for them `len(data)` counts bytes, which
    /// asyncio's completion test relies on.
    fn _sock_sendall_fast<'py>(
        slf: &Bound<'py, Self>,
        sock: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let plain =
            data.is_exact_instance_of::<PyBytes>() || data.is_exact_instance_of::<PyByteArray>();
        let fd = if plain {
            Self::fast_fd(slf, sock)?
        } else {
            None
        };
        let Some(fd) = fd else {
            return Ok(py.NotImplemented().into_bound(py));
        };
        let view = BufferView::new(data, false)?;
        let sent = send_now(fd, view.as_slice())?;
        if sent == view.len() {
            return Ok(py.None().into_bound(py));
        }
        drop(view);
        let kind = WaitKind::Sendall {
            view: PyMemoryView::from(data)?.into_any().unbind(),
            sent: AtomicUsize::new(sent),
        };
        Self::start_wait(slf, sock, fd, kind)
    }

    /// Ends the wait of `fut` (returned by a `_sock_*_fast` method) once
    /// its coroutine stopped awaiting it because `fut` was cancelled: what
    /// asyncio's done callback does, paid for only on this rare path. A wait
    /// whose future is not cancelled is left as asyncio leaves it: completed
    /// by its wake-up (which ended it), or still pending (the coroutine was
    /// closed or had an exception thrown in: asyncio's reader stays until
    /// its future is done). `sock.fileno()` usually names the fd; if the
    /// socket was closed meanwhile, the table is searched. A wait that is
    /// gone (replaced by another watcher) is left alone.
    fn _sock_wait_abandoned(
        slf: &Bound<'_, Self>,
        sock: &Bound<'_, PyAny>,
        fut: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if !future_cancelled(fut)? {
            return Ok(());
        }
        let hint = sock
            .call_method0(intern!(slf.py(), "fileno"))
            .and_then(|fd| fd.extract::<i32>())
            .ok();
        if let Some(fd) = hint {
            for slot in [Slot::Reader, Slot::Writer] {
                if Self::end_wait(slf, fd, slot, fut)? {
                    return Ok(());
                }
            }
        }
        if let Some((fd, slot)) = slf.get().find_wait(fut) {
            Self::end_wait(slf, fd, slot, fut)?;
        }
        Ok(())
    }
}

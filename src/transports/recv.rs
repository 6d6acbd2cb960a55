//! Non-blocking reads from a socket fd, shared by the transport and the
//! `sock_*` fast paths.

use crate::core::sys::check;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::cell::RefCell;

/// Most bytes asked of one `recv` into a new `bytes` (asyncio's
/// `max_size`).
pub(crate) const MAX_READ: usize = 256 * 1024;

thread_local! {
    /// Where reads land before being copied into a `bytes` of the exact
    /// size: one per thread, since loops on one thread run one at a time.
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What one `recv` found.
pub(crate) enum Received<T> {
    /// Nothing to read yet (EAGAIN or EINTR): wait for the poller.
    WouldBlock,
    /// The peer closed its side.
    Eof,
    /// Data arrived.
    Data(T),
}

/// True for the errors that mean "not now, try when the poller says so".
pub(crate) fn would_block(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR))
}

/// One `recv` into `ptr[..len]`; `Data(n)` is the byte count.
pub(crate) fn recv_into(fd: i32, ptr: *mut u8, len: usize) -> std::io::Result<Received<usize>> {
    // SAFETY: the callers pass a writable region of `len` bytes that stays
    // valid and unaliased for the call (the thread's read buffer, or a
    // buffer view borrowed from Python and held across the call).
    let n = check(unsafe { libc::recv(fd, ptr.cast(), len, 0) });
    match n {
        Ok(0) if len > 0 => Ok(Received::Eof),
        Ok(n) => Ok(Received::Data(n as usize)),
        Err(e) if would_block(&e) => Ok(Received::WouldBlock),
        Err(e) => Err(e),
    }
}

/// One `recv` of at most `max` bytes (`max <= MAX_READ`) into a new
/// `bytes` of exactly the size received.
pub(crate) fn recv_bytes<'py>(
    py: Python<'py>,
    fd: i32,
    max: usize,
) -> std::io::Result<Received<Bound<'py, PyBytes>>> {
    debug_assert!(max <= MAX_READ);
    READ_BUFFER.with_borrow_mut(|buf| {
        if buf.len() < MAX_READ {
            buf.resize(MAX_READ, 0);
        }
        // No Python code runs while the buffer is borrowed: `PyBytes::new`
        // allocates an untracked object, which never starts a collection.
        Ok(match recv_into(fd, buf.as_mut_ptr(), max)? {
            Received::Data(n) => Received::Data(PyBytes::new(py, &buf[..n])),
            Received::Eof => Received::Eof,
            Received::WouldBlock => Received::WouldBlock,
        })
    })
}

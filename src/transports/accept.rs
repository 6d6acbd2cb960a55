//! `accept_now`: one non-blocking accept on a TCP listening socket, for the
//! loop's server accept path (`_accept_connection` in
//! `ferroloop/_network.py`).
//!
//! Why not `sock.accept()`: the `socket.socket` wrapper converts the
//! listener's family and type to enums on every call (~2 µs), and the
//! accept that finds the queue empty, which ends every batch, raises and
//! catches a `BlockingIOError` (~4 µs). Here that accept returns None.

use crate::errors::os_error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::ffi::CStr;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::RawFd;

/// Accepts one connection on the listening socket `fd` (non-blocking, an
/// IPv4 or IPv6 socket): `(fd, address)` with the address as
/// `socket.accept()` gives it, or None if none is waiting. The new fd is
/// close-on-exec, as `socket.accept()` makes it, and already non-blocking
/// (what asyncio asks of it next, here without an `ioctl`: the caller
/// makes its `socket.socket` with `SOCK_NONBLOCK` in the type, which sets
/// the object's timeout to 0 without a syscall). Errors raise the `OSError`
/// that `socket.accept()` would (an interrupted call is retried once signal
/// handlers have run, as Python's is).
#[pyfunction]
pub(super) fn accept_now(py: Python<'_>, fd: RawFd) -> PyResult<Option<(RawFd, Py<PyAny>)>> {
    loop {
        let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `storage` is writable for `len` bytes and `len` is a
        // valid out-parameter; a bad `fd` only makes the call fail.
        let conn = unsafe {
            libc::accept4(
                fd,
                storage.as_mut_ptr().cast(),
                &mut len,
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if conn >= 0 {
            // SAFETY: zero-initialised, then filled by the kernel.
            let storage = unsafe { storage.assume_init() };
            return match address(py, &storage, len) {
                Ok(addr) => Ok(Some((conn, addr))),
                Err(err) => {
                    // SAFETY: `conn` is ours and handed to nobody.
                    unsafe { libc::close(conn) };
                    Err(err)
                }
            };
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock => return Ok(None),
            io::ErrorKind::Interrupted => py.check_signals()?,
            _ => return Err(os_error(err)),
        }
    }
}

/// The address the kernel wrote (`len` bytes of `storage`) as CPython's
/// `socket` module returns it: `(host, port)` for IPv4, `(host, port,
/// flowinfo, scope_id)` for IPv6, the host spelled as `inet_ntop` does.
fn address(
    py: Python<'_>,
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> PyResult<Py<PyAny>> {
    let len = len as usize;
    let family = libc::c_int::from(storage.ss_family);
    if family == libc::AF_INET && len >= size_of::<libc::sockaddr_in>() {
        // SAFETY: the kernel wrote a sockaddr_in (family and length checked);
        // sockaddr_storage is large and aligned enough for any address.
        let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
        // Formatted here: the C library's `inet_ntop` uses `sprintf` for
        // IPv4 (~2,000 instructions); a dotted quad has only one spelling.
        let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
        let host = PyString::new(py, &ip.to_string());
        let port = u16::from_be(a.sin_port);
        return Ok((host, port).into_pyobject(py)?.into_any().unbind());
    }
    if family == libc::AF_INET6 && len >= size_of::<libc::sockaddr_in6>() {
        // SAFETY: as above, for a sockaddr_in6.
        let a =
            unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
        let host = ipv6_host(py, &a.sin6_addr)?;
        let port = u16::from_be(a.sin6_port);
        let flowinfo = u32::from_be(a.sin6_flowinfo);
        return Ok((host, port, flowinfo, a.sin6_scope_id)
            .into_pyobject(py)?
            .into_any()
            .unbind());
    }
    Err(PyValueError::new_err(format!(
        "accept_now: not an IPv4 or IPv6 address (family {family})"
    )))
}

// The C library's formatter, which CPython's `socket` module uses (the
// `libc` crate does not declare it). Rust's own `Ipv6Addr` formatting
// differs for some addresses (IPv4-compatible ones, for example).
extern "C" {
    fn inet_ntop(
        af: libc::c_int,
        src: *const libc::c_void,
        dst: *mut libc::c_char,
        size: libc::socklen_t,
    ) -> *const libc::c_char;
}

/// `inet_ntop(AF_INET6, addr)` as a str.
fn ipv6_host<'py>(py: Python<'py>, addr: &libc::in6_addr) -> PyResult<Bound<'py, PyString>> {
    // INET6_ADDRSTRLEN: the longest spelling, with its NUL.
    let mut buf = [0 as libc::c_char; 46];
    // SAFETY: `addr` is an IPv6 address and `buf` is writable for its
    // whole length.
    let text = unsafe {
        inet_ntop(
            libc::AF_INET6,
            (addr as *const libc::in6_addr).cast(),
            buf.as_mut_ptr(),
            buf.len() as _,
        )
    };
    if text.is_null() {
        return Err(os_error(io::Error::last_os_error()));
    }
    // SAFETY: on success `buf` holds a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(PyString::new(py, &text.to_string_lossy()))
}

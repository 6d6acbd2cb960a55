//! Non-blocking reads from a socket fd, shared by the transport and the
//! `sock_*` fast paths.
//!
//! A read into a new `bytes` takes one of two paths:
//!
//! - **Copy** (the default): `recv` into a per-thread 256 KiB buffer, then
//!   copy what arrived into a `bytes` of exactly that size. One syscall;
//!   the copy is cheap for small reads.
//! - **Direct**, for sockets whose previous read was large (at least
//!   `LARGE_READ` bytes): `recv` straight into a new `bytes`, with no copy.
//!   For a maximum of up to `UP_FRONT_MAX` the object is allocated at the
//!   maximum and shrunk to what arrived, as `socket.recv` does. For larger
//!   maxima (a transport's 256 KiB) that allocation would be a `mmap` and a
//!   `munmap` per read, so the kernel is asked how much is queued
//!   (`FIONREAD`) and exactly that much is allocated. A socket falls back
//!   to the copy path as soon as one of its reads is small.
//!
//! Why allocate up front: with exact sizes, glibc kept returning the top of
//! the heap to the kernel and growing it again, and the kernel's copy into
//! the fresh pages page-faulted: ~6.5 page faults per 100 KiB echo request
//! of the `sock_*` server (asyncio's `sock.recv`: ~1.4), which were most of
//! its system time. Allocating the maximum and shrinking leaves the heap as
//! `socket.recv` does and saves the `ioctl` too (docs/benchmarks.md,
//! session 6).
//!
//! The up-front allocation is PEP 782's `PyBytesWriter` (public C API from
//! 3.15, pyo3's backport on top of `_PyBytes_Resize` before). The exact
//! allocation uses public C API only: `PyBytes_FromStringAndSize(NULL, n)`
//! and `PyBytes_AsString`, and it does not shrink the object afterwards: a
//! `recv` that fills less than the kernel said was queued (possible on Unix
//! sockets, where a read stops at a message carrying fds or other
//! credentials) falls back to copying the part that arrived.

use super::spare_bytes::{self, Spare};
use crate::core::fd_bits::FdBits;
use crate::core::sys::check;
use crate::errors::os_error;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::cell::RefCell;

/// Most bytes asked of one `recv` into a new `bytes` (asyncio's
/// `max_size`).
pub(crate) const MAX_READ: usize = 256 * 1024;

/// A read of at least this many bytes makes the next read of the same fd
/// take the direct path. Measured on the development VM (2 cores):
/// `ioctl(FIONREAD)` on a TCP socket costs ~270 ns of CPU, copying 32 KiB
/// into a fresh buffer ~250-300 ns (64 KiB: ~600 ns, 100 KiB: ~900 ns). Once
/// the ioctl is paid, reading directly is cheaper whatever the size, so the
/// threshold only decides when asking is likely to pay.
pub(crate) const LARGE_READ: usize = 32 * 1024;

/// The largest maximum a direct read allocates up front (see the module
/// docs): well under glibc's default `mmap` threshold (128 KiB), so the
/// allocation comes from the heap. 64 KiB is also the size most programs
/// pass to `sock_recv`.
const UP_FRONT_MAX: usize = 64 * 1024;

/// A thread's reading state: one per thread, since loops on one thread run
/// one at a time (one thread-local, as each access to one costs a call).
struct Reader {
    /// Where copy-path reads land before being copied into a `bytes` of
    /// the exact size (`MAX_READ` bytes once used).
    buffer: Vec<u8>,
    /// The fds whose last read on this thread returned at least
    /// `LARGE_READ` bytes: their next read takes the direct path.
    large: FdBits,
    /// A `bytes` a transport's protocol let go of, for the next transport
    /// read (`recv_reusing`, `spare_bytes.rs`).
    spare: Spare,
}

thread_local! {
    /// This thread's `Reader`.
    static READER: RefCell<Reader> = const {
        RefCell::new(Reader { buffer: Vec::new(), large: FdBits::new(), spare: Spare::new() })
    };
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
    // valid and unaliased for the call (the thread's read buffer, a new
    // `bytes` only the caller holds, or a buffer view borrowed from Python
    // and held across the call).
    let n = check(unsafe { libc::recv(fd, ptr.cast(), len, 0) });
    match n {
        Ok(0) if len > 0 => Ok(Received::Eof),
        Ok(n) => Ok(Received::Data(n as usize)),
        Err(e) if would_block(&e) => Ok(Received::WouldBlock),
        Err(e) => Err(e),
    }
}

/// The number of bytes queued for reading on `fd` (`FIONREAD`, also known
/// as `SIOCINQ`), or None when the fd cannot tell.
///
/// On a TCP socket this counts the bytes up to the urgent mark and leaves
/// out a received FIN, so it is 0 at EOF and at an urgent mark, where
/// `recv` still has something to report (EOF, or the data past the mark);
/// callers treat 0 as "don't know".
fn queued(fd: i32) -> Option<usize> {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one `int` through its argument, which points
    // at `count`, a live local of that type.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut count) }).ok()?;
    usize::try_from(count).ok()
}

/// One `recv` of at most `max` bytes (`max <= MAX_READ`) into a new
/// `bytes` of exactly the size received, by the direct path when `fd`'s
/// previous read was large, else by the copy path (see the module comment).
///
/// Errors are what `socket.recv` raises: the `OSError` of a failed `recv`,
/// or `MemoryError`. The data, EOF and would-block outcomes are the same
/// on both paths, which differ only in the length asked of `recv`.
pub(crate) fn recv_bytes<'py>(
    py: Python<'py>,
    fd: i32,
    max: usize,
) -> PyResult<Received<Bound<'py, PyBytes>>> {
    debug_assert!(max <= MAX_READ);
    // No Python code runs while the reader is borrowed: making a `bytes`
    // never starts a collection or calls back.
    READER
        .with_borrow_mut(|reader| reader.recv_bytes(py, fd, max))
        .map_err(|err| match err {
            ReadError::Os(err) => os_error(err),
            ReadError::Python => PyErr::fetch(py),
        })
}

/// A transport read: `recv_bytes` of `MAX_READ`, but landing in the
/// thread's spare `bytes` when it has one (see `spare_bytes.rs`). Gives the
/// `bytes` and its capacity, for `offer_spare` once the protocol is done.
pub(crate) fn recv_reusing<'py>(
    py: Python<'py>,
    fd: i32,
) -> PyResult<Received<(Bound<'py, PyBytes>, usize)>> {
    READER
        .with_borrow_mut(|reader| reader.recv_reusing(py, fd))
        .map_err(|err| match err {
            ReadError::Os(err) => os_error(err),
            ReadError::Python => PyErr::fetch(py),
        })
}

/// Offers what `recv_reusing` gave back once the protocol has seen it: kept
/// for the next read if nothing else references it.
pub(crate) fn offer_spare(data: Bound<'_, PyBytes>, capacity: usize) {
    let replaced = READER.with_borrow_mut(|reader| reader.spare.offer(data, capacity));
    drop(replaced);
}

/// Why a read failed (small, unlike `PyErr`, to keep the common path lean).
enum ReadError {
    /// `recv` failed.
    Os(std::io::Error),
    /// A Python exception is set (`MemoryError` from making the `bytes`).
    Python,
}

impl From<std::io::Error> for ReadError {
    fn from(err: std::io::Error) -> Self {
        ReadError::Os(err)
    }
}

/// What the paths return: the `bytes` and its length, or why not.
type ReadResult<'py> = Result<Received<(Bound<'py, PyBytes>, usize)>, ReadError>;

impl Reader {
    /// See `recv_bytes`.
    #[inline]
    fn recv_bytes<'py>(
        &mut self,
        py: Python<'py>,
        fd: i32,
        max: usize,
    ) -> Result<Received<Bound<'py, PyBytes>>, ReadError> {
        // A read capped below LARGE_READ can be neither large nor worth an
        // ioctl, and says nothing about the reads after it: it leaves the
        // hint as it is (a server reading a small header, then a body).
        let was_large = max >= LARGE_READ && self.large.get(fd);
        let received = if was_large {
            self.recv_asking_first(py, fd, max)?
        } else {
            self.recv_copied(py, fd, max)?
        };
        Ok(match received {
            Received::Data((data, len)) => {
                let large = len >= LARGE_READ;
                if large != was_large {
                    self.large.set(fd, large);
                }
                Received::Data(data)
            }
            Received::Eof => Received::Eof,
            Received::WouldBlock => Received::WouldBlock,
        })
    }

    /// See `recv_reusing`. With a spare of capacity `c`, one `readv` fills
    /// the spare first and the thread's buffer after it (up to `MAX_READ`
    /// in all, as one `recv` would): a read that fits the spare is handed
    /// out in it, with no copy; a longer or much shorter one is copied into
    /// a new `bytes`, and the spare stays.
    fn recv_reusing<'py>(
        &mut self,
        py: Python<'py>,
        fd: i32,
    ) -> Result<Received<(Bound<'py, PyBytes>, usize)>, ReadError> {
        let Some((spare, capacity)) = self.spare.take() else {
            return Ok(match self.recv_bytes(py, fd, MAX_READ)? {
                Received::Data(data) => {
                    let len = data.as_bytes().len();
                    Received::Data((data, len))
                }
                Received::Eof => Received::Eof,
                Received::WouldBlock => Received::WouldBlock,
            });
        };
        debug_assert!(capacity <= MAX_READ);
        if self.buffer.len() < MAX_READ {
            self.buffer.resize(MAX_READ, 0);
        }
        let head = spare_bytes::storage(&spare);
        let iov = [
            libc::iovec {
                iov_base: head.cast(),
                iov_len: capacity,
            },
            libc::iovec {
                iov_base: self.buffer.as_mut_ptr().cast(),
                iov_len: MAX_READ - capacity,
            },
        ];
        // SAFETY: both regions are writable for their lengths and nothing
        // else uses them during the call: the spare's storage (only this
        // thread references the object, which we hold) and the thread's
        // buffer (borrowed mutably through `self`).
        let got = check(unsafe { libc::readv(fd, iov.as_ptr(), 2) });
        let n = match got {
            Ok(0) => {
                self.spare.put_back(spare, capacity);
                return Ok(Received::Eof);
            }
            Ok(n) => n as usize,
            Err(e) => {
                self.spare.put_back(spare, capacity);
                return if would_block(&e) {
                    Ok(Received::WouldBlock)
                } else {
                    Err(ReadError::Os(e))
                };
            }
        };
        let large = n >= LARGE_READ;
        if large != self.large.get(fd) {
            self.large.set(fd, large);
        }
        if spare_bytes::fits(n, capacity) {
            return Ok(Received::Data((
                spare_bytes::finish(py, spare, n),
                capacity,
            )));
        }
        // SAFETY: `readv` filled the first min(n, capacity) bytes of the
        // spare's storage, which stays valid while we hold `spare`.
        let head = unsafe { std::slice::from_raw_parts(head, n.min(capacity)) };
        let data = if n <= capacity {
            copy_to_bytes(py, head)
        } else {
            concat_to_bytes(py, head, &self.buffer[..n - capacity])
        };
        self.spare.put_back(spare, capacity);
        Ok(Received::Data((data?, n)))
    }

    /// The copy path: `recv` into the thread's buffer, then copy.
    #[inline(always)]
    fn recv_copied<'py>(&mut self, py: Python<'py>, fd: i32, max: usize) -> ReadResult<'py> {
        if self.buffer.len() < MAX_READ {
            self.buffer.resize(MAX_READ, 0);
        }
        Ok(match recv_into(fd, self.buffer.as_mut_ptr(), max)? {
            Received::Data(n) => Received::Data((copy_to_bytes(py, &self.buffer[..n])?, n)),
            Received::Eof => Received::Eof,
            Received::WouldBlock => Received::WouldBlock,
        })
    }

    /// The direct path: up front for a maximum of at most `UP_FRONT_MAX`;
    /// otherwise asks how much is queued and allocates that, or takes the
    /// copy path if the kernel cannot tell.
    #[inline(never)]
    fn recv_asking_first<'py>(&mut self, py: Python<'py>, fd: i32, max: usize) -> ReadResult<'py> {
        if max <= UP_FRONT_MAX {
            return recv_up_front(py, fd, max);
        }
        // 0 is also what FIONREAD says at EOF, at a TCP urgent mark, and
        // when an error is pending: the copy path's `recv` tells those apart.
        match queued(fd) {
            Some(queued) if queued > 0 => recv_new_bytes(py, fd, queued.min(max)),
            _ => self.recv_copied(py, fd, max),
        }
    }
}

/// A new `bytes` holding a copy of `data`. A failed allocation is
/// `ReadError::Python` with MemoryError set, as `socket.recv` raises it
/// (pyo3's `PyBytes::new` would panic instead).
fn copy_to_bytes<'py>(py: Python<'py>, data: &[u8]) -> Result<Bound<'py, PyBytes>, ReadError> {
    // SAFETY: `data` is a valid slice, of which PyBytes_FromStringAndSize
    // copies `data.len()` bytes (a slice is never longer than isize::MAX,
    // so the length cast is exact). It returns a new reference to a
    // `bytes`, or null with an exception set.
    let copy = unsafe {
        Bound::from_owned_ptr_or_opt(
            py,
            ffi::PyBytes_FromStringAndSize(data.as_ptr().cast(), data.len() as ffi::Py_ssize_t),
        )
    }
    .ok_or(ReadError::Python)?;
    // SAFETY: PyBytes_FromStringAndSize returns a `bytes` when it succeeds.
    Ok(unsafe { copy.cast_into_unchecked() })
}

/// A new `bytes` holding `head` followed by `tail`.
fn concat_to_bytes<'py>(
    py: Python<'py>,
    head: &[u8],
    tail: &[u8],
) -> Result<Bound<'py, PyBytes>, ReadError> {
    let len = head.len() + tail.len();
    // SAFETY: with a null pointer, PyBytes_FromStringAndSize returns a new
    // `bytes` of `len` bytes with unset contents (or null with MemoryError
    // set); `len` is at most MAX_READ.
    let new = unsafe {
        Bound::from_owned_ptr_or_opt(
            py,
            ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as ffi::Py_ssize_t),
        )
    }
    .ok_or(ReadError::Python)?;
    // SAFETY: `new` is a `bytes` of `len` bytes that only we reference; the
    // two copies fill exactly its storage from slices that do not overlap
    // it, before any other code can see it.
    unsafe {
        let dst = ffi::PyBytes_AS_STRING(new.as_ptr()) as *mut u8;
        std::ptr::copy_nonoverlapping(head.as_ptr(), dst, head.len());
        std::ptr::copy_nonoverlapping(tail.as_ptr(), dst.add(head.len()), tail.len());
        Ok(new.cast_into_unchecked())
    }
}

/// The direct path up front: one `recv` of at most `max` bytes (`0 < max
/// <= UP_FRONT_MAX`) into a new `bytes` of `max` bytes, shrunk to what
/// arrived. The object is handed out only once finished; on EOF, would-block
/// or an error it is discarded without ever having been visible to Python
/// code.
fn recv_up_front<'py>(py: Python<'py>, fd: i32, max: usize) -> ReadResult<'py> {
    debug_assert!(max > 0 && max <= UP_FRONT_MAX);
    use ffi::compat::{
        PyBytesWriter_Create, PyBytesWriter_Discard, PyBytesWriter_FinishWithSize,
        PyBytesWriter_GetData,
    };
    // SAFETY: we are attached (`py`); `max` fits a Py_ssize_t. It returns a
    // writer owning `max` writable bytes, or null with MemoryError set.
    let writer = unsafe { PyBytesWriter_Create(max as ffi::Py_ssize_t) };
    if writer.is_null() {
        return Err(ReadError::Python);
    }
    // SAFETY: `writer` is live; its data pointer stays valid, for `max`
    // bytes that nothing else references, until it is finished or
    // discarded, which happens below only after `recv` returned.
    let received = recv_into(fd, unsafe { PyBytesWriter_GetData(writer) }.cast(), max);
    let n = match received {
        Ok(Received::Data(n)) => n,
        other => {
            // SAFETY: `writer` is live and not used after this.
            unsafe { PyBytesWriter_Discard(writer) };
            return match other {
                Ok(Received::Eof) => Ok(Received::Eof),
                Ok(Received::WouldBlock | Received::Data(_)) => Ok(Received::WouldBlock),
                Err(e) => Err(ReadError::Os(e)),
            };
        }
    };
    // SAFETY: `recv` wrote the first `n` (1 <= n <= max) bytes; finishing
    // consumes `writer` and returns a new reference to a `bytes` of exactly
    // those bytes, or null with an exception set.
    let data = unsafe {
        Bound::from_owned_ptr_or_opt(
            py,
            PyBytesWriter_FinishWithSize(writer, n as ffi::Py_ssize_t),
        )
    }
    .ok_or(ReadError::Python)?;
    // SAFETY: PyBytesWriter_FinishWithSize returns a `bytes`.
    Ok(Received::Data((unsafe { data.cast_into_unchecked() }, n)))
}

/// The direct path: `recv` of `len` bytes (`0 < len <= MAX_READ`, what the
/// kernel said is queued) straight into a new `bytes` of that size.
///
/// The object is handed out only once `recv` has filled all of it. A
/// shorter read copies the part that arrived into a `bytes` of its size;
/// any other outcome drops the object. Either way the partly filled object
/// is freed without ever having been visible to Python code.
fn recv_new_bytes<'py>(py: Python<'py>, fd: i32, len: usize) -> ReadResult<'py> {
    debug_assert!(len > 0 && len <= MAX_READ);
    // SAFETY: with a null pointer, PyBytes_FromStringAndSize returns a new
    // reference to a new `bytes` of `len` bytes whose contents are not set
    // yet (header, size, cached hash and the trailing NUL are), or null with
    // MemoryError set, reported as `ReadError::Python`. `len > 0`, so the
    // result is never the shared empty `bytes`. Nothing else holds a
    // reference: bytes objects are not tracked by the cycle collector, so
    // not even `gc.get_objects()` can reach it.
    let unfilled = unsafe {
        Bound::from_owned_ptr_or_opt(
            py,
            ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as ffi::Py_ssize_t),
        )
    }
    .ok_or(ReadError::Python)?;
    // SAFETY: `unfilled` is a `bytes`, so PyBytes_AsString returns the start
    // of its `len` (+ NUL) bytes of storage, which live as long as the
    // object; no Rust reference to that storage exists.
    let data = unsafe { ffi::PyBytes_AsString(unfilled.as_ptr()) }.cast::<u8>();
    if data.is_null() {
        return Err(ReadError::Python);
    }
    // On an error, `unfilled` is dropped here: freeing a `bytes` never
    // reads its contents.
    Ok(match recv_into(fd, data, len)? {
        Received::Data(n) if n == len => {
            // SAFETY: `unfilled` is a `bytes` (made above) and `recv` has
            // now written all `len` bytes of it.
            Received::Data((unsafe { unfilled.cast_into_unchecked() }, n))
        }
        Received::Data(n) => {
            // SAFETY: `recv` wrote the first `n < len` bytes at `data`,
            // which stay valid while `unfilled` is alive (until the end of
            // this function); `copy_to_bytes` runs no Python code.
            let filled = unsafe { std::slice::from_raw_parts(data, n) };
            Received::Data((copy_to_bytes(py, filled)?, n))
        }
        Received::Eof => Received::Eof,
        Received::WouldBlock => Received::WouldBlock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair of Unix stream sockets, closed on drop.
    struct Pair([i32; 2]);

    impl Pair {
        fn new() -> Self {
            let mut fds = [0; 2];
            // SAFETY: socketpair writes two fds into `fds`.
            let rc =
                unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
            assert_eq!(rc, 0);
            Pair(fds)
        }

        fn send(&self, data: &[u8]) {
            // SAFETY: `data` is a valid slice for the call.
            let n = unsafe { libc::send(self.0[0], data.as_ptr().cast(), data.len(), 0) };
            assert_eq!(n, data.len() as isize);
        }
    }

    impl Drop for Pair {
        fn drop(&mut self) {
            for fd in self.0 {
                // SAFETY: the fds are ours and closed once.
                unsafe { libc::close(fd) };
            }
        }
    }

    #[test]
    fn queued_counts_unread_bytes() {
        let pair = Pair::new();
        assert_eq!(queued(pair.0[1]), Some(0));
        pair.send(&[7; 5000]);
        assert_eq!(queued(pair.0[1]), Some(5000));
        let mut buf = [0u8; 3000];
        assert!(matches!(
            recv_into(pair.0[1], buf.as_mut_ptr(), buf.len()),
            Ok(Received::Data(3000))
        ));
        assert_eq!(queued(pair.0[1]), Some(2000));
    }

    #[test]
    fn queued_is_none_for_a_non_socket() {
        assert_eq!(queued(-1), None);
    }
}

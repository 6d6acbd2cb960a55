//! Test-only helpers: fds made, written, read and closed with raw
//! syscalls, for the tests of the poller and of registrations.

use crate::core::sys::check;

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) }).unwrap();
    (fds[0], fds[1])
}

/// A connected, non-blocking, close-on-exec Unix stream socket pair.
pub fn socketpair() -> (i32, i32) {
    let mut sv = [0; 2];
    // SAFETY: `sv` has room for the two fds socketpair writes.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    })
    .unwrap();
    (sv[0], sv[1])
}

/// Writes `data` to `fd` (the result is not checked: tests check readiness).
pub fn write(fd: i32, data: &[u8]) {
    // SAFETY: `data` is valid for `data.len()` bytes.
    unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
}

/// Reads (and drops) up to 64 bytes from `fd`.
pub fn drain(fd: i32) {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for 64 bytes.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
}

/// Closes a test-owned fd.
pub fn close(fd: i32) {
    // SAFETY: test-owned fd.
    unsafe { libc::close(fd) };
}

/// A close-on-exec duplicate of `fd`.
pub fn dup(fd: i32) -> i32 {
    // SAFETY: duplicating a test-owned fd; the result is checked.
    check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }).unwrap()
}

/// Makes the fd number `target` name what `fd` names, closing what it named
/// before in the same step (so tests running in parallel cannot take the
/// number in between).
pub fn dup_to(fd: i32, target: i32) {
    // SAFETY: `target` is a test-owned fd number, replaced atomically.
    check(unsafe { libc::dup3(fd, target, libc::O_CLOEXEC) }).unwrap();
}

//! The one place raw syscalls return through: maps the C convention
//! (-1 and `errno`) to `io::Result`.

use std::io;

/// Turns a syscall's return value into `Ok(value)` or the `errno` error.
pub fn check<T: PartialOrd + Default>(ret: T) -> io::Result<T> {
    if ret < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

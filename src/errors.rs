//! OS errors as Python sees them: `OSError(errno, strerror)`, which Python
//! turns into the matching subclass (FileNotFoundError, PermissionError...)
//! with the same `[Errno N] message` text the stock loop shows.

use pyo3::exceptions::PyOSError;
use pyo3::PyErr;
use std::io;

/// Converts an OS error into the `OSError` CPython would raise for it.
pub fn os_error(err: io::Error) -> PyErr {
    match err.raw_os_error() {
        Some(errno) => PyOSError::new_err((errno, strerror(errno))),
        None => PyOSError::new_err(err.to_string()),
    }
}

/// The C library's message for `errno`, as `os.strerror` gives it.
fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    // Rust appends " (os error N)"; Python's messages do not have it.
    match text.rfind(" (os error ") {
        Some(pos) => text[..pos].to_string(),
        None => text,
    }
}

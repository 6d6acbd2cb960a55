//! Transports: the per-connection objects asyncio protocols talk to.
//!
//! - `stream.rs`: `StreamCore`, the Rust half of the TCP/Unix socket
//!   transport (the Python half, `ferroloop._transports.SocketTransport`,
//!   is the `asyncio.Transport` users see); the read path.
//! - `stream_write.rs`: `write` and flow control.
//! - `transport_methods.rs`: `write`, `is_closing`, `close` and `__del__`
//!   of the Python class, reaching the core through its `_core` slot.
//! - `stream_state.rs`: closing, pausing, and the GC hooks.
//! - `accept.rs`: `accept_now`, the server's accept without exceptions.
//! - `buffer.rs`: borrowing the bytes of any bytes-like object.
//! - `recv.rs`: non-blocking reads shared by the transport and `sock_ops`
//!   (large ones straight into the `bytes` handed over).
//! - `spare_bytes.rs`: reusing the `bytes` a protocol let go of for the
//!   next read.
//! - `sock_ops.rs`: the try-at-once halves of `sock_recv`/`sock_recv_into`
//!   for the sockets the fast paths leave to Python.
//! - `sock_fast.rs`: `sock_recv`, `sock_recv_into`, `sock_sendall` in one
//!   call (try at once, else start a wait); `sock_wait.rs`: their wake-up.

mod accept;
mod buffer;
mod recv;
mod sock_fast;
mod sock_ops;
mod sock_wait;
mod spare_bytes;
mod stream;
mod stream_state;
mod stream_write;
mod transport_methods;

use pyo3::prelude::*;

/// Registers the transport classes on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<stream::StreamCore>()?;
    m.add_function(wrap_pyfunction!(
        transport_methods::_install_transport_methods,
        m
    )?)?;
    m.add_class::<sock_wait::SockWait>()?;
    m.add_function(wrap_pyfunction!(accept::accept_now, m)?)?;
    sock_ops::register(m)?;
    Ok(())
}

/// True for the exceptions asyncio lets escape protocol callbacks instead of
/// reporting them: `SystemExit` and `KeyboardInterrupt`.
pub(crate) fn is_exit(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<pyo3::exceptions::PySystemExit>(py)
        || err.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py)
}

//! ferroloop: asyncio's event loop, in Rust.
//!
//! `core` is pure Rust (tested with `cargo test`); `eventloop` (the loop)
//! and `transports` (sockets) are the pyo3 layer, `ferroloop._ferroloop`.

pub mod core;
pub mod errors;
pub mod eventloop;
pub mod transports;

use pyo3::prelude::*;

/// The extension module `ferroloop._ferroloop`.
#[pymodule]
fn _ferroloop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    eventloop::register(m)?;
    transports::register(m)
}

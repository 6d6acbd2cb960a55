//! ferroloop: asyncio's event loop, in Rust.
//!
//! `core` is pure Rust (tested with `cargo test`); `eventloop` is the pyo3
//! layer that exposes it as `ferroloop._ferroloop`.

pub mod core;
pub mod errors;
pub mod eventloop;

use pyo3::prelude::*;

/// The extension module `ferroloop._ferroloop`.
#[pymodule]
fn _ferroloop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    eventloop::register(m)
}

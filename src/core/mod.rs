//! The pure-Rust heart of the loop: no pyo3 here, so every piece is tested
//! with `cargo test` alone.
//!
//! - [`clock`]: `loop.time()`, the same clock as `time.monotonic()`.
//! - [`timer_heap`]: scheduled callbacks ordered by (deadline, sequence).
//! - [`ready_queue`]: callbacks to run, consumed in per-iteration snapshots.
//! - [`poller`]: level-triggered readiness over the OS poller.
//! - [`waker`]: coalesced cross-thread wake-ups of a sleeping poller.
//! - [`write_buffer`]: a transport's pending outgoing bytes.

pub mod clock;
pub mod poller;
pub mod ready_queue;
pub mod sys;
pub mod timer_heap;
pub mod waker;
pub mod write_buffer;

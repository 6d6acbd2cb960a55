//! The pure-Rust heart of the loop: no pyo3 here, so every piece is tested
//! with `cargo test` alone.
//!
//! - [`clock`]: `loop.time()`, the same clock as `time.monotonic()`.
//! - [`fd_bits`]: one bit per fd, for cheap per-fd hints.
//! - [`fd_map`]: the fd-keyed map of the loop's watchers, cheaply hashed.
//! - [`timer_heap`]: scheduled callbacks ordered by (deadline, sequence).
//! - [`ready_queue`]: callbacks to run, consumed in per-iteration snapshots.
//! - [`poller`]: readiness over the OS poller, level-triggered or one-shot.
//! - [`registration`]: an fd's poller registration, and the one syscall
//!   that updates it (one-shot waits for `sock_recv` and friends).
//! - [`waker`]: coalesced cross-thread wake-ups of a sleeping poller.
//! - [`write_buffer`]: a transport's pending outgoing bytes.

pub mod busy_clock;
pub mod clock;
pub mod fd_bits;
pub mod fd_map;
pub mod poller;
pub mod ready_queue;
pub mod registration;
pub mod sys;
#[cfg(test)]
pub mod test_fds;
pub mod timer_heap;
pub mod waker;
pub mod write_buffer;

//! Readiness polling, one backend file per OS behind one name: `Poller`.
//!
//! The contract every backend keeps:
//! - `Poller::new()` creates the OS object (close-on-exec).
//! - `add`/`modify`/`delete` register, change or drop an fd's [`Interest`];
//!   errors are the OS's (EBADF for a closed fd, EPERM for a regular file
//!   under epoll, ENOENT to `modify` an fd the poller does not hold, EEXIST
//!   to `add` one it holds), returned untouched so Python sees the same
//!   `OSError`.
//! - `wait` blocks until an fd is ready or the timeout passes and fills an
//!   `Events` buffer (kept by the caller) that reads as one [`Event`] per
//!   ready fd. A signal ends the wait with `ErrorKind::Interrupted`.
//! - [`Trigger::Level`]: as asyncio's `add_reader` promises, an fd that stays
//!   readable is reported again on the next `wait`.
//! - [`Trigger::Oneshot`]: the fd is reported once, after which the poller
//!   keeps it registered but *disarmed*: silent, hang-ups and errors
//!   included, until `modify` arms it again. A disarmed fd costs no syscall
//!   to leave registered, which is what makes one-shot waits (`sock_recv`)
//!   cheap: see `core/registration.rs`.
//! - Hang-ups and errors report the fd as both readable and writable (as
//!   CPython's selectors do), masked by the registered interest.

#[cfg(target_os = "linux")]
mod epoll;
#[cfg(target_os = "linux")]
pub use epoll::{Events, Poller};

/// How a registration reports readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// On every `wait` while the fd is ready.
    Level,
    /// On one `wait`, then never until re-armed with `modify`.
    Oneshot,
}

/// What an fd is watched for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    /// Wake when data can be read (or the peer hung up).
    pub readable: bool,
    /// Wake when data can be written.
    pub writable: bool,
}

impl Interest {
    /// True when the fd is watched for nothing (it should be deregistered).
    pub fn is_empty(self) -> bool {
        !self.readable && !self.writable
    }

    /// Watched for what either is watched for.
    pub fn union(self, other: Interest) -> Interest {
        Interest {
            readable: self.readable || other.readable,
            writable: self.writable || other.writable,
        }
    }
}

/// One ready fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The fd that is ready.
    pub fd: i32,
    /// Reading would not block.
    pub readable: bool,
    /// Writing would not block.
    pub writable: bool,
}

//! Shared pieces of the two benchmark binaries: a thin epoll wrapper, a tiny
//! command-line parser and latency percentiles. Both binaries are
//! single-threaded so that each one uses exactly the core it is pinned to.

pub mod args;
pub mod epoll;
pub mod stats;

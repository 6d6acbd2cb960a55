//! What the poller holds for one watched fd, and the (at most one)
//! `epoll_ctl` that brings it to what the fd's watchers want.
//!
//! Two kinds of watchers share an fd's registration:
//! - *level* watchers (`add_reader`, the transports): called on every
//!   iteration while the fd stays ready, so the registration is
//!   level-triggered and removed (DEL) when the last one goes, as asyncio's;
//! - *one-shot waits* (`sock_recv`, `sock_sendall`, `sock_accept`): one
//!   future waiting for one readiness. Their registration is EPOLLONESHOT.
//!   The usual wait costs one syscall instead of ADD + DEL: it is armed with
//!   one `epoll_ctl`; the report that wakes it disarms it in the kernel;
//!   removing the wait afterwards costs nothing, the fd staying in the epoll
//!   set *parked* (disarmed) until the next wait re-arms it with MOD.
//!
//! Why leaving a parked fd in the set is sound:
//! - a disarmed registration is never reported, hang-ups and errors
//!   included, until a MOD arms it (the tests in `poller/epoll.rs` check
//!   this on the running kernel), so it cannot spin the loop, even when the
//!   socket is closed while a duplicate (a forked child, `dup()`) keeps the
//!   file, and with it the registration, alive;
//! - epoll keys registrations by (file, fd number). When the fd number is
//!   closed and reused for another file, a MOD finds no registration for the
//!   new file (ENOENT) and falls back to ADD; an ADD that finds one
//!   (EEXIST) falls back to MOD. The stale registration of the old file can
//!   never be armed again (nothing can name it), so it stays silent;
//! - only a *report* disarms, so the loop knows exactly which fds are
//!   disarmed: those the poller reported. A wait removed while still armed
//!   (cancelled, timed out) is deleted, as a level watcher is: a MOD cannot
//!   disarm (the kernel always adds EPOLLHUP|EPOLLERR to the mask).
//!
//! Level semantics for the waits themselves: a wait whose callback finds no
//! data (a spurious wake-up) stays installed and must be called again once
//! the fd is ready; the loop re-arms every fd it saw reported, before the
//! next poll, if a wait on it is still unfinished (`run.rs`). A wait that is
//! finished is not re-armed: its future's done callback removes it, at no
//! cost, before anything else can use the fd.
//!
//! When an fd has a level watcher and a one-shot wait at once, the whole
//! registration is level-triggered (the wait then behaves exactly as
//! asyncio's, which is level-triggered throughout).

use super::poller::{Interest, Poller, Trigger};
use std::io;

/// The poller's registration of one fd, as the loop knows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Registration {
    /// Not in the poller.
    #[default]
    Absent,
    /// Level-triggered, for this (non-empty) interest.
    Level(Interest),
    /// EPOLLONESHOT for `interest`; `armed` is false once the poller
    /// reported it (the fd is then parked: registered, silent).
    Oneshot {
        /// What the fd was last armed for.
        interest: Interest,
        /// False once reported, until re-armed.
        armed: bool,
    },
}

/// The three `epoll_ctl` operations, as `Poller` offers them (a trait so
/// the tests can count calls).
pub trait Registrar {
    /// EPOLL_CTL_ADD.
    fn add(&self, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()>;
    /// EPOLL_CTL_MOD.
    fn modify(&self, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()>;
    /// EPOLL_CTL_DEL.
    fn delete(&self, fd: i32) -> io::Result<()>;
}

impl Registrar for Poller {
    fn add(&self, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()> {
        Poller::add(self, fd, interest, trigger)
    }
    fn modify(&self, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()> {
        Poller::modify(self, fd, interest, trigger)
    }
    fn delete(&self, fd: i32) -> io::Result<()> {
        Poller::delete(self, fd)
    }
}

impl Registration {
    /// True when the poller holds nothing for the fd (the loop may forget
    /// an fd with no watchers only then: a parked fd must be remembered so
    /// that the next wait re-arms it with MOD).
    pub fn is_absent(self) -> bool {
        self == Registration::Absent
    }

    /// True for a one-shot registration the poller has reported (and so
    /// disarmed) and nothing re-armed since.
    pub fn is_disarmed(self) -> bool {
        matches!(self, Registration::Oneshot { armed: false, .. })
    }

    /// Notes that the poller reported the fd. Returns true if that disarmed
    /// it (a one-shot registration): the caller must then check, before the
    /// next poll, whether a wait on the fd still needs it re-armed.
    pub fn fired(&mut self) -> bool {
        match self {
            Registration::Oneshot { armed, .. } if *armed => {
                *armed = false;
                true
            }
            _ => false,
        }
    }

    /// Brings the registration to what the fd's watchers want: `level` for
    /// level watchers, `once` for one-shot waits. At most one `epoll_ctl`,
    /// plus one when the fd number was reused behind the loop's back (see
    /// the module docs). Errors are the poller's, for the caller to raise;
    /// removal errors are ignored (as CPython's selectors ignore them: the
    /// fd may already be closed, which removed it from the poller).
    pub fn update(
        &mut self,
        poller: &impl Registrar,
        fd: i32,
        level: Interest,
        once: Interest,
    ) -> io::Result<()> {
        let (interest, trigger) = if level.is_empty() {
            (once, Trigger::Oneshot)
        } else {
            (level.union(once), Trigger::Level)
        };
        let target = match trigger {
            _ if interest.is_empty() => Registration::Absent,
            Trigger::Level => Registration::Level(interest),
            Trigger::Oneshot => Registration::Oneshot {
                interest,
                armed: true,
            },
        };
        match (*self, target) {
            (current, target) if current == target => return Ok(()),
            // Parked: nothing to undo.
            (Registration::Oneshot { armed: false, .. }, Registration::Absent) => return Ok(()),
            (_, Registration::Absent) => {
                let _ = poller.delete(fd);
            }
            (Registration::Absent, _) => match poller.add(fd, interest, trigger) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    poller.modify(fd, interest, trigger)?
                }
                result => result?,
            },
            _ => match poller.modify(fd, interest, trigger) {
                // The fd number now names a file the poller does not hold.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    *self = Registration::Absent;
                    poller.add(fd, interest, trigger)?
                }
                result => result?,
            },
        }
        *self = target;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::poller::Event;
    use crate::core::sys::check;
    use crate::core::test_fds::{close, drain, dup_to, socketpair, write};
    use std::cell::RefCell;
    use std::time::Duration;

    const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };
    const READ: Interest = Interest {
        readable: true,
        writable: false,
    };
    const WRITE: Interest = Interest {
        readable: false,
        writable: true,
    };

    /// A real poller that records the operations made on it.
    struct Recording {
        poller: Poller,
        ops: RefCell<Vec<&'static str>>,
    }

    impl Recording {
        fn new() -> Self {
            Self {
                poller: Poller::new().unwrap(),
                ops: RefCell::default(),
            }
        }
        fn take_ops(&self) -> Vec<&'static str> {
            self.ops.take()
        }
        fn poll(&self) -> Vec<Event> {
            let mut ev = Vec::new();
            self.poller
                .wait_collect(&mut ev, Some(Duration::ZERO))
                .unwrap();
            ev
        }
    }

    impl Registrar for Recording {
        fn add(&self, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()> {
            self.ops.borrow_mut().push("add");
            self.poller.add(fd, interest, trigger)
        }
        fn modify(&self, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()> {
            self.ops.borrow_mut().push("mod");
            self.poller.modify(fd, interest, trigger)
        }
        fn delete(&self, fd: i32) -> io::Result<()> {
            self.ops.borrow_mut().push("del");
            self.poller.delete(fd)
        }
    }

    /// Makes the fd number `target` name a new socket (closing what it
    /// named), as a reused fd number does; returns the socket's peer. Done
    /// with dup3, not close-then-open, so that tests running in parallel
    /// cannot take the number in between.
    fn reuse_number(target: i32) -> i32 {
        let (c, d) = socketpair();
        dup_to(c, target);
        close(c);
        d
    }

    /// One `sock_recv` that has to wait: arm, get reported, be removed.
    fn one_wait(p: &Recording, reg: &mut Registration, fd: i32, peer: i32) {
        reg.update(p, fd, NONE, READ).unwrap();
        write(peer, b"x");
        let ev = p.poll();
        assert_eq!(ev.len(), 1);
        assert!(reg.fired());
        drain(fd);
        reg.update(p, fd, NONE, NONE).unwrap();
    }

    #[test]
    fn a_wait_costs_one_syscall() {
        let p = Recording::new();
        let (a, b) = socketpair();
        let mut reg = Registration::default();
        one_wait(&p, &mut reg, a, b);
        assert_eq!(p.take_ops(), ["add"]);
        assert!(reg.is_disarmed());
        for _ in 0..3 {
            one_wait(&p, &mut reg, a, b);
            assert_eq!(p.take_ops(), ["mod"]);
        }
        assert!(p.poll().is_empty());
        close(a);
        close(b);
    }

    #[test]
    fn a_wait_removed_unreported_is_deleted() {
        let p = Recording::new();
        let (a, b) = socketpair();
        let mut reg = Registration::default();
        reg.update(&p, a, NONE, READ).unwrap();
        reg.update(&p, a, NONE, NONE).unwrap();
        assert_eq!(p.take_ops(), ["add", "del"]);
        assert!(reg.is_absent());
        write(b, b"x");
        assert!(p.poll().is_empty());
        close(a);
        close(b);
    }

    #[test]
    fn spurious_wake_up_re_arms() {
        let p = Recording::new();
        let (a, b) = socketpair();
        let mut reg = Registration::default();
        reg.update(&p, a, NONE, READ).unwrap();
        write(b, b"x");
        assert_eq!(p.poll().len(), 1);
        assert!(reg.fired());
        // The wait is still there (its callback found nothing, say): the
        // loop re-arms it before polling again, and the fd, still
        // readable, is reported again: level semantics.
        reg.update(&p, a, NONE, READ).unwrap();
        assert_eq!(p.take_ops(), ["add", "mod"]);
        assert_eq!(p.poll().len(), 1);
        close(a);
        close(b);
    }

    #[test]
    fn level_watchers_are_level_triggered_and_deleted() {
        let p = Recording::new();
        let (a, b) = socketpair();
        let mut reg = Registration::default();
        // From parked to level: MOD; then level for both slots.
        one_wait(&p, &mut reg, a, b);
        p.take_ops();
        reg.update(&p, a, READ, NONE).unwrap();
        reg.update(&p, a, READ, WRITE).unwrap();
        assert_eq!(reg, Registration::Level(READ.union(WRITE)));
        write(b, b"x");
        for _ in 0..2 {
            assert_eq!(p.poll().len(), 1);
            assert!(!reg.fired());
        }
        // The wait ends: level read only. Then nothing: DEL.
        reg.update(&p, a, READ, NONE).unwrap();
        reg.update(&p, a, NONE, NONE).unwrap();
        assert_eq!(p.take_ops(), ["mod", "mod", "mod", "del"]);
        assert!(reg.is_absent());
        assert!(p.poll().is_empty());
        close(a);
        close(b);
    }

    #[test]
    fn same_interest_costs_nothing() {
        let p = Recording::new();
        let (a, b) = socketpair();
        let mut reg = Registration::default();
        reg.update(&p, a, NONE, READ).unwrap();
        reg.update(&p, a, NONE, READ).unwrap();
        reg.update(&p, a, NONE, NONE).unwrap();
        reg.update(&p, a, READ, NONE).unwrap();
        reg.update(&p, a, READ, NONE).unwrap();
        assert_eq!(p.take_ops(), ["add", "del", "add"]);
        close(a);
        close(b);
    }

    #[test]
    fn parked_fd_reused_by_another_socket() {
        let p = Recording::new();
        let (a, b) = socketpair();
        let mut reg = Registration::default();
        one_wait(&p, &mut reg, a, b);
        p.take_ops();
        // The socket is closed (the kernel forgets it) and its number is
        // reused for another socket.
        let d = reuse_number(a);
        close(b);
        let c = a;
        one_wait(&p, &mut reg, c, d);
        assert_eq!(p.take_ops(), ["mod", "add"]);
        one_wait(&p, &mut reg, c, d);
        assert_eq!(p.take_ops(), ["mod"]);
        close(c);
        close(d);
    }

    #[test]
    fn parked_fd_of_a_duplicated_socket_reused() {
        let p = Recording::new();
        let (a, b) = socketpair();
        let mut reg = Registration::default();
        one_wait(&p, &mut reg, a, b);
        // A duplicate (a forked child) keeps the socket, and so its
        // registration, alive after the fd is closed.
        // SAFETY: duplicating a test-owned fd; the result is checked.
        let keep = check(unsafe { libc::fcntl(a, libc::F_DUPFD_CLOEXEC, 100) }).unwrap();
        let d = reuse_number(a);
        let c = a;
        p.take_ops();
        one_wait(&p, &mut reg, c, d);
        assert_eq!(p.take_ops(), ["mod", "add"]);
        // The old socket's registration never reports, whatever happens
        // to it: data, then hang-up.
        write(b, b"x");
        close(b);
        assert!(p.poll().is_empty());
        // Level watchers on the new socket see only the new socket.
        reg.update(&p, c, READ, NONE).unwrap();
        assert!(p.poll().is_empty());
        write(d, b"y");
        assert_eq!(p.poll().len(), 1);
        close(keep);
        close(c);
        close(d);
    }

    #[test]
    fn errors_are_the_pollers() {
        let p = Recording::new();
        let (low, b) = socketpair();
        // A high number, which tests running in parallel will not reuse.
        // SAFETY: duplicating a test-owned fd; the result is checked.
        let a = check(unsafe { libc::fcntl(low, libc::F_DUPFD_CLOEXEC, 1000) }).unwrap();
        close(low);
        let mut reg = Registration::default();
        one_wait(&p, &mut reg, a, b);
        close(a);
        close(b);
        p.take_ops();
        // Closed and not reused: EBADF, the registration unchanged.
        let err = reg.update(&p, a, NONE, READ).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(p.take_ops(), ["mod"]);
        assert!(reg.is_disarmed());
        // A regular file cannot be polled: EPERM, and nothing registered.
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let mut reg = Registration::default();
        let err = reg.update(&p, fd, READ, NONE).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert!(reg.is_absent());
    }
}

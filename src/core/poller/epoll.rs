//! Linux backend: epoll, level-triggered or EPOLLONESHOT.
//!
//! On EPOLLONESHOT: once an event is reported, the kernel clears the
//! registration's event mask (`ep_send_events`), and a registration with an
//! empty mask is skipped by the wake-up callback, EPOLLHUP and EPOLLERR
//! included (`ep_poll_callback`): the fd stays in the set, silent, until an
//! EPOLL_CTL_MOD sets a mask again. (A MOD always adds EPOLLHUP|EPOLLERR to
//! the mask, so a MOD can never *disarm* a registration; only a report or a
//! DEL can.) The tests below check these properties on the running kernel.

use super::{Event, Interest, Trigger};
use crate::core::sys::check;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// An epoll instance. The fd is atomic so that `close` can be called through
/// a shared reference; the loop never closes it while a `wait` is running
/// (closing a running loop is refused before it gets here).
pub struct Poller {
    /// The epoll fd, or -1 once closed.
    epfd: AtomicI32,
}

/// What one `wait` reported, in the kernel's own format: the caller keeps
/// the buffer from one wait to the next (allocated by the first, with room
/// for `MAX_EVENTS`), and reads it as [`Event`]s.
#[derive(Default)]
pub struct Events {
    /// The kernel fills the first n entries; the rest stay uninitialised
    /// and are never read.
    raw: Vec<libc::epoll_event>,
}

impl Events {
    /// True when the last wait reported nothing.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The ready fds the last wait reported.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.raw.iter().map(|ev| {
            let bits = ev.events;
            Event {
                fd: ev.u64 as i32,
                readable: bits & !(libc::EPOLLOUT as u32) != 0,
                writable: bits & !(libc::EPOLLIN as u32) != 0,
            }
        })
    }
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("epfd", &self.epfd).finish()
    }
}

/// Most events taken from the kernel per `wait`; the rest come next time
/// (they are level-triggered, so none are lost).
const MAX_EVENTS: usize = 1024;

fn flags(interest: Interest, trigger: Trigger) -> u32 {
    let mut flags = match trigger {
        Trigger::Level => 0,
        Trigger::Oneshot => libc::EPOLLONESHOT as u32,
    };
    if interest.readable {
        flags |= libc::EPOLLIN as u32;
    }
    if interest.writable {
        flags |= libc::EPOLLOUT as u32;
    }
    flags
}

impl Poller {
    /// Creates the epoll instance.
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Self {
            epfd: AtomicI32::new(fd),
        })
    }

    fn ctl(&self, op: i32, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: flags(interest, trigger),
            u64: fd as u64,
        };
        let epfd = self.epfd.load(Ordering::Acquire);
        // SAFETY: `ev` is a valid epoll_event for the duration of the call;
        // a bad or closed epfd/fd is reported through errno, not UB.
        check(unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) }).map(drop)
    }

    /// Starts watching `fd`.
    pub fn add(&self, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest, trigger)
    }

    /// Changes what and how `fd` is watched for (re-arms a one-shot fd).
    pub fn modify(&self, fd: i32, interest: Interest, trigger: Trigger) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest, trigger)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: i32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, Interest::default(), Trigger::Level)
    }

    /// Waits for readiness; `None` waits forever. Timeouts are rounded up to
    /// whole milliseconds so that a wake-up never comes before a deadline
    /// (which would spin the loop until it passes).
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let timeout_ms = match timeout {
            None => -1,
            Some(t) => {
                let ms = t.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as i32
            }
        };
        let raw = &mut events.raw;
        raw.clear();
        // Allocates on the first wait only.
        raw.reserve(MAX_EVENTS);
        let epfd = self.epfd.load(Ordering::Acquire);
        // SAFETY: `raw` has capacity for MAX_EVENTS entries, the count we
        // pass; the kernel writes at most that many.
        let n = check(unsafe {
            libc::epoll_wait(epfd, raw.as_mut_ptr(), MAX_EVENTS as i32, timeout_ms)
        })?;
        // SAFETY: the kernel initialised the first `n` entries (n <= capacity).
        unsafe { raw.set_len(n as usize) };
        Ok(())
    }

    /// `wait`, appending the events to `out` (for tests).
    #[cfg(test)]
    pub fn wait_collect(&self, out: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let mut events = Events::default();
        self.wait(&mut events, timeout)?;
        out.extend(events.iter());
        Ok(())
    }

    /// Closes the epoll fd; later calls fail with EBADF.
    pub fn close(&self) {
        let fd = self.epfd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: we owned `fd` and nobody can use it after the swap.
            unsafe { libc::close(fd) };
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_fds::{close, dup, dup_to, pipe, socketpair, write};

    const READ: Interest = Interest {
        readable: true,
        writable: false,
    };
    const WRITE: Interest = Interest {
        readable: false,
        writable: true,
    };

    fn poll(p: &Poller) -> Vec<Event> {
        let mut ev = Vec::new();
        p.wait_collect(&mut ev, Some(Duration::ZERO)).unwrap();
        ev
    }

    #[test]
    fn reports_readable_level_triggered() {
        let p = Poller::new().unwrap();
        let (r, w) = pipe();
        p.add(r, READ, Trigger::Level).unwrap();
        let mut ev = Vec::new();
        p.wait_collect(&mut ev, Some(Duration::ZERO)).unwrap();
        assert!(ev.is_empty());
        write(w, b"x");
        for _ in 0..2 {
            ev.clear();
            p.wait_collect(&mut ev, Some(Duration::from_secs(1)))
                .unwrap();
            assert_eq!(
                ev,
                vec![Event {
                    fd: r,
                    readable: true,
                    writable: false
                }]
            );
        }
        close(r);
        close(w);
    }

    #[test]
    fn hangup_is_readable() {
        let p = Poller::new().unwrap();
        let (r, w) = pipe();
        p.add(r, READ, Trigger::Level).unwrap();
        close(w);
        let mut ev = Vec::new();
        p.wait_collect(&mut ev, Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(ev.len(), 1);
        assert!(ev[0].readable);
        close(r);
    }

    #[test]
    fn modify_and_delete() {
        let p = Poller::new().unwrap();
        let (r, w) = pipe();
        p.add(w, WRITE, Trigger::Level).unwrap();
        let ev = poll(&p);
        assert!(ev[0].writable);
        p.delete(w).unwrap();
        assert!(poll(&p).is_empty());
        assert_eq!(
            p.modify(w, Interest::default(), Trigger::Level)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOENT)
        );
        p.add(w, WRITE, Trigger::Level).unwrap();
        assert_eq!(
            p.add(w, WRITE, Trigger::Level).unwrap_err().raw_os_error(),
            Some(libc::EEXIST)
        );
        close(r);
        close(w);
    }

    #[test]
    fn bad_fd_is_an_os_error() {
        let p = Poller::new().unwrap();
        let err = p.add(1_000_000, READ, Trigger::Level).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn timeout_rounds_up() {
        let p = Poller::new().unwrap();
        let start = std::time::Instant::now();
        p.wait_collect(&mut Vec::new(), Some(Duration::from_micros(300)))
            .unwrap();
        assert!(start.elapsed() >= Duration::from_micros(300));
    }

    // The kernel behaviour `core/registration.rs` relies on.

    #[test]
    fn oneshot_reports_once_until_modified() {
        let p = Poller::new().unwrap();
        let (r, w) = pipe();
        p.add(r, READ, Trigger::Oneshot).unwrap();
        write(w, b"x");
        assert_eq!(poll(&p).len(), 1);
        // Still readable, but disarmed.
        assert!(poll(&p).is_empty());
        // Still registered: MOD works (no ENOENT) and re-arms.
        p.modify(r, READ, Trigger::Oneshot).unwrap();
        assert_eq!(poll(&p).len(), 1);
        assert!(poll(&p).is_empty());
        // A disarmed fd is still in the set.
        assert_eq!(
            p.add(r, READ, Trigger::Oneshot).unwrap_err().raw_os_error(),
            Some(libc::EEXIST)
        );
        close(r);
        close(w);
    }

    #[test]
    fn disarmed_oneshot_ignores_hangup() {
        let p = Poller::new().unwrap();
        let (r, w) = pipe();
        p.add(r, READ, Trigger::Oneshot).unwrap();
        write(w, b"x");
        assert_eq!(poll(&p).len(), 1);
        close(w);
        assert!(poll(&p).is_empty());
        close(r);
    }

    #[test]
    fn disarmed_oneshot_of_a_closed_but_duplicated_fd_stays_silent() {
        // The fd is closed while a duplicate keeps the pipe open (as a
        // forked child would), so the registration outlives the fd number.
        let p = Poller::new().unwrap();
        let (r, w) = pipe();
        p.add(r, READ, Trigger::Oneshot).unwrap();
        write(w, b"x");
        assert_eq!(poll(&p).len(), 1);
        let keep = dup(r);
        // The fd number now names another pipe (dup3 closes the old one
        // atomically, so no test running in parallel can take the number).
        let (r2, w2) = pipe();
        dup_to(r2, r);
        close(r2);
        write(w, b"y");
        assert!(poll(&p).is_empty());
        close(w); // hang-up
        assert!(poll(&p).is_empty());
        // MOD finds no registration for the new pipe (ENOENT), ADD
        // succeeds and reports the new pipe only.
        assert_eq!(
            p.modify(r, READ, Trigger::Oneshot)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOENT)
        );
        p.add(r, READ, Trigger::Oneshot).unwrap();
        assert!(poll(&p).is_empty());
        write(w2, b"z");
        assert_eq!(poll(&p).len(), 1);
        close(keep);
        close(r);
        close(w2);
    }

    #[test]
    fn oneshot_report_disarms_every_interest() {
        let (a, b) = socketpair();
        let p = Poller::new().unwrap();
        p.add(a, READ.union(WRITE), Trigger::Oneshot).unwrap();
        let ev = poll(&p);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].writable && !ev[0].readable);
        // The write report disarmed the read interest too.
        write(b, b"x");
        assert!(poll(&p).is_empty());
        p.modify(a, READ, Trigger::Oneshot).unwrap();
        let ev = poll(&p);
        assert!(ev.len() == 1 && ev[0].readable);
        close(a);
        close(b);
    }
}

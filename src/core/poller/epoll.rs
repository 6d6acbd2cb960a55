//! Linux backend: level-triggered epoll.

use super::{Event, Interest};
use crate::core::sys::check;
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// An epoll instance. The fd is atomic so that `close` can be called through
/// a shared reference; the loop never closes it while a `wait` is running
/// (closing a running loop is refused before it gets here).
pub struct Poller {
    /// The epoll fd, or -1 once closed.
    epfd: AtomicI32,
    /// Where the kernel writes events; allocated once (capacity
    /// `MAX_EVENTS`) and never initialised by us: the kernel fills the
    /// first n entries, which are the only ones read.
    buffer: Mutex<Vec<libc::epoll_event>>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("epfd", &self.epfd).finish()
    }
}

/// Most events taken from the kernel per `wait`; the rest come next time
/// (they are level-triggered, so none are lost).
const MAX_EVENTS: usize = 1024;

fn flags(interest: Interest) -> u32 {
    let mut flags = 0;
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
            buffer: Mutex::new(Vec::with_capacity(MAX_EVENTS)),
        })
    }

    fn ctl(&self, op: i32, fd: i32, interest: Interest) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: flags(interest),
            u64: fd as u64,
        };
        let epfd = self.epfd.load(Ordering::Acquire);
        // SAFETY: `ev` is a valid epoll_event for the duration of the call;
        // a bad or closed epfd/fd is reported through errno, not UB.
        check(unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) }).map(drop)
    }

    /// Starts watching `fd`.
    pub fn add(&self, fd: i32, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest)
    }

    /// Changes what `fd` is watched for.
    pub fn modify(&self, fd: i32, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: i32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, Interest::default())
    }

    /// Waits for readiness; `None` waits forever. Timeouts are rounded up to
    /// whole milliseconds so that a wake-up never comes before a deadline
    /// (which would spin the loop until it passes).
    pub fn wait(&self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let timeout_ms = match timeout {
            None => -1,
            Some(t) => {
                let ms = t.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as i32
            }
        };
        let mut raw = self.buffer.lock();
        raw.clear();
        let epfd = self.epfd.load(Ordering::Acquire);
        // SAFETY: `raw` has capacity for MAX_EVENTS entries, the count we
        // pass; the kernel writes at most that many.
        let n = check(unsafe {
            libc::epoll_wait(epfd, raw.as_mut_ptr(), MAX_EVENTS as i32, timeout_ms)
        })?;
        // SAFETY: the kernel initialised the first `n` entries (n <= capacity).
        unsafe { raw.set_len(n as usize) };
        for ev in raw.iter() {
            let bits = ev.events;
            events.push(Event {
                fd: ev.u64 as i32,
                readable: bits & !(libc::EPOLLOUT as u32) != 0,
                writable: bits & !(libc::EPOLLIN as u32) != 0,
            });
        }
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

    fn pipe() -> (i32, i32) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })
            .unwrap();
        (fds[0], fds[1])
    }
    fn write(fd: i32, data: &[u8]) {
        // SAFETY: `data` is valid for `data.len()` bytes.
        unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    }
    fn close(fd: i32) {
        // SAFETY: test-owned fd.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn reports_readable_level_triggered() {
        let p = Poller::new().unwrap();
        let (r, w) = pipe();
        p.add(
            r,
            Interest {
                readable: true,
                writable: false,
            },
        )
        .unwrap();
        let mut ev = Vec::new();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert!(ev.is_empty());
        write(w, b"x");
        for _ in 0..2 {
            ev.clear();
            p.wait(&mut ev, Some(Duration::from_secs(1))).unwrap();
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
        p.add(
            r,
            Interest {
                readable: true,
                writable: false,
            },
        )
        .unwrap();
        close(w);
        let mut ev = Vec::new();
        p.wait(&mut ev, Some(Duration::from_secs(1))).unwrap();
        assert_eq!(ev.len(), 1);
        assert!(ev[0].readable);
        close(r);
    }

    #[test]
    fn modify_and_delete() {
        let p = Poller::new().unwrap();
        let (r, w) = pipe();
        p.add(
            w,
            Interest {
                readable: false,
                writable: true,
            },
        )
        .unwrap();
        let mut ev = Vec::new();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert!(ev[0].writable);
        p.delete(w).unwrap();
        ev.clear();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert!(ev.is_empty());
        assert_eq!(
            p.modify(w, Interest::default()).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
        close(r);
        close(w);
    }

    #[test]
    fn bad_fd_is_an_os_error() {
        let p = Poller::new().unwrap();
        let err = p
            .add(
                1_000_000,
                Interest {
                    readable: true,
                    writable: false,
                },
            )
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn timeout_rounds_up() {
        let p = Poller::new().unwrap();
        let start = std::time::Instant::now();
        p.wait(&mut Vec::new(), Some(Duration::from_micros(300)))
            .unwrap();
        assert!(start.elapsed() >= Duration::from_micros(300));
    }
}

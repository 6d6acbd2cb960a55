//! Cross-thread wake-ups of a loop sleeping in its poller.
//!
//! Many threads may call `call_soon_threadsafe` at once; each wants the loop
//! awake, but one eventfd write is enough for all of them. `pending` says a
//! write is already on its way: only the thread that flips it from false to
//! true writes. The loop reads the eventfd, then clears `pending`, then
//! looks at the ready queue, so an item queued after the clear triggers a
//! fresh write and is never left waiting for an unrelated wake-up (see
//! `drain` for why the order matters).

use crate::core::sys::check;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// An eventfd plus the coalescing flag.
#[derive(Debug)]
pub struct Waker {
    /// The eventfd, or -1 once closed.
    fd: AtomicI32,
    /// A wake-up was written and not yet drained.
    pending: AtomicBool,
}

impl Waker {
    /// Creates a non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        Ok(Self {
            fd: AtomicI32::new(fd),
            pending: AtomicBool::new(false),
        })
    }

    /// The fd to register with the poller for reading.
    pub fn fd(&self) -> i32 {
        self.fd.load(Ordering::Acquire)
    }

    /// Wakes the loop, unless a wake-up is already pending. Returns whether
    /// this call wrote to the eventfd.
    pub fn wake(&self) -> bool {
        if self.pending.swap(true, Ordering::AcqRel) {
            return false;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. Failure can only be EAGAIN
        // (counter saturated: the loop is awake anyway) or EBADF after close.
        unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
        true
    }

    /// Called by the loop when the eventfd is readable: resets the counter
    /// and re-arms coalescing.
    ///
    /// The read must come before clearing `pending`. The other order loses
    /// wake-ups: a producer could set `pending` and write between our clear
    /// and our read; the read would then swallow its write while `pending`
    /// stayed set, so every later producer would skip writing and the loop
    /// could sleep with work queued. In this order a write that lands after
    /// the read stays in the eventfd (at worst one spurious wake-up), and any
    /// producer that saw `pending` still set queued its work before the
    /// clear, which the loop's next look at the queue follows.
    pub fn drain(&self) {
        let mut buf: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; EAGAIN is harmless.
        unsafe { libc::read(self.fd(), (&mut buf as *mut u64).cast(), 8) };
        self.pending.store(false, Ordering::Release);
    }

    /// Closes the eventfd.
    pub fn close(&self) {
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: we owned `fd`; nobody can use it after the swap.
            unsafe { libc::close(fd) };
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::poller::{Interest, Poller, Trigger};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn many_wakes_coalesce_into_one_write() {
        let w = Waker::new().unwrap();
        assert!(w.wake());
        assert!(!w.wake());
        assert!(!w.wake());
        w.drain();
        assert!(w.wake(), "after drain the next wake writes again");
    }

    /// A waker shared across threads, and a poller watching it.
    fn waker_watched_by_poller() -> (Arc<Waker>, Poller) {
        let waker = Arc::new(Waker::new().unwrap());
        let poller = Poller::new().unwrap();
        let readable = Interest {
            readable: true,
            writable: false,
        };
        poller.add(waker.fd(), readable, Trigger::Level).unwrap();
        (waker, poller)
    }

    #[test]
    fn wakes_a_sleeping_poller_from_another_thread() {
        let (w, p) = waker_watched_by_poller();
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.wake();
        });
        let mut ev = Vec::new();
        p.wait(&mut ev, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(ev.len(), 1);
        w.drain();
        ev.clear();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert!(ev.is_empty(), "drained eventfd is not readable");
        t.join().unwrap();
    }

    #[test]
    fn no_wakeup_lost_across_threads() {
        // Many producers; the consumer drains and counts; every producer's
        // item must be seen even though most wakes coalesce.
        use std::sync::atomic::AtomicUsize;
        let (w, p) = waker_watched_by_poller();
        let queued = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (w, q) = (Arc::clone(&w), Arc::clone(&queued));
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        q.fetch_add(1, Ordering::SeqCst);
                        w.wake();
                    }
                })
            })
            .collect();
        let mut seen = 0;
        while seen < 4000 {
            let mut ev = Vec::new();
            p.wait(&mut ev, Some(Duration::from_secs(10))).unwrap();
            assert!(!ev.is_empty(), "a producer's wake-up was lost");
            w.drain();
            seen = queued.load(Ordering::SeqCst);
        }
        for t in threads {
            t.join().unwrap();
        }
    }
}

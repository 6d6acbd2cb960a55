//! Cross-thread wake-ups of a loop sleeping in its poller.
//!
//! Many threads may call `call_soon_threadsafe` at once; each wants the loop
//! awake, but one eventfd write is enough for all of them. `pending` says a
//! write is already on its way: only the thread that flips it from false to
//! true writes. The loop reads the eventfd, then clears `pending`, then
//! looks at the ready queue, so an item queued after the clear triggers a
//! fresh write and is never left waiting for an unrelated wake-up (see
//! `drain` for why the order matters).
//!
//! A loop may also wait by spinning instead of sleeping (briefly, with the
//! interpreter released, see `eventloop/spin.rs`). While it spins, a wake
//! needs no eventfd write: the producer sets [`NOTIFIED`] in `spin`, which
//! the spinning loop reads. Skipping the write is safe only if the loop is
//! sure to look at that bit before it sleeps; both sides therefore use
//! read-modify-writes on `spin`, which all see the latest value: the
//! producer's `fetch_or` either lands while [`SPINNING`] is set (the loop's
//! closing `swap` then returns [`NOTIFIED`] and the loop does not sleep) or
//! after that `swap` (the producer sees no [`SPINNING`] and writes).

use crate::core::sys::check;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU8, Ordering};

/// `spin` bit: the loop is spinning and will read `spin` before sleeping.
const SPINNING: u8 = 1;
/// `spin` bit: a producer queued work while the loop was spinning.
const NOTIFIED: u8 = 2;

/// How a [`Waker::wake`] reached the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// This call wrote to the eventfd.
    Wrote,
    /// A write was already pending: nothing to do.
    Coalesced,
    /// The loop was spinning: it was told through memory, no syscall.
    Notified,
}

/// An eventfd plus the coalescing flag and the spin state.
#[derive(Debug)]
pub struct Waker {
    /// The eventfd, or -1 once closed.
    fd: AtomicI32,
    /// A wake-up was written and not yet drained.
    pending: AtomicBool,
    /// [`SPINNING`] and [`NOTIFIED`] bits (0: the loop is not spinning).
    spin: AtomicU8,
    /// Bumped each time the loop holds the interpreter again after a spin
    /// (see [`Waker::wait_resumed`]).
    resumed: AtomicU32,
}

impl Waker {
    /// Creates a non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        Ok(Self {
            fd: AtomicI32::new(fd),
            pending: AtomicBool::new(false),
            spin: AtomicU8::new(0),
            resumed: AtomicU32::new(0),
        })
    }

    /// The fd to register with the poller for reading.
    pub fn fd(&self) -> i32 {
        self.fd.load(Ordering::Acquire)
    }

    /// Wakes the loop: through memory if it spins, else by writing to the
    /// eventfd unless a wake-up is already pending. Call it after queueing
    /// the work the loop is to see.
    pub fn wake(&self) -> Wake {
        // A plain load first keeps the usual case (not spinning) free of a
        // second read-modify-write. A stale 0 only costs a write, which is
        // always correct; skipping the write is decided by the `fetch_or`.
        if self.spin.load(Ordering::Acquire) & SPINNING != 0
            && self.spin.fetch_or(NOTIFIED, Ordering::AcqRel) & SPINNING != 0
        {
            return Wake::Notified;
        }
        if self.pending.swap(true, Ordering::AcqRel) {
            return Wake::Coalesced;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. Failure can only be EAGAIN
        // (counter saturated: the loop is awake anyway) or EBADF after close.
        unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
        Wake::Wrote
    }

    /// True while the loop spins (a hint: it may stop at any moment).
    pub fn loop_spins(&self) -> bool {
        self.spin.load(Ordering::Acquire) & SPINNING != 0
    }

    /// The loop starts spinning: from now on wakes may skip the eventfd.
    pub fn begin_spin(&self) {
        // A NOTIFIED bit left by a producer that came after the last spin
        // ended is dropped: that producer wrote to the eventfd.
        self.spin.store(SPINNING, Ordering::SeqCst);
    }

    /// True once the spinning loop has something to look at: a wake through
    /// memory, or an eventfd write (a producer that came just before the
    /// spin began). A plain load, for the spin's inner loop.
    pub fn spin_woken(&self) -> bool {
        self.spin.load(Ordering::Acquire) & NOTIFIED != 0 || self.pending.load(Ordering::Acquire)
    }

    /// The loop stops spinning. Returns true if a producer skipped its
    /// eventfd write meanwhile: the loop must then not sleep. After this,
    /// every wake writes (or finds a write pending).
    pub fn end_spin(&self) -> bool {
        self.spin.swap(0, Ordering::AcqRel) & NOTIFIED != 0
    }

    /// The loop's count of spins it has come back from (holding the
    /// interpreter again); read before a wake, for [`Waker::wait_resumed`].
    pub fn resumed(&self) -> u32 {
        self.resumed.load(Ordering::Acquire)
    }

    /// The loop holds the interpreter again after a spin.
    pub fn mark_resumed(&self) {
        self.resumed.fetch_add(1, Ordering::AcqRel);
    }

    /// Waits (spinning, at most `limit`) until the loop has come back from a
    /// spin since `resumed()` returned `seen`. A thread that woke a spinning
    /// loop with the interpreter released calls this before taking the
    /// interpreter again, so that the loop gets it first instead of finding
    /// it taken and going to sleep. Only a scheduling hint: nothing depends
    /// on it for correctness. Returns whether the loop came back in time.
    pub fn wait_resumed(&self, seen: u32, limit: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        loop {
            for _ in 0..64 {
                if self.resumed.load(Ordering::Acquire) != seen {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= limit {
                return false;
            }
        }
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
        assert_eq!(w.wake(), Wake::Wrote);
        assert_eq!(w.wake(), Wake::Coalesced);
        assert_eq!(w.wake(), Wake::Coalesced);
        w.drain();
        assert_eq!(
            w.wake(),
            Wake::Wrote,
            "after drain the next wake writes again"
        );
    }

    #[test]
    fn a_spinning_loop_is_woken_without_a_write() {
        let (w, p) = waker_watched_by_poller();
        w.begin_spin();
        assert!(!w.spin_woken());
        assert_eq!(w.wake(), Wake::Notified);
        assert_eq!(w.wake(), Wake::Notified);
        assert!(w.spin_woken());
        assert!(w.end_spin(), "the loop learns it must not sleep");
        let mut ev = Vec::new();
        p.wait_collect(&mut ev, Some(Duration::ZERO)).unwrap();
        assert!(ev.is_empty(), "no eventfd write was made");
        assert_eq!(w.wake(), Wake::Wrote, "after the spin wakes write again");
    }

    #[test]
    fn a_write_just_before_the_spin_ends_it() {
        let w = Waker::new().unwrap();
        assert_eq!(w.wake(), Wake::Wrote);
        w.begin_spin();
        assert!(w.spin_woken());
        assert!(
            !w.end_spin(),
            "the write, not the spin state, wakes the poll"
        );
    }

    #[test]
    fn spin_ended_without_wake_lets_the_loop_sleep() {
        let w = Waker::new().unwrap();
        w.begin_spin();
        assert!(!w.end_spin());
        assert!(!w.loop_spins());
    }

    #[test]
    fn wait_resumed_returns_once_the_loop_is_back() {
        let w = Arc::new(Waker::new().unwrap());
        let seen = w.resumed();
        assert!(!w.wait_resumed(seen, Duration::from_millis(1)));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || w2.mark_resumed());
        assert!(w.wait_resumed(seen, Duration::from_secs(10)));
        t.join().unwrap();
    }

    #[test]
    fn no_wakeup_lost_while_the_loop_alternates_spinning_and_sleeping() {
        // Producers wake while the consumer spins for a while, then sleeps
        // in the poller: every item must be seen, by either path.
        use std::sync::atomic::AtomicUsize;
        let (w, p) = waker_watched_by_poller();
        let queued = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (w, q) = (Arc::clone(&w), Arc::clone(&queued));
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        q.fetch_add(1, Ordering::SeqCst);
                        w.wake();
                        if i % 64 == 0 {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                })
            })
            .collect();
        let mut seen = 0;
        let mut ev = Vec::new();
        while seen < 6000 {
            w.begin_spin();
            let start = std::time::Instant::now();
            while !w.spin_woken() && start.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
            let woken = w.end_spin();
            ev.clear();
            let timeout = if woken {
                Duration::ZERO
            } else {
                Duration::from_secs(10)
            };
            p.wait_collect(&mut ev, Some(timeout)).unwrap();
            assert!(woken || !ev.is_empty(), "a producer's wake-up was lost");
            if !ev.is_empty() {
                w.drain();
            }
            seen = queued.load(Ordering::SeqCst);
        }
        for t in threads {
            t.join().unwrap();
        }
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
        p.wait_collect(&mut ev, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(ev.len(), 1);
        w.drain();
        ev.clear();
        p.wait_collect(&mut ev, Some(Duration::ZERO)).unwrap();
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
            p.wait_collect(&mut ev, Some(Duration::from_secs(10)))
                .unwrap();
            assert!(!ev.is_empty(), "a producer's wake-up was lost");
            w.drain();
            seen = queued.load(Ordering::SeqCst);
        }
        for t in threads {
            t.join().unwrap();
        }
    }
}

//! Scheduled callbacks, ordered by deadline.
//!
//! Entries sort by `(deadline, sequence)`: the sequence number grows with
//! every push, so timers with equal deadlines run in the order they were
//! scheduled. Cancelling is O(1): the payload carries its own flag and the
//! heap only counts cancellations ([`TimerHeap::note_cancelled`]); cancelled
//! entries are skipped when they reach the top, and the heap is rebuilt
//! without them when they make up most of it, so memory stays bounded even
//! when timers are scheduled and cancelled in bulk (timeouts that never fire).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A payload that knows whether it was cancelled.
pub trait Cancellable {
    /// True once the timer was cancelled; it must then never run.
    fn is_cancelled(&self) -> bool;
}

/// Below this many entries compaction is not worth a rebuild.
const MIN_ENTRIES_FOR_COMPACTION: usize = 100;

/// One scheduled timer.
struct Entry<T> {
    /// Deadline on the loop clock, in seconds.
    when: f64,
    /// Push order, breaking ties between equal deadlines.
    seq: u64,
    /// What to run.
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest entry.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .when
            .total_cmp(&self.when)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Min-heap of timers with lazy, counted cancellation.
pub struct TimerHeap<T> {
    /// Live and cancelled-but-not-yet-discarded entries.
    heap: BinaryHeap<Entry<T>>,
    /// Sequence number for the next push.
    next_seq: u64,
    /// Entries in `heap` believed cancelled (from `note_cancelled`).
    cancelled: usize,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
            cancelled: 0,
        }
    }
}

impl<T: Cancellable> TimerHeap<T> {
    /// Schedules `item` at `when`.
    pub fn push(&mut self, when: f64, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { when, seq, item });
    }

    /// Records that one entry still in the heap was cancelled.
    pub fn note_cancelled(&mut self) {
        self.cancelled += 1;
    }

    /// Entries in the heap, cancelled ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no entry is left.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Entries known to be cancelled but not yet discarded.
    pub fn cancelled_count(&self) -> usize {
        self.cancelled
    }

    /// Deadline of the earliest live timer. Cancelled entries found on top
    /// are moved to `garbage` (dropping them may run arbitrary code, so the
    /// caller drops them once it holds no lock).
    pub fn next_deadline(&mut self, garbage: &mut Vec<T>) -> Option<f64> {
        self.discard_cancelled_top(garbage);
        self.heap.peek().map(|e| e.when)
    }

    /// Moves every live timer due at `now` (deadline <= now) into `due`, in
    /// deadline-then-schedule order; cancelled ones go to `garbage`.
    pub fn pop_due(&mut self, now: f64, due: &mut Vec<T>, garbage: &mut Vec<T>) {
        self.compact_if_mostly_cancelled(garbage);
        loop {
            self.discard_cancelled_top(garbage);
            match self.heap.peek() {
                Some(top) if top.when <= now => {
                    let entry = self.heap.pop().expect("peeked");
                    due.push(entry.item);
                }
                _ => break,
            }
        }
    }

    /// Every entry, in no particular order (for the garbage collector).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|e| &e.item)
    }

    /// Removes every entry (for `loop.close()`).
    pub fn take_all(&mut self) -> Vec<T> {
        self.cancelled = 0;
        std::mem::take(&mut self.heap)
            .into_iter()
            .map(|e| e.item)
            .collect()
    }

    /// Pops cancelled entries off the top.
    fn discard_cancelled_top(&mut self, garbage: &mut Vec<T>) {
        while self.heap.peek().is_some_and(|e| e.item.is_cancelled()) {
            let entry = self.heap.pop().expect("peeked");
            self.cancelled = self.cancelled.saturating_sub(1);
            garbage.push(entry.item);
        }
    }

    /// Rebuilds the heap without cancelled entries once they are over half
    /// of it: O(n), amortised over the n/2 cancellations that caused it.
    fn compact_if_mostly_cancelled(&mut self, garbage: &mut Vec<T>) {
        let len = self.heap.len();
        if len < MIN_ENTRIES_FOR_COMPACTION || self.cancelled * 2 <= len {
            return;
        }
        let mut live = Vec::with_capacity(len - self.cancelled.min(len));
        for entry in std::mem::take(&mut self.heap).into_vec() {
            if entry.item.is_cancelled() {
                garbage.push(entry.item);
            } else {
                live.push(entry);
            }
        }
        self.heap = BinaryHeap::from(live);
        self.cancelled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Clone)]
    struct Timer {
        id: u32,
        cancelled: Rc<Cell<bool>>,
    }
    impl Cancellable for Timer {
        fn is_cancelled(&self) -> bool {
            self.cancelled.get()
        }
    }
    fn timer(id: u32) -> Timer {
        Timer {
            id,
            cancelled: Rc::new(Cell::new(false)),
        }
    }
    fn ids(v: &[Timer]) -> Vec<u32> {
        v.iter().map(|t| t.id).collect()
    }

    #[test]
    fn pops_by_deadline() {
        let mut h = TimerHeap::default();
        h.push(3.0, timer(3));
        h.push(1.0, timer(1));
        h.push(2.0, timer(2));
        let (mut due, mut garbage) = (Vec::new(), Vec::new());
        h.pop_due(2.5, &mut due, &mut garbage);
        assert_eq!(ids(&due), vec![1, 2]);
        assert_eq!(h.next_deadline(&mut garbage), Some(3.0));
    }

    #[test]
    fn equal_deadlines_run_in_schedule_order() {
        let mut h = TimerHeap::default();
        for id in 0..50 {
            h.push(1.0, timer(id));
        }
        let (mut due, mut garbage) = (Vec::new(), Vec::new());
        h.pop_due(1.0, &mut due, &mut garbage);
        assert_eq!(ids(&due), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn never_fires_before_deadline() {
        let mut h = TimerHeap::default();
        h.push(1.0, timer(1));
        let (mut due, mut garbage) = (Vec::new(), Vec::new());
        h.pop_due(0.999_999_999, &mut due, &mut garbage);
        assert!(due.is_empty());
        h.pop_due(1.0, &mut due, &mut garbage);
        assert_eq!(ids(&due), vec![1]);
    }

    #[test]
    fn cancelled_timers_never_run_and_are_discarded() {
        let mut h = TimerHeap::default();
        let a = timer(1);
        let b = timer(2);
        h.push(1.0, a.clone());
        h.push(2.0, b.clone());
        a.cancelled.set(true);
        h.note_cancelled();
        let mut garbage = Vec::new();
        assert_eq!(h.next_deadline(&mut garbage), Some(2.0));
        assert_eq!(ids(&garbage), vec![1]);
        assert_eq!(h.cancelled_count(), 0);
        let mut due = Vec::new();
        h.pop_due(5.0, &mut due, &mut garbage);
        assert_eq!(ids(&due), vec![2]);
    }

    #[test]
    fn compaction_drops_cancelled_entries_in_bulk() {
        let mut h = TimerHeap::default();
        let timers: Vec<_> = (0..1000).map(timer).collect();
        for (i, t) in timers.iter().enumerate() {
            h.push(100.0 + i as f64, t.clone());
        }
        for t in &timers[..900] {
            t.cancelled.set(true);
            h.note_cancelled();
        }
        let (mut due, mut garbage) = (Vec::new(), Vec::new());
        h.pop_due(0.0, &mut due, &mut garbage);
        assert!(due.is_empty());
        assert_eq!(garbage.len(), 900);
        assert_eq!(h.len(), 100);
        assert_eq!(h.cancelled_count(), 0);
        assert_eq!(h.next_deadline(&mut garbage), Some(100.0 + 900.0));
    }

    #[test]
    fn no_compaction_while_mostly_live() {
        let mut h = TimerHeap::default();
        let timers: Vec<_> = (0..200).map(timer).collect();
        for t in &timers {
            h.push(50.0, t.clone());
        }
        for t in timers.iter().skip(1).step_by(4) {
            t.cancelled.set(true);
            h.note_cancelled();
        }
        let (mut due, mut garbage) = (Vec::new(), Vec::new());
        h.pop_due(0.0, &mut due, &mut garbage);
        assert_eq!(h.len(), 200, "a quarter cancelled is below the threshold");
    }

    #[test]
    fn take_all_empties_the_heap() {
        let mut h = TimerHeap::default();
        h.push(1.0, timer(1));
        h.push(2.0, timer(2));
        assert_eq!(h.take_all().len(), 2);
        assert!(h.is_empty());
    }
}

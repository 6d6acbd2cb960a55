//! The queue of callbacks ready to run.
//!
//! One loop iteration runs exactly the callbacks that were queued when it
//! began: callbacks they schedule wait for the next iteration, so a callback
//! that keeps rescheduling itself cannot starve I/O or timers. The caller
//! takes a [`ReadyQueue::snapshot_len`] and then pops that many items one at
//! a time, so an exception escaping half-way leaves the rest queued in order.

use std::collections::VecDeque;

/// FIFO of ready callbacks.
#[derive(Debug)]
pub struct ReadyQueue<T> {
    /// Queued items, oldest first.
    items: VecDeque<T>,
}

impl<T> Default for ReadyQueue<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
        }
    }
}

impl<T> ReadyQueue<T> {
    /// Appends an item to run after everything already queued.
    pub fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    /// How many items this iteration runs: those queued right now.
    pub fn snapshot_len(&self) -> usize {
        self.items.len()
    }

    /// Takes the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The queued items, oldest first (for the garbage collector's visit).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// Removes every item, returning them so the caller can drop them where
    /// dropping is safe (outside any lock: a drop may run arbitrary code).
    pub fn take_all(&mut self) -> VecDeque<T> {
        std::mem::take(&mut self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_fifo_order() {
        let mut q = ReadyQueue::default();
        for i in 0..5 {
            q.push(i);
        }
        let got: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn snapshot_excludes_items_pushed_while_running() {
        let mut q = ReadyQueue::default();
        q.push("a");
        q.push("b");
        let n = q.snapshot_len();
        let mut ran = Vec::new();
        for _ in 0..n {
            let item = q.pop().unwrap();
            ran.push(item);
            q.push("rescheduled"); // a callback scheduling another
        }
        assert_eq!(ran, vec!["a", "b"]);
        assert_eq!(q.len(), 2, "rescheduled items wait for the next iteration");
    }

    #[test]
    fn interrupted_snapshot_keeps_the_rest_in_order() {
        let mut q = ReadyQueue::default();
        for i in 0..4 {
            q.push(i);
        }
        let _n = q.snapshot_len();
        assert_eq!(q.pop(), Some(0)); // the callback that raised
        assert_eq!(q.take_all().into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(q.is_empty());
    }
}

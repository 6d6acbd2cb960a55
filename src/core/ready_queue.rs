//! The queue of callbacks ready to run.
//!
//! One loop iteration runs exactly the callbacks that were queued when it
//! began: callbacks they schedule wait for the next iteration, so a callback
//! that keeps rescheduling itself cannot starve I/O or timers. The caller
//! takes the whole snapshot at once ([`ReadyQueue::take_batch`], one lock per
//! iteration instead of one per callback), runs it, and gives the batch back
//! ([`ReadyQueue::restore_batch`]): what an exception escaping half-way left
//! unrun goes back in front of what the callbacks queued meanwhile, so the
//! order is the same as if each item had been popped from the queue.

use std::collections::VecDeque;

/// FIFO of ready callbacks.
#[derive(Debug)]
pub struct ReadyQueue<T> {
    /// Queued items, oldest first.
    items: VecDeque<T>,
    /// An empty buffer kept from the last batch, swapped in by `take_batch`
    /// so that a busy loop does not allocate a new buffer every iteration.
    spare: VecDeque<T>,
}

impl<T> Default for ReadyQueue<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            spare: VecDeque::new(),
        }
    }
}

impl<T> ReadyQueue<T> {
    /// Appends an item to run after everything already queued.
    pub fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    /// Takes every queued item (the iteration's snapshot), oldest first.
    /// Items pushed afterwards wait for the next batch.
    pub fn take_batch(&mut self) -> VecDeque<T> {
        std::mem::replace(&mut self.items, std::mem::take(&mut self.spare))
    }

    /// Gives back a batch taken by `take_batch`. Items left in it (the run
    /// stopped early) are queued again ahead of everything pushed since; an
    /// empty batch is kept as the spare buffer.
    pub fn restore_batch(&mut self, mut batch: VecDeque<T>) {
        if batch.is_empty() {
            if batch.capacity() > self.spare.capacity() {
                self.spare = batch;
            }
            return;
        }
        batch.extend(self.items.drain(..));
        let newer = std::mem::replace(&mut self.items, batch);
        if newer.capacity() > self.spare.capacity() {
            self.spare = newer;
        }
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
    fn batch_excludes_items_pushed_while_running() {
        let mut q = ReadyQueue::default();
        q.push("a");
        q.push("b");
        let mut batch = q.take_batch();
        let mut ran = Vec::new();
        while let Some(item) = batch.pop_front() {
            ran.push(item);
            q.push("rescheduled");
        }
        q.restore_batch(batch);
        assert_eq!(ran, vec!["a", "b"]);
        assert_eq!(q.len(), 2, "rescheduled items wait for the next iteration");
    }

    #[test]
    fn interrupted_batch_goes_back_in_front_in_order() {
        let mut q = ReadyQueue::default();
        for i in 0..4 {
            q.push(i);
        }
        let mut batch = q.take_batch();
        assert_eq!(batch.pop_front(), Some(0)); // the callback that raised
        q.push(10); // queued by that callback before it raised
        q.restore_batch(batch);
        let got: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got, vec![1, 2, 3, 10]);
    }

    #[test]
    fn batches_reuse_their_buffer() {
        let mut q = ReadyQueue::default();
        for i in 0..100 {
            q.push(i);
        }
        let mut batch = q.take_batch();
        batch.clear();
        let cap = batch.capacity();
        q.restore_batch(batch);
        q.push(1);
        let batch = q.take_batch();
        assert!(
            q.items.capacity() >= cap,
            "the spare buffer is queued into next"
        );
        assert_eq!(batch.len(), 1);
    }
}

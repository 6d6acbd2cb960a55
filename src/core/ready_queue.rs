//! The queue of callbacks ready to run.
//!
//! One loop iteration runs exactly the callbacks that were queued when it
//! began: callbacks they schedule wait for the next iteration, so a callback
//! that keeps rescheduling itself cannot starve I/O or timers. The caller
//! takes the whole snapshot at once ([`ReadyQueue::take_batch`], one lock per
//! iteration instead of one per callback) into a buffer the run owns, runs
//! it, and gives back only what an exception escaping half-way left unrun
//! ([`ReadyQueue::restore_batch`]): it goes back in front of what the
//! callbacks queued meanwhile, so the order is the same as if each item had
//! been popped from the queue. A batch run to the end needs no second lock.

use std::collections::VecDeque;

/// FIFO of ready callbacks.
#[derive(Debug)]
pub struct ReadyQueue<T> {
    /// Queued items, oldest first.
    items: VecDeque<T>,
    /// An empty buffer kept between runs for their batches (see
    /// `take_batch_buffer`), so that a run does not start by allocating.
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

    /// Appends every item of `items`, in order, leaving it empty (with its
    /// allocation, for reuse).
    pub fn push_all(&mut self, items: &mut Vec<T>) {
        // One item is the usual case (one ready fd per poll): popping it
        // skips the out-of-line drop of a `Drain` (~25 instructions).
        if items.len() == 1 {
            self.items.extend(items.pop());
        } else {
            self.items.extend(items.drain(..));
        }
    }

    /// Moves every queued item (the iteration's snapshot), oldest first,
    /// into `batch`, which must be empty: the two buffers are swapped, so
    /// the queue keeps `batch`'s allocation for what is pushed meanwhile.
    /// Items pushed afterwards wait for the next batch.
    pub fn take_batch(&mut self, batch: &mut VecDeque<T>) {
        debug_assert!(batch.is_empty());
        std::mem::swap(&mut self.items, batch);
    }

    /// Gives back what a batch taken by `take_batch` left unrun (the run
    /// stopped early): queued again ahead of everything pushed since.
    /// `batch` is left empty. Nothing to do for an empty batch, so the
    /// caller may skip the call (and the lock around it) then.
    pub fn restore_batch(&mut self, batch: &mut VecDeque<T>) {
        if batch.is_empty() {
            return;
        }
        batch.extend(self.items.drain(..));
        std::mem::swap(&mut self.items, batch);
    }

    /// The buffer kept for batches between runs (empty, with whatever
    /// allocation the last run left), for a run to take batches into.
    pub fn take_batch_buffer(&mut self) -> VecDeque<T> {
        std::mem::take(&mut self.spare)
    }

    /// Keeps a run's empty batch buffer, with its allocation, for the next
    /// run (`take_batch_buffer`).
    pub fn keep_batch_buffer(&mut self, buffer: VecDeque<T>) {
        debug_assert!(buffer.is_empty());
        if buffer.capacity() > self.spare.capacity() {
            self.spare = buffer;
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
    fn push_all_appends_in_order_and_empties_the_source() {
        let mut q = ReadyQueue::default();
        q.push(0);
        for items in [vec![1], vec![2, 3, 4], vec![]] {
            let mut items = items;
            let capacity = items.capacity();
            q.push_all(&mut items);
            assert!(items.is_empty());
            assert_eq!(items.capacity(), capacity, "the allocation is kept");
        }
        let got: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn batch_excludes_items_pushed_while_running() {
        let mut q = ReadyQueue::default();
        q.push("a");
        q.push("b");
        let mut batch = q.take_batch_buffer();
        q.take_batch(&mut batch);
        let mut ran = Vec::new();
        while let Some(item) = batch.pop_front() {
            ran.push(item);
            q.push("rescheduled");
        }
        q.restore_batch(&mut batch);
        assert_eq!(ran, vec!["a", "b"]);
        assert_eq!(q.len(), 2, "rescheduled items wait for the next iteration");
    }

    #[test]
    fn interrupted_batch_goes_back_in_front_in_order() {
        let mut q = ReadyQueue::default();
        for i in 0..4 {
            q.push(i);
        }
        let mut batch = VecDeque::new();
        q.take_batch(&mut batch);
        assert_eq!(batch.pop_front(), Some(0)); // the callback that raised
        q.push(10); // queued by that callback before it raised
        q.restore_batch(&mut batch);
        assert!(batch.is_empty());
        let got: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got, vec![1, 2, 3, 10]);
    }

    #[test]
    fn batches_swap_buffers_with_the_queue() {
        let mut q = ReadyQueue::default();
        for i in 0..100 {
            q.push(i);
        }
        let mut batch = q.take_batch_buffer();
        q.take_batch(&mut batch);
        let cap = batch.capacity();
        batch.clear();
        q.restore_batch(&mut batch);
        q.push(1);
        q.take_batch(&mut batch);
        assert!(
            q.items.capacity() >= cap,
            "the queue got the batch's buffer"
        );
        assert_eq!(batch.len(), 1);
        batch.clear();
        q.keep_batch_buffer(batch);
        assert!(q.take_batch_buffer().capacity() >= 1, "kept between runs");
    }
}

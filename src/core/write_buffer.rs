//! A transport's outgoing bytes that the kernel has not taken yet.
//!
//! One contiguous region, so everything pending goes out in a single
//! `send`: as good as a `writev` of the pieces, without the iovec set-up.
//! Bytes are consumed from the front by advancing an offset; the consumed
//! prefix is reclaimed when it is more than half the storage, so a
//! transport that keeps a little data pending does not copy on every send.

/// Pending outgoing bytes, consumed from the front.
#[derive(Default)]
pub struct WriteBuffer {
    /// Storage; `bytes[start..]` is what is pending.
    bytes: Vec<u8>,
    /// Bytes already sent at the front of `bytes`.
    start: usize,
}

/// Storage above this is released when the buffer empties, so that one
/// burst does not pin its peak memory for the connection's lifetime.
const KEEP_CAPACITY: usize = 64 * 1024;

impl WriteBuffer {
    /// Number of pending bytes.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pending bytes, oldest first.
    pub fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Appends `data` after what is pending.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Marks the first `n` pending bytes as sent (`n <= len()`).
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.bytes.len() {
            self.clear();
        }
    }

    /// Drops everything pending.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
        if self.bytes.capacity() > KEEP_CAPACITY {
            self.bytes = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WriteBuffer;

    #[test]
    fn consumes_in_order_across_pushes() {
        let mut buf = WriteBuffer::default();
        buf.push(b"hello ");
        buf.push(b"world");
        assert_eq!(buf.pending(), b"hello world");
        buf.consume(3);
        assert_eq!(buf.pending(), b"lo world");
        buf.push(b"!");
        assert_eq!(buf.pending(), b"lo world!");
        assert_eq!(buf.len(), 9);
        buf.consume(9);
        assert!(buf.is_empty());
        assert_eq!(buf.pending(), b"");
    }

    #[test]
    fn reclaims_the_sent_prefix() {
        let mut buf = WriteBuffer::default();
        buf.push(&[1; 100]);
        buf.consume(60);
        buf.push(&[2; 10]);
        // The 60 sent bytes were dropped before appending.
        assert_eq!(buf.start, 0);
        assert_eq!(buf.len(), 50);
        assert_eq!(&buf.pending()[..40], &[1; 40][..]);
        assert_eq!(&buf.pending()[40..], &[2; 10][..]);
    }

    #[test]
    fn releases_large_storage_when_emptied() {
        let mut buf = WriteBuffer::default();
        buf.push(&vec![0; 1 << 20]);
        buf.consume(1 << 20);
        assert!(buf.is_empty());
        assert_eq!(buf.bytes.capacity(), 0);
    }
}

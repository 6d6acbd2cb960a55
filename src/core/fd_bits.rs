//! One bit per file descriptor: per-fd hints that cost a shift and a mask.
//!
//! Used for hints that choose between two correct paths (which way to read
//! a socket, whether to try a read before waiting), so a stale bit (the fd
//! was closed and its number reused) costs a syscall, never a wrong result.

/// Fds at or past this number are never recorded (`get` answers false);
/// bounds an `FdBits` at 128 KiB.
pub const MAX_TRACKED_FD: i32 = 1 << 20;

/// A set of fds, as a bitmap grown on demand.
#[derive(Default)]
pub struct FdBits {
    /// Bit `fd % 64` of word `fd / 64` is set for fds in the set.
    words: Vec<u64>,
}

impl FdBits {
    /// An empty set (const, for thread-locals).
    pub const fn new() -> Self {
        FdBits { words: Vec::new() }
    }

    /// True if `fd` is in the set.
    #[inline]
    pub fn get(&self, fd: i32) -> bool {
        let Ok(fd) = usize::try_from(fd) else {
            return false;
        };
        self.words
            .get(fd / 64)
            .is_some_and(|word| word & (1 << (fd % 64)) != 0)
    }

    /// Puts `fd` in the set or takes it out. Negative fds and fds from
    /// `MAX_TRACKED_FD` on are ignored; clearing never allocates.
    #[inline]
    pub fn set(&mut self, fd: i32, value: bool) {
        if !(0..MAX_TRACKED_FD).contains(&fd) {
            return;
        }
        let fd = fd as usize;
        let (index, bit) = (fd / 64, 1u64 << (fd % 64));
        if value {
            if index >= self.words.len() {
                self.words.resize(index + 1, 0);
            }
            self.words[index] |= bit;
        } else if let Some(word) = self.words.get_mut(index) {
            *word &= !bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_each_fd() {
        let mut bits = FdBits::default();
        assert!(!bits.get(0) && !bits.get(1000));
        bits.set(1000, true);
        bits.set(3, true);
        assert!(bits.get(1000) && bits.get(3));
        assert!(!bits.get(999) && !bits.get(1001) && !bits.get(2));
        bits.set(1000, false);
        assert!(!bits.get(1000) && bits.get(3));
        bits.set(5000, false); // clearing an untracked fd allocates nothing
        assert_eq!(bits.words.len(), 1000 / 64 + 1);
        bits.set(MAX_TRACKED_FD, true);
        assert!(!bits.get(MAX_TRACKED_FD));
        bits.set(-1, true);
        assert!(!bits.get(-1));
    }
}

//! A hash map keyed by file descriptor, with a hash that costs a multiply.
//!
//! The loop looks its fd table up several times per I/O event (dispatching
//! a report, installing and removing a wait, re-arming). With the standard
//! library's SipHash each lookup cost ~100 instructions under callgrind,
//! most of them hashing one `i32`; fds are not attacker-chosen keys (the
//! kernel hands out the lowest free number), so HashDoS resistance buys
//! nothing here. The hash multiplies by an odd constant (Fibonacci
//! hashing): a bijection on 64 bits that spreads consecutive fds over the
//! high bits, which hashbrown uses for its per-slot tag, so dense small fds
//! do not all share one tag.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap<i32, V>` with [`FdHasher`].
pub type FdMap<V> = HashMap<i32, V, BuildHasherDefault<FdHasher>>;

/// Hashes one integer key by multiplying it by 2^64 / φ.
#[derive(Default, Clone, Copy)]
pub struct FdHasher(u64);

/// 2^64 divided by the golden ratio, rounded to odd.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for FdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u64(n as u32 as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(FIBONACCI);
    }

    /// Other key types are never used with this map; hashed byte by byte
    /// so the trait is still correct if one is.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn map_works_as_a_map() {
        let mut map: FdMap<usize> = FdMap::default();
        for fd in 0..1000 {
            map.insert(fd, fd as usize * 2);
        }
        map.insert(-1, 7);
        assert_eq!(map.len(), 1001);
        assert!((0..1000).all(|fd| map[&fd] == fd as usize * 2));
        assert_eq!(map.remove(&-1), Some(7));
        assert_eq!(map.get(&1000), None);
    }

    #[test]
    fn small_fds_get_distinct_high_bits() {
        let build = BuildHasherDefault::<FdHasher>::default();
        let tags: std::collections::HashSet<u64> =
            (0..64).map(|fd: i32| build.hash_one(fd) >> 57).collect();
        // 64 fds over 128 possible 7-bit tags: most must differ.
        assert!(tags.len() > 32, "{} distinct tags", tags.len());
    }
}

//! Producer/consumer index arithmetic for the descriptor rings.
//!
//! Both rings are arrays of `len` descriptors with two indices in device
//! registers: the head (advanced by the device as it consumes descriptors)
//! and the tail (advanced by software as it produces them). `head == tail`
//! means the device owns nothing, so software never fills the last free slot:
//! at most `len - 1` descriptors are handed to the device at once.
//!
//! A driver keeps one more index per ring, the place where it next looks for
//! a written-back descriptor (`next_to_clean`); everything from there up to
//! the tail is in flight, everything from the tail round to `next_to_clean`
//! is free for software.

use crate::desc::DESC_LEN;

/// The geometry of one ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ring {
    len: u32,
}

impl Ring {
    /// Most descriptors a ring may have: RDLEN/TDLEN hold up to 1 MiB of
    /// 16-byte descriptors, and the head/tail registers are 16 bits wide.
    pub const MAX_LEN: u32 = 65536;

    /// A ring of `len` descriptors, or `None` unless `len` is a multiple of 8
    /// (RDLEN/TDLEN are multiples of 128 bytes) between 8 and [`Ring::MAX_LEN`].
    pub fn new(len: u32) -> Option<Ring> {
        (len >= 8 && len & 7 == 0 && len <= Self::MAX_LEN).then_some(Ring { len })
    }

    /// Number of descriptors.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Always false: a ring has at least 8 descriptors.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The value for RDLEN/TDLEN.
    pub fn bytes(&self) -> u32 {
        self.len * DESC_LEN as u32
    }

    /// The index `n` places after `i` (wrapping).
    pub fn advance(&self, i: u32, n: u32) -> u32 {
        // Widen so i + n cannot overflow for any u32 inputs.
        ((u64::from(i % self.len) + u64::from(n % self.len)) % u64::from(self.len)) as u32
    }

    /// The index after `i`.
    pub fn next(&self, i: u32) -> u32 {
        self.advance(i, 1)
    }

    /// How many steps from `from` forward to `to` (0 when equal).
    pub fn distance(&self, from: u32, to: u32) -> u32 {
        let (from, to) = (from % self.len, to % self.len);
        // Add len before subtracting so the result never underflows.
        (to + self.len - from) % self.len
    }

    /// Descriptors in flight: produced at or after `next_to_clean` and
    /// before `tail`.
    pub fn in_flight(&self, next_to_clean: u32, tail: u32) -> u32 {
        self.distance(next_to_clean, tail)
    }

    /// Descriptors software may still produce without making tail catch up
    /// with `next_to_clean` (one slot always stays empty).
    pub fn free(&self, next_to_clean: u32, tail: u32) -> u32 {
        self.len - 1 - self.in_flight(next_to_clean, tail)
    }

    /// Byte offset of descriptor `i` in the ring memory.
    pub fn offset(&self, i: u32) -> usize {
        (i % self.len) as usize * DESC_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        assert!(Ring::new(0).is_none() && Ring::new(12).is_none() && Ring::new(65544).is_none());
        let r = Ring::new(8).expect("valid");
        assert_eq!((r.len(), r.bytes(), r.offset(9)), (8, 128, 16));
        assert_eq!((r.next(7), r.advance(6, 3)), (0, 1));
        assert_eq!(
            (r.distance(6, 1), r.distance(1, 6), r.distance(3, 3)),
            (3, 5, 0)
        );
        assert_eq!((r.in_flight(0, 0), r.free(0, 0)), (0, 7));
        assert_eq!((r.in_flight(2, 1), r.free(2, 1)), (7, 0));
    }
}

//! The IOVA allocator: hands out page-aligned ranges of the device's I/O
//! virtual address space from the ranges the backend allows.
//!
//! A first-fit free list of holes kept in a `BTreeMap` (start → end), merged
//! with its neighbours on free. Plain and small: drivers allocate a few
//! queues and buffer pools at start-up, not per I/O.
//!
//! Besides allocating, a caller may [`IovaAllocator::reserve`] a range it
//! chose (a vfio-user client's DMA window): it leaves the free list, so
//! nothing allocated later lands in it, and a reservation that overlaps
//! anything allocated or reserved is refused. Reservations may lie below
//! [`IOVA_FLOOR`]; allocations never do.

use std::collections::BTreeMap;
use std::ops::Range;

/// Lowest IOVA handed out: the first megabyte stays unmapped so a zero or
/// small garbage address in a descriptor faults instead of hitting a buffer.
pub const IOVA_FLOOR: u64 = 1 << 20;

/// A page-granular IOVA allocator.
#[derive(Debug, Clone)]
pub struct IovaAllocator {
    page: u64,
    /// Free holes, start → end (exclusive), non-overlapping, non-adjacent.
    free: BTreeMap<u64, u64>,
    /// The ranges the allocator was made over (clipped to whole pages).
    ranges: Vec<Range<u64>>,
}

impl IovaAllocator {
    /// An allocator over `ranges` (clipped to whole pages; allocations stay
    /// above [`IOVA_FLOOR`]). `page` must be a power of two.
    pub fn new(ranges: &[Range<u64>], page: u64) -> Self {
        assert!(page.is_power_of_two(), "page size must be a power of two");
        let mut a = IovaAllocator {
            page,
            free: BTreeMap::new(),
            ranges: Vec::new(),
        };
        for r in ranges {
            let start = r.start.saturating_add(page - 1) & !(page - 1);
            let end = r.end & !(page - 1);
            if start < end {
                a.insert_hole(start, end);
                a.ranges.push(start..end);
            }
        }
        a
    }

    /// True if `iova..iova + len` lies inside one of the allocator's ranges
    /// (whether free or not).
    pub fn in_ranges(&self, iova: u64, len: u64) -> bool {
        iova.checked_add(len)
            .is_some_and(|end| self.ranges.iter().any(|r| r.start <= iova && end <= r.end))
    }

    /// Takes `iova..iova + len` (page aligned, `len` > 0) out of the free
    /// list, for a range the caller chose. `false`, changing nothing, if
    /// any of it is not free (outside the ranges, allocated or reserved).
    /// Give it back with [`IovaAllocator::free`].
    pub fn reserve(&mut self, iova: u64, len: u64) -> bool {
        let Some(end) = iova.checked_add(len) else {
            return false;
        };
        if len == 0 || iova % self.page != 0 || len % self.page != 0 {
            return false;
        }
        let Some((&s, &e)) = self.free.range(..=iova).next_back() else {
            return false;
        };
        if e < end {
            return false;
        }
        self.free.remove(&s);
        if s < iova {
            self.free.insert(s, iova);
        }
        if end < e {
            self.free.insert(end, e);
        }
        true
    }

    /// The page size.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// Rounds `len` up to whole pages (`None` on overflow or zero).
    pub fn round(&self, len: u64) -> Option<u64> {
        if len == 0 {
            return None;
        }
        len.checked_add(self.page - 1).map(|l| l & !(self.page - 1))
    }

    /// Allocates `len` bytes (rounded up to pages), aligned to `align` (a
    /// power of two; at least a page). Returns the IOVA.
    pub fn alloc(&mut self, len: u64, align: u64) -> Option<u64> {
        let len = self.round(len)?;
        let align = align.max(self.page);
        if !align.is_power_of_two() {
            return None;
        }
        let (hole_start, hole_end, at) = self.free.iter().find_map(|(&s, &e)| {
            let at = s.max(IOVA_FLOOR).checked_add(align - 1)? & !(align - 1);
            (at.checked_add(len)? <= e).then_some((s, e, at))
        })?;
        self.free.remove(&hole_start);
        if hole_start < at {
            self.free.insert(hole_start, at);
        }
        if at + len < hole_end {
            self.free.insert(at + len, hole_end);
        }
        Some(at)
    }

    /// Returns `len` bytes (rounded up to pages) at `iova` to the free list.
    /// Freeing a range that overlaps free space is a bug in the caller; it
    /// is ignored (and reported as `false`) rather than corrupting the list.
    pub fn free(&mut self, iova: u64, len: u64) -> bool {
        let Some(len) = self.round(len) else {
            return false;
        };
        let Some(end) = iova.checked_add(len) else {
            return false;
        };
        if iova % self.page != 0 || self.overlaps_free(iova, end) {
            return false;
        }
        self.insert_hole(iova, end);
        true
    }

    /// Total free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(|(s, e)| e - s).sum()
    }

    fn overlaps_free(&self, start: u64, end: u64) -> bool {
        // The hole starting at or before `start`, and any hole starting inside.
        let before = self
            .free
            .range(..=start)
            .next_back()
            .is_some_and(|(_, &e)| e > start);
        let inside = self.free.range(start..end).next().is_some();
        before || inside
    }

    fn insert_hole(&mut self, mut start: u64, mut end: u64) {
        // Merge with the hole that ends exactly at `start`.
        if let Some((&s, &e)) = self.free.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.free.remove(&s);
            }
        }
        // Merge with holes that start inside or right at the end.
        while let Some((&s, &e)) = self.free.range(start..=end).next() {
            end = end.max(e);
            self.free.remove(&s);
        }
        self.free.insert(start, end);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: u64 = 4096;

    #[test]
    fn floor_and_alignment() {
        let mut a = IovaAllocator::new(&[0..(1 << 32)], P);
        let x = a.alloc(1, 1).unwrap();
        assert_eq!(x, IOVA_FLOOR);
        let y = a.alloc(P, 1 << 21).unwrap();
        assert_eq!(y % (1 << 21), 0);
        assert!(y >= x + P);
    }

    #[test]
    fn exhaustion_and_reuse() {
        let mut a = IovaAllocator::new(&[IOVA_FLOOR..IOVA_FLOOR + 4 * P], P);
        let v: Vec<u64> = (0..4).map(|_| a.alloc(P, P).unwrap()).collect();
        assert_eq!(a.alloc(P, P), None);
        assert!(a.free(v[1], P));
        assert!(!a.free(v[1], P), "double free is refused");
        assert_eq!(a.alloc(P, P), Some(v[1]));
        for x in v {
            a.free(x, P);
        }
        assert_eq!(a.free_bytes(), 4 * P);
        assert_eq!(a.free.len(), 1, "holes merge back into one");
    }

    #[test]
    fn several_ranges_skip_reserved_window() {
        // Like x86's IOVA ranges around the MSI window 0xfee00000.
        let mut a = IovaAllocator::new(&[0..0xfee0_0000, 0xfef0_0000..(1 << 39)], P);
        let big = a.alloc(0xfee0_0000 - IOVA_FLOOR, P).unwrap();
        assert_eq!(big, IOVA_FLOOR);
        assert_eq!(a.alloc(P, P), Some(0xfef0_0000));
    }

    #[test]
    fn zero_and_overflow_rejected() {
        let mut a = IovaAllocator::new(&[0..u64::MAX], P);
        assert_eq!(a.alloc(0, P), None);
        assert_eq!(a.alloc(u64::MAX, P), None);
        assert!(!a.free(u64::MAX - 10, P));
    }

    #[test]
    fn reservations_and_allocations_never_collide() {
        let mut a = IovaAllocator::new(&[0..IOVA_FLOOR + 16 * P], P);
        // Below the floor: reservable, never allocated.
        assert!(a.reserve(0, 2 * P));
        assert!(!a.reserve(P, P), "overlaps a reservation");
        let x = a.alloc(P, P).unwrap();
        assert_eq!(x, IOVA_FLOOR);
        assert!(!a.reserve(x, P), "overlaps an allocation");
        assert!(!a.reserve(x - P, 2 * P), "straddles an allocation");
        assert!(!a.reserve(IOVA_FLOOR + 16 * P, P), "outside the ranges");
        assert!(!a.reserve(IOVA_FLOOR + 2 * P + 1, P), "unaligned");
        assert!(!a.reserve(IOVA_FLOOR + 2 * P, 0), "empty");
        assert!(a.reserve(IOVA_FLOOR + 2 * P, 3 * P));
        // Allocation skips the reservation.
        let y = a.alloc(2 * P, P).unwrap();
        assert_eq!(y, IOVA_FLOOR + 5 * P);
        assert!(a.in_ranges(IOVA_FLOOR + 2 * P, 3 * P));
        assert!(!a.in_ranges(IOVA_FLOOR + 15 * P, 2 * P));
        // Released, the range is free for either again.
        assert!(a.free(IOVA_FLOOR + 2 * P, 3 * P));
        assert!(a.reserve(IOVA_FLOOR + P, P));
        assert_eq!(a.alloc(P, P), Some(IOVA_FLOOR + 2 * P));
    }

    proptest! {
        #[test]
        fn allocations_never_overlap(ops in proptest::collection::vec((1u64..5 * P, any::<bool>()), 1..60)) {
            let mut a = IovaAllocator::new(&[0..IOVA_FLOOR + 64 * P], P);
            let total = a.free_bytes();
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (len, free_one) in ops {
                if free_one && !live.is_empty() {
                    let (s, l) = live.remove(0);
                    prop_assert!(a.free(s, l));
                } else if let Some(s) = a.alloc(len, P) {
                    let l = a.round(len).unwrap();
                    prop_assert!(s >= IOVA_FLOOR && s % P == 0);
                    for &(t, m) in &live {
                        prop_assert!(s + l <= t || t + m <= s, "overlap");
                    }
                    live.push((s, l));
                }
                let used: u64 = live.iter().map(|x| x.1).sum();
                prop_assert_eq!(a.free_bytes() + used, total);
            }
        }
    }
}

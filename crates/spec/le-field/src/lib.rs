//! Little-endian integer fields at byte offsets — the one set of field
//! helpers every spec crate uses (NVMe, PCI, e1000, GPT), so that a layout's
//! code reads `le::u32(buf, 8)` and nothing else.
//!
//! The callers are checked views: they have already checked the buffer's
//! length against the structure's, so an out-of-range offset is a bug in
//! the caller and panics like any slice index.

#![no_std]

/// The little-endian `u16` at `at`.
#[inline]
pub fn u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// The little-endian `u32` at `at`.
#[inline]
pub fn u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The little-endian `u64` at `at`.
#[inline]
pub fn u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Stores `v` little-endian at `at`.
#[inline]
pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Stores `v` little-endian at `at`.
#[inline]
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Stores `v` little-endian at `at`.
#[inline]
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    #[test]
    fn byte_order() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(super::u16(&b, 1), 0x0302);
        assert_eq!(super::u32(&b, 1), 0x0504_0302);
        assert_eq!(super::u64(&b, 1), 0x0908_0706_0504_0302);
    }

    proptest! {
        #[test]
        fn put_then_get(v in any::<u64>(), at in 0usize..8) {
            let mut b = [0xeeu8; 16];
            super::put_u64(&mut b, at, v);
            prop_assert_eq!(super::u64(&b, at), v);
            super::put_u32(&mut b, at, v as u32);
            prop_assert_eq!(super::u32(&b, at), v as u32);
            super::put_u16(&mut b, at, v as u16);
            prop_assert_eq!(super::u16(&b, at), v as u16);
            // Bytes outside the field are untouched.
            prop_assert!(b[..at].iter().chain(&b[at + 8..]).all(|&x| x == 0xee));
        }
    }
}

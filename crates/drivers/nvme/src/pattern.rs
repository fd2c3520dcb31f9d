//! A reproducible pseudo-random pattern: every block's content depends only on the seed and its
//! LBA, so any block can be checked on its own (and a block written to the wrong LBA is caught).

/// Fills `buf` (whole blocks of `block_size` bytes) with the pattern of the blocks starting at
/// `lba`.
pub fn fill(seed: u64, lba: u64, block_size: usize, buf: &mut [u8]) {
    for (i, block) in buf.chunks_mut(block_size.max(1)).enumerate() {
        // xorshift64* seeded from (seed, lba); splitmix-style mixing avoids weak seeds.
        let mut x = mix(seed ^ mix(lba + i as u64));
        for chunk in block.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Returns the index of the first block of `buf` that does not hold its pattern.
pub fn first_mismatch(seed: u64, lba: u64, block_size: usize, buf: &[u8]) -> Option<u64> {
    let mut expect = vec![0u8; block_size.max(1)];
    for (i, block) in buf.chunks(block_size.max(1)).enumerate() {
        fill(seed, lba + i as u64, block_size, &mut expect[..block.len()]);
        if block != &expect[..block.len()] {
            return Some(i as u64);
        }
    }
    None
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_independent_and_distinct() {
        let mut a = vec![0u8; 4 * 512];
        fill(7, 100, 512, &mut a);
        let mut b = vec![0u8; 512];
        fill(7, 102, 512, &mut b);
        assert_eq!(&a[1024..1536], &b[..]);
        assert_ne!(&a[0..512], &a[512..1024]);
        assert_eq!(first_mismatch(7, 100, 512, &a), None);
        assert_eq!(first_mismatch(7, 101, 512, &a), Some(0));
        a[1600] ^= 1;
        assert_eq!(first_mismatch(7, 100, 512, &a), Some(3));
    }
}

//! Statistics counters (0x4000..0x4100).
//!
//! Per the datasheet every statistics register is **read-to-clear**: a read
//! returns the count since the previous read. The 64-bit octet counters are
//! split in two: reading the high half clears both halves, so read the low
//! half first. A driver therefore accumulates what it reads.
//!
//! QEMU's model (7.2) clears on read only the counters marked
//! [`Clear::OnRead`] below; the error counters it keeps (CRCERRS..MPC, RNBC)
//! are left out here because accumulating them would double-count.

/// How a counter behaves when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Clear {
    /// Cleared by the read.
    OnRead,
    /// Low half of a 64-bit pair: cleared together with the high half, when
    /// the high half (at offset + 4) is read.
    WithHigh,
}

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stat {
    /// Short name (the datasheet mnemonic, lower case; 64-bit pairs without
    /// the L/H suffix).
    pub name: &'static str,
    /// Register offset (the low half for 64-bit pairs).
    pub offset: u32,
    /// 64 bits wide (low at `offset`, high at `offset + 4`).
    pub wide: bool,
    /// Read behaviour of the register at `offset`.
    pub clear: Clear,
    /// What it counts.
    pub what: &'static str,
}

const fn c32(name: &'static str, offset: u32, what: &'static str) -> Stat {
    Stat {
        name,
        offset,
        wide: false,
        clear: Clear::OnRead,
        what,
    }
}

const fn c64(name: &'static str, offset: u32, what: &'static str) -> Stat {
    Stat {
        name,
        offset,
        wide: true,
        clear: Clear::WithHigh,
        what,
    }
}

/// The counters a driver reports.
pub const STATS: &[Stat] = &[
    c32("gprc", 0x4074, "good packets received"),
    c32("bprc", 0x4078, "broadcast packets received"),
    c32("mprc", 0x407C, "multicast packets received"),
    c32("gptc", 0x4080, "good packets transmitted"),
    c64("gorc", 0x4088, "good octets received"),
    c64("gotc", 0x4090, "good octets transmitted"),
    c32("ruc", 0x40A4, "receive undersize (padded) frames"),
    c32("roc", 0x40AC, "receive oversize frames"),
    c64("tor", 0x40C0, "total octets received"),
    c64("tot", 0x40C8, "total octets transmitted"),
    c32("tpr", 0x40D0, "total packets received"),
    c32("tpt", 0x40D4, "total packets transmitted"),
    c32("mptc", 0x40F0, "multicast packets transmitted"),
    c32("bptc", 0x40F4, "broadcast packets transmitted"),
];

/// Combine the two halves of a 64-bit counter.
pub fn wide(low: u32, high: u32) -> u64 {
    (u64::from(high) << 32) | u64::from(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_in_range() {
        for w in STATS.windows(2) {
            let end = w[0].offset + if w[0].wide { 8 } else { 4 };
            assert!(end <= w[1].offset, "{} overlaps {}", w[0].name, w[1].name);
        }
        assert!(STATS
            .iter()
            .all(|s| (0x4000..0x4104).contains(&s.offset) && s.offset % 4 == 0));
        assert_eq!(wide(1, 2), 0x2_0000_0001);
    }
}

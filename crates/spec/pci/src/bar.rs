//! Base address registers.

/// Bits of a BAR register and of the expansion ROM register.
pub mod bar_bits {
    /// Bit 0: an I/O BAR.
    pub const IO: u32 = 1;
    /// Memory BAR type field, bits 1–2 (0 32-bit, 1 below 1 MiB, 2 64-bit).
    pub const MEM_TYPE_MASK: u32 = 3 << 1;
    /// Memory BAR type 2: 64-bit, the next slot holds the upper half.
    pub const MEM_TYPE_64: u32 = 2 << 1;
    /// Memory BAR type 1: below 1 MiB (legacy).
    pub const MEM_TYPE_1M: u32 = 1 << 1;
    /// Memory BAR bit 3: prefetchable.
    pub const PREFETCH: u32 = 1 << 3;
    /// The address bits of an I/O BAR.
    pub const IO_ADDR_MASK: u32 = !3;
    /// The address bits of a memory BAR.
    pub const MEM_ADDR_MASK: u32 = !0xf;
    /// Expansion ROM register bit 0: decode enable.
    pub const ROM_ENABLE: u32 = 1;
    /// The address bits of the expansion ROM register (2 KiB granules).
    pub const ROM_ADDR_MASK: u32 = !0x7ff;
}

/// Address decoding of a memory BAR (bits 1–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum MemKind {
    /// Anywhere in 32-bit space.
    Bits32,
    /// Below 1 MiB (legacy, PCI 2.x).
    Below1M,
    /// Anywhere in 64-bit space; the next slot holds the upper half.
    Bits64,
    /// The reserved encoding (type 3).
    Reserved,
}

/// One BAR slot, decoded from the register values (not from the OS's
/// resource assignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bar {
    /// The register reads 0 (or all ones): not implemented or unassigned.
    Unused,
    /// An I/O port range starting at `port`.
    Io {
        /// Port address (bits 2–31).
        port: u32,
    },
    /// A memory range.
    Memory {
        /// Base address; for 64-bit BARs including the upper half.
        addr: u64,
        /// Address decoding.
        mem: MemKind,
        /// Prefetchable.
        prefetchable: bool,
    },
    /// The upper half of the 64-bit BAR in the previous slot.
    Upper,
    /// A 64-bit BAR in the header's last slot: there is no upper half.
    Broken64 {
        /// The lower 32 bits of the address.
        addr: u32,
        /// Prefetchable.
        prefetchable: bool,
    },
}

impl Bar {
    /// Decodes a BAR from its register `lo` and, for a 64-bit memory BAR,
    /// the next register `hi` (`None` when there is no next slot).
    pub fn parse(lo: u32, hi: Option<u32>) -> Bar {
        if lo == 0 || lo == u32::MAX {
            return Bar::Unused;
        }
        if lo & 1 != 0 {
            return Bar::Io { port: lo & !0x3 };
        }
        let prefetchable = lo & 0x8 != 0;
        let low = lo & !0xf;
        let mem = match (lo >> 1) & 3 {
            0 => MemKind::Bits32,
            1 => MemKind::Below1M,
            2 => MemKind::Bits64,
            _ => MemKind::Reserved,
        };
        if mem == MemKind::Bits64 {
            match hi {
                Some(hi) => Bar::Memory {
                    addr: (u64::from(hi) << 32) | u64::from(low),
                    mem,
                    prefetchable,
                },
                None => Bar::Broken64 {
                    addr: low,
                    prefetchable,
                },
            }
        } else {
            Bar::Memory {
                addr: u64::from(low),
                mem,
                prefetchable,
            }
        }
    }

    /// Whether this is a 64-bit memory BAR (which uses two slots).
    pub fn is_64bit(&self) -> bool {
        matches!(
            self,
            Bar::Memory {
                mem: MemKind::Bits64,
                ..
            } | Bar::Broken64 { .. }
        )
    }
}

/// Iterator over a header's BAR slots: `(slot, Bar)` for each slot, the
/// slot after a 64-bit BAR yielding [`Bar::Upper`].
#[derive(Debug, Clone)]
pub struct Bars {
    raw: [u32; 6],
    count: usize,
    next: usize,
    upper_next: bool,
}

impl Bars {
    /// Decodes the first `count` of `raw` (6 for type 0, 2 for type 1).
    pub fn new(raw: [u32; 6], count: usize) -> Self {
        Bars {
            raw,
            count: count.min(6),
            next: 0,
            upper_next: false,
        }
    }
}

impl Iterator for Bars {
    type Item = (usize, Bar);

    fn next(&mut self) -> Option<(usize, Bar)> {
        let i = self.next;
        if i >= self.count {
            return None;
        }
        self.next += 1;
        if self.upper_next {
            self.upper_next = false;
            return Some((i, Bar::Upper));
        }
        let hi = if i + 1 < self.count {
            Some(self.raw[i + 1])
        } else {
            None
        };
        let bar = Bar::parse(self.raw[i], hi);
        if matches!(
            bar,
            Bar::Memory {
                mem: MemKind::Bits64,
                ..
            }
        ) {
            self.upper_next = true;
        }
        Some((i, bar))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(Bar::parse(0, None), Bar::Unused);
        assert_eq!(Bar::parse(u32::MAX, None), Bar::Unused);
        assert_eq!(Bar::parse(0xc001, None), Bar::Io { port: 0xc000 });
        assert_eq!(
            Bar::parse(0xfebf_0000, None),
            Bar::Memory {
                addr: 0xfebf_0000,
                mem: MemKind::Bits32,
                prefetchable: false
            }
        );
        assert_eq!(
            Bar::parse(0x0000_000c, Some(0x40)),
            Bar::Memory {
                addr: 0x40_0000_0000,
                mem: MemKind::Bits64,
                prefetchable: true
            }
        );
        assert_eq!(
            Bar::parse(0x1000_0004, None),
            Bar::Broken64 {
                addr: 0x1000_0000,
                prefetchable: false
            }
        );
        assert!(matches!(
            Bar::parse(0x2, None),
            Bar::Memory {
                mem: MemKind::Below1M,
                ..
            }
        ));
    }

    #[test]
    fn slots() {
        let bars: Vec<_> = Bars::new([0x4, 0x40, 0xe001, 0, 0xc, 0], 6).collect();
        assert_eq!(bars.len(), 6);
        assert!(bars[0].1.is_64bit());
        assert_eq!(bars[1].1, Bar::Upper);
        assert_eq!(bars[2].1, Bar::Io { port: 0xe000 });
        assert_eq!(bars[3].1, Bar::Unused);
        assert_eq!(bars[5].1, Bar::Upper);
        // A bridge has two slots; a 64-bit BAR in slot 1 has no upper half.
        let bridge: Vec<_> = Bars::new([0, 0x4, 0, 0, 0, 0], 2).collect();
        assert!(matches!(bridge[1].1, Bar::Broken64 { .. }));
    }
}

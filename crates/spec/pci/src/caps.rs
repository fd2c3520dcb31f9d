//! Bounded walks over the capability list (from the header's pointer) and
//! the extended capability list (from 0x100).
//!
//! Each walk visits an offset at most once: at most 48 standard and 960
//! extended steps, whatever the bytes say. A malformed list ends the walk
//! with one `Err(WalkError)` item (a marked stop), after which the iterator
//! yields `None`.

/// Standard capability IDs (PCI Code and ID Assignment, §2).
pub mod cap_id {
    pub const NULL: u8 = 0x00;
    pub const PM: u8 = 0x01;
    pub const AGP: u8 = 0x02;
    pub const VPD: u8 = 0x03;
    pub const SLOT_ID: u8 = 0x04;
    pub const MSI: u8 = 0x05;
    pub const CHSWP: u8 = 0x06;
    pub const PCIX: u8 = 0x07;
    pub const HT: u8 = 0x08;
    pub const VENDOR: u8 = 0x09;
    pub const DEBUG: u8 = 0x0a;
    pub const CCRC: u8 = 0x0b;
    pub const HOTPLUG: u8 = 0x0c;
    pub const SSVID: u8 = 0x0d;
    pub const AGP3: u8 = 0x0e;
    pub const SECURE: u8 = 0x0f;
    pub const EXP: u8 = 0x10;
    pub const MSIX: u8 = 0x11;
    pub const SATA: u8 = 0x12;
    pub const AF: u8 = 0x13;
    pub const EA: u8 = 0x14;
}

/// Extended capability IDs (PCI Code and ID Assignment, §3).
pub mod ext_cap_id {
    pub const NULL: u16 = 0x00;
    pub const AER: u16 = 0x01;
    pub const VC: u16 = 0x02;
    pub const DSN: u16 = 0x03;
    pub const VC2: u16 = 0x09;
    pub const VENDOR: u16 = 0x0b;
    pub const ACS: u16 = 0x0d;
    pub const ARI: u16 = 0x0e;
    pub const ATS: u16 = 0x0f;
    pub const SRIOV: u16 = 0x10;
    pub const LTR: u16 = 0x18;
    pub const SECPCI: u16 = 0x19;
    pub const PASID: u16 = 0x1b;
    pub const L1PM: u16 = 0x1e;
    pub const DVSEC: u16 = 0x23;
}

/// Why a walk stopped early. Each variant carries the offending offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "stop", rename_all = "snake_case")]
pub enum WalkError {
    /// The list comes back to an offset it already visited.
    #[error("capability list loops back to {offset:#x}")]
    Looped {
        /// The offset visited twice.
        offset: u16,
    },
    /// A pointer leads into the header (below 0x40, or below 0x100 for
    /// the extended list).
    #[error("capability pointer {offset:#x} points into the header")]
    IntoHeader {
        /// The pointer.
        offset: u16,
    },
    /// A capability header lies past the end of the buffer (for example a
    /// 64-byte buffer read without privileges).
    #[error("capability at {offset:#x} lies past the end of the config space")]
    OutOfBounds {
        /// The pointer.
        offset: u16,
    },
    /// A capability with ID 0xff: the device returned all ones.
    #[error("capability at {offset:#x} has ID 0xff (list broken)")]
    Broken {
        /// Where the broken capability is.
        offset: u16,
    },
}

/// One entry of the standard capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Cap {
    /// Where the capability starts.
    pub offset: u8,
    /// Capability ID (see [`cap_id`]).
    pub id: u8,
    /// The next pointer (low two bits masked; 0 ends the list).
    pub next: u8,
}

/// Iterator over the standard capability list.
#[derive(Debug, Clone)]
pub struct CapIter<'a> {
    buf: &'a [u8],
    next: u8,
    visited: u64,
    done: bool,
}

impl<'a> CapIter<'a> {
    /// Walks `buf` from the pointer `start` (as read from the header).
    pub fn new(buf: &'a [u8], start: u8) -> Self {
        CapIter {
            buf,
            next: start & !3,
            visited: 0,
            done: false,
        }
    }

    fn stop(&mut self, e: WalkError) -> Option<Result<Cap, WalkError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for CapIter<'_> {
    type Item = Result<Cap, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next == 0 {
            self.done = true;
            return None;
        }
        let at = self.next;
        let offset = u16::from(at);
        if at < 0x40 {
            return self.stop(WalkError::IntoHeader { offset });
        }
        if usize::from(at) + 4 > self.buf.len() {
            return self.stop(WalkError::OutOfBounds { offset });
        }
        // Offsets are multiples of 4 below 256: one bit each in a u64.
        let bit = 1u64 << (at >> 2);
        if self.visited & bit != 0 {
            return self.stop(WalkError::Looped { offset });
        }
        self.visited |= bit;
        let id = self.buf[usize::from(at)];
        if id == 0xff {
            return self.stop(WalkError::Broken { offset });
        }
        let next = self.buf[usize::from(at) + 1] & !3;
        self.next = next;
        Some(Ok(Cap {
            offset: at,
            id,
            next,
        }))
    }
}

/// One entry of the extended capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExtCap {
    /// Where the capability starts (0x100–0xffc).
    pub offset: u16,
    /// Extended capability ID (see [`ext_cap_id`]).
    pub id: u16,
    /// Capability version (bits 16–19).
    pub version: u8,
    /// The next pointer (0 ends the list).
    pub next: u16,
}

/// Iterator over the extended capability list of a 4096-byte config space.
#[derive(Debug, Clone)]
pub struct ExtCapIter<'a> {
    buf: &'a [u8],
    next: u16,
    visited: [u64; 16],
    done: bool,
}

impl<'a> ExtCapIter<'a> {
    /// Walks `buf` from 0x100; empty if `buf` is shorter than 4096 bytes.
    pub fn new(buf: &'a [u8]) -> Self {
        ExtCapIter {
            buf,
            next: 0x100,
            visited: [0; 16],
            done: buf.len() < 4096,
        }
    }

    fn stop(&mut self, e: WalkError) -> Option<Result<ExtCap, WalkError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for ExtCapIter<'_> {
    type Item = Result<ExtCap, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next == 0 {
            self.done = true;
            return None;
        }
        let offset = self.next;
        if offset < 0x100 {
            return self.stop(WalkError::IntoHeader { offset });
        }
        let at = usize::from(offset);
        let Some(b) = self.buf.get(at..at + 4) else {
            return self.stop(WalkError::OutOfBounds { offset });
        };
        let header = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if header == 0 || header == u32::MAX {
            // No (more) extended capabilities.
            self.done = true;
            return None;
        }
        // Offsets are multiples of 4 below 4096: 1024 bits.
        let slot = at >> 2;
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if self.visited[word] & bit != 0 {
            return self.stop(WalkError::Looped { offset });
        }
        self.visited[word] |= bit;
        let next = ((header >> 20) as u16) & !3;
        self.next = next;
        Some(Ok(ExtCap {
            offset,
            id: header as u16,
            version: ((header >> 16) & 0xf) as u8,
            next,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn space() -> Vec<u8> {
        let mut b = vec![0u8; 256];
        b[0x06] = 0x10; // status: capability list
        b[0x34] = 0x40;
        b
    }

    #[test]
    fn walks_a_list() {
        let mut b = space();
        b[0x40] = cap_id::PM;
        b[0x41] = 0x50;
        b[0x50] = cap_id::MSI;
        b[0x51] = 0x00;
        let caps: Vec<_> = CapIter::new(&b, 0x40).collect();
        assert_eq!(
            caps,
            vec![
                Ok(Cap {
                    offset: 0x40,
                    id: 1,
                    next: 0x50
                }),
                Ok(Cap {
                    offset: 0x50,
                    id: 5,
                    next: 0
                })
            ]
        );
    }

    #[test]
    fn marked_stops() {
        let mut b = space();
        b[0x40] = 1;
        b[0x41] = 0x40; // points to itself
        let last = CapIter::new(&b, 0x40).last();
        assert_eq!(last, Some(Err(WalkError::Looped { offset: 0x40 })));

        b[0x41] = 0x10;
        let last = CapIter::new(&b, 0x40).last();
        assert_eq!(last, Some(Err(WalkError::IntoHeader { offset: 0x10 })));

        b[0x40] = 0xff;
        let last = CapIter::new(&b, 0x40).last();
        assert_eq!(last, Some(Err(WalkError::Broken { offset: 0x40 })));

        let short = &b[..64];
        let last = CapIter::new(short, 0x40).last();
        assert_eq!(last, Some(Err(WalkError::OutOfBounds { offset: 0x40 })));
    }

    #[test]
    fn ext_walk() {
        let mut b = vec![0u8; 4096];
        // AER at 0x100 -> DSN at 0x140 -> back to 0x100.
        b[0x100..0x104].copy_from_slice(&(0x1u32 | (1 << 16) | (0x140 << 20)).to_le_bytes());
        b[0x140..0x144].copy_from_slice(&(0x3u32 | (1 << 16) | (0x100 << 20)).to_le_bytes());
        let caps: Vec<_> = ExtCapIter::new(&b).collect();
        assert_eq!(caps.len(), 3);
        assert_eq!(caps[1].unwrap().id, ext_cap_id::DSN);
        assert_eq!(caps[2], Err(WalkError::Looped { offset: 0x100 }));
        // Next pointer into the header.
        b[0x140..0x144].copy_from_slice(&(0x3u32 | (0x80 << 20)).to_le_bytes());
        let last = ExtCapIter::new(&b).last();
        assert_eq!(last, Some(Err(WalkError::IntoHeader { offset: 0x80 })));
        // A 256-byte space has no extended list.
        assert_eq!(ExtCapIter::new(&b[..256]).count(), 0);
    }
}

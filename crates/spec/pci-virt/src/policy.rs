//! The per-bit policy: what a write does to each bit and where a read of it
//! comes from, kept as three masks per byte.

/// What a write does to a bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Writes leave the bit alone (a write that tries to change it is
    /// counted as denied).
    ReadOnly,
    /// Writes set the bit to the written value.
    ReadWrite,
    /// Writing 1 clears the bit; writing 0 leaves it alone. Writes never
    /// set it.
    Write1Clear,
}

/// Where a read of a bit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The private copy; writes the policy allows land there and are never
    /// forwarded.
    Virtual,
    /// The device (pass-through); writes the policy allows are forwarded
    /// and also recorded in the private copy, which is the owner's shadow
    /// of the device.
    Device,
    /// Nothing: the bit reads as 0 and is read-only, whatever the access.
    Hidden,
}

/// The policy of some bits: an access and a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// What a write does.
    pub access: Access,
    /// Where a read comes from.
    pub source: Source,
}

impl Rule {
    /// Reads as 0, read-only: absent.
    pub const HIDDEN: Rule = Rule {
        access: Access::ReadOnly,
        source: Source::Hidden,
    };

    /// A rule served from the private copy.
    pub const fn virt(access: Access) -> Rule {
        Rule {
            access,
            source: Source::Virtual,
        }
    }

    /// A pass-through rule.
    pub const fn device(access: Access) -> Rule {
        Rule {
            access,
            source: Source::Device,
        }
    }
}

/// The policy of a whole space: for each byte, the bits that are
/// writable, write-1-to-clear and virtual. A bit is read-only when it is
/// neither writable nor write-1-to-clear, and pass-through when it is not
/// virtual. Hidden bits are virtual and read-only with a copy of 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    write: Vec<u8>,
    w1c: Vec<u8>,
    virt: Vec<u8>,
}

impl Policy {
    /// A read-only policy of `len` bytes from `source` (`Hidden` counts
    /// as virtual; the caller zeroes the copy).
    pub(crate) fn new(len: usize, source: Source) -> Self {
        let v = if source == Source::Device { 0 } else { 0xff };
        Policy {
            write: vec![0; len],
            w1c: vec![0; len],
            virt: vec![v; len],
        }
    }

    /// Applies `rule` to the bits `mask` of byte `at` (in range).
    pub(crate) fn set(&mut self, at: usize, mask: u8, rule: Rule) {
        let access = if rule.source == Source::Hidden {
            Access::ReadOnly
        } else {
            rule.access
        };
        let (w, c) = match access {
            Access::ReadOnly => (0, 0),
            Access::ReadWrite => (mask, 0),
            Access::Write1Clear => (0, mask),
        };
        self.write[at] = (self.write[at] & !mask) | w;
        self.w1c[at] = (self.w1c[at] & !mask) | c;
        self.virt[at] = if rule.source == Source::Device {
            self.virt[at] & !mask
        } else {
            self.virt[at] | mask
        };
    }

    /// The writable bits of byte `at`.
    pub fn writable(&self, at: usize) -> u8 {
        self.write.get(at).copied().unwrap_or(0)
    }

    /// The write-1-to-clear bits of byte `at`.
    pub fn w1c(&self, at: usize) -> u8 {
        self.w1c.get(at).copied().unwrap_or(0)
    }

    /// The read-only bits of byte `at`.
    pub fn read_only(&self, at: usize) -> u8 {
        !(self.writable(at) | self.w1c(at))
    }

    /// The virtual bits of byte `at` (served from the private copy); the
    /// others pass through to the device. Bytes past the end are virtual.
    pub fn virtual_bits(&self, at: usize) -> u8 {
        self.virt.get(at).copied().unwrap_or(0xff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_exclusive() {
        let mut p = Policy::new(4, Source::Virtual);
        assert_eq!((p.read_only(0), p.virtual_bits(0)), (0xff, 0xff));
        p.set(0, 0x0f, Rule::device(Access::ReadWrite));
        p.set(0, 0x30, Rule::virt(Access::Write1Clear));
        assert_eq!(p.writable(0), 0x0f);
        assert_eq!(p.w1c(0), 0x30);
        assert_eq!(p.read_only(0), 0xc0);
        assert_eq!(p.virtual_bits(0), 0xf0);
        // A later rule replaces the earlier one bit by bit.
        p.set(0, 0x11, Rule::virt(Access::Write1Clear));
        assert_eq!((p.writable(0), p.w1c(0)), (0x0e, 0x31));
        p.set(0, 0xff, Rule::HIDDEN);
        assert_eq!((p.read_only(0), p.virtual_bits(0)), (0xff, 0xff));
        assert_eq!(Policy::new(1, Source::Device).virtual_bits(0), 0);
    }
}

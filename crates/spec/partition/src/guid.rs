//! GUIDs as GPT stores them: the first three fields little-endian, the rest as bytes.

use serde::{Serialize, Serializer};

/// A 16-byte GUID in on-disk order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID (an unused GPT entry's type).
    pub const ZERO: Guid = Guid([0; 16]);

    /// Parses the canonical text form `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (any case).
    pub fn parse(s: &str) -> Option<Guid> {
        let parts: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if parts.len() != 5 || parts.iter().zip(lens).any(|(p, l)| p.len() != l) {
            return None;
        }
        let hex: String = parts.concat();
        let mut be = [0u8; 16];
        for (i, b) in be.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        let mut g = be;
        g[0..4].reverse();
        g[4..6].reverse();
        g[6..8].reverse();
        Some(Guid(g))
    }

    /// Whether every byte is zero.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        for x in &b[10..16] {
            write!(f, "{x:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::Guid;
    use proptest::prelude::*;

    #[test]
    fn linux_filesystem_type() {
        let g = Guid::parse("0fc63daf-8483-4772-8e79-3d69d8477de4");
        assert_eq!(
            g.map(|g| g.0),
            Some([
                0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
                0x7d, 0xe4
            ])
        );
        assert_eq!(
            g.map(|g| g.to_string()).as_deref(),
            Some("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
        );
        assert_eq!(Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE"), None);
        assert_eq!(Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DEX"), None);
    }

    proptest! {
        #[test]
        fn text_round_trip(b in any::<[u8; 16]>()) {
            prop_assert_eq!(Guid::parse(&Guid(b).to_string()), Some(Guid(b)));
        }
    }
}

//! Permission strings (`r<domid>`, `w…`, `b…`, `n…`).
//!
//! A node's permission list starts with its owner, whose letter is also the
//! access every domain not listed gets; the owner itself always has full
//! access. Later entries grant specific domains specific access.

use crate::{parse_domid, Error};

/// Access granted by one permission entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermKind {
    /// `n`: no access.
    None,
    /// `r`: read only.
    Read,
    /// `w`: write only.
    Write,
    /// `b`: read and write.
    Both,
}

impl PermKind {
    /// The wire letter.
    pub fn letter(self) -> u8 {
        match self {
            PermKind::None => b'n',
            PermKind::Read => b'r',
            PermKind::Write => b'w',
            PermKind::Both => b'b',
        }
    }
    /// Whether this grants reading.
    pub fn can_read(self) -> bool {
        matches!(self, PermKind::Read | PermKind::Both)
    }
    /// Whether this grants writing.
    pub fn can_write(self) -> bool {
        matches!(self, PermKind::Write | PermKind::Both)
    }
}

/// One permission entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm {
    /// The access granted.
    pub kind: PermKind,
    /// The domain it applies to (for the first entry: the owner).
    pub domid: u16,
}

impl Perm {
    /// Parses `r5`, `b0`, ….
    pub fn parse(field: &[u8]) -> Result<Perm, Error> {
        let (&letter, digits) = field.split_first().ok_or(Error::BadPerm)?;
        let kind = match letter {
            b'n' => PermKind::None,
            b'r' => PermKind::Read,
            b'w' => PermKind::Write,
            b'b' => PermKind::Both,
            _ => return Err(Error::BadPerm),
        };
        let domid = parse_domid(digits).map_err(|_| Error::BadPerm)?;
        Ok(Perm { kind, domid })
    }

    /// The wire form without a nul.
    pub fn emit(&self) -> Vec<u8> {
        let mut v = vec![self.kind.letter()];
        v.extend_from_slice(self.domid.to_string().as_bytes());
        v
    }
}

impl core::fmt::Display for Perm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}{}", self.kind.letter() as char, self.domid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_emit() {
        let p = Perm::parse(b"b12").unwrap();
        assert_eq!(
            p,
            Perm {
                kind: PermKind::Both,
                domid: 12
            }
        );
        assert_eq!(p.emit(), b"b12");
        assert_eq!(p.to_string(), "b12");
        for bad in [&b""[..], b"b", b"x1", b"r-1", b"r65536", b"r1a"] {
            assert_eq!(Perm::parse(bad), Err(Error::BadPerm), "{bad:?}");
        }
        assert!(PermKind::Both.can_read() && PermKind::Both.can_write());
        assert!(!PermKind::Write.can_read() && !PermKind::None.can_write());
    }
}

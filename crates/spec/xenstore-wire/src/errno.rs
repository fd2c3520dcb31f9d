//! Errors as errno names (`xsd_errors` in xs_wire.h).

/// The errno values the protocol can carry, transmitted by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    /// Invalid argument.
    EINVAL,
    /// Permission denied.
    EACCES,
    /// Node exists.
    EEXIST,
    /// Is a directory.
    EISDIR,
    /// No such node (or transaction).
    ENOENT,
    /// Out of memory.
    ENOMEM,
    /// Quota exceeded.
    ENOSPC,
    /// I/O error.
    EIO,
    /// Not empty.
    ENOTEMPTY,
    /// Not implemented.
    ENOSYS,
    /// Read-only.
    EROFS,
    /// Busy.
    EBUSY,
    /// Transaction conflict: retry.
    EAGAIN,
    /// Already connected.
    EISCONN,
    /// Too big for one payload.
    E2BIG,
    /// Operation not permitted (e.g. changing a node's owner unprivileged).
    EPERM,
}

impl Errno {
    /// Every name, in xs_wire.h order.
    pub const ALL: [Errno; 16] = [
        Errno::EINVAL,
        Errno::EACCES,
        Errno::EEXIST,
        Errno::EISDIR,
        Errno::ENOENT,
        Errno::ENOMEM,
        Errno::ENOSPC,
        Errno::EIO,
        Errno::ENOTEMPTY,
        Errno::ENOSYS,
        Errno::EROFS,
        Errno::EBUSY,
        Errno::EAGAIN,
        Errno::EISCONN,
        Errno::E2BIG,
        Errno::EPERM,
    ];

    /// The name sent on the wire (without the trailing nul).
    pub fn as_str(self) -> &'static str {
        match self {
            Errno::EINVAL => "EINVAL",
            Errno::EACCES => "EACCES",
            Errno::EEXIST => "EEXIST",
            Errno::EISDIR => "EISDIR",
            Errno::ENOENT => "ENOENT",
            Errno::ENOMEM => "ENOMEM",
            Errno::ENOSPC => "ENOSPC",
            Errno::EIO => "EIO",
            Errno::ENOTEMPTY => "ENOTEMPTY",
            Errno::ENOSYS => "ENOSYS",
            Errno::EROFS => "EROFS",
            Errno::EBUSY => "EBUSY",
            Errno::EAGAIN => "EAGAIN",
            Errno::EISCONN => "EISCONN",
            Errno::E2BIG => "E2BIG",
            Errno::EPERM => "EPERM",
        }
    }

    /// Looks a name up (as received, without the nul).
    pub fn from_name(name: &[u8]) -> Option<Errno> {
        Errno::ALL
            .iter()
            .copied()
            .find(|e| e.as_str().as_bytes() == name)
    }

    /// The Linux errno number, for clients mapping names back to `errno`.
    pub fn code(self) -> i32 {
        match self {
            Errno::EPERM => 1,
            Errno::ENOENT => 2,
            Errno::EIO => 5,
            Errno::E2BIG => 7,
            Errno::EAGAIN => 11,
            Errno::ENOMEM => 12,
            Errno::EACCES => 13,
            Errno::EBUSY => 16,
            Errno::EEXIST => 17,
            Errno::EISDIR => 21,
            Errno::EINVAL => 22,
            Errno::ENOSPC => 28,
            Errno::EROFS => 30,
            Errno::ENOSYS => 38,
            Errno::ENOTEMPTY => 39,
            Errno::EISCONN => 106,
        }
    }

    /// The payload of an `XS_ERROR` reply: the name and a nul.
    pub fn payload(self) -> Vec<u8> {
        let mut v = self.as_str().as_bytes().to_vec();
        v.push(0);
        v
    }
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Errno::ALL {
            assert_eq!(Errno::from_name(e.as_str().as_bytes()), Some(e));
            assert_eq!(e.payload().last(), Some(&0));
        }
        assert_eq!(Errno::from_name(b"EWHAT"), None);
        assert_eq!(Errno::EAGAIN.code(), 11);
    }
}

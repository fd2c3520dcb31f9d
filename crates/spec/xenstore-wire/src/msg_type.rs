//! Message types (`enum xsd_sockmsg_type`).

/// Every message type of xs_wire.h. 20 (`XS_RESTRICT`) has been removed from
/// the protocol and is invalid; 0xffff (`XS_INVALID`) never is a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MsgType {
    /// `XS_CONTROL` (formerly `XS_DEBUG`): implementation-specific commands.
    Control = 0,
    /// List a node's children.
    Directory = 1,
    /// Read a node's value.
    Read = 2,
    /// Read a node's permissions.
    GetPerms = 3,
    /// Register a watch.
    Watch = 4,
    /// Remove a watch.
    Unwatch = 5,
    /// Start a transaction.
    TransactionStart = 6,
    /// Commit (`T`) or abort (`F`) a transaction.
    TransactionEnd = 7,
    /// Tell the store about a new domain.
    Introduce = 8,
    /// Forget a domain.
    Release = 9,
    /// A domain's home path.
    GetDomainPath = 10,
    /// Write a node's value, creating it and its parents.
    Write = 11,
    /// Create a node and its parents.
    Mkdir = 12,
    /// Remove a node and everything below it.
    Rm = 13,
    /// Set a node's permissions.
    SetPerms = 14,
    /// Unsolicited watch notification (daemon to client).
    WatchEvent = 15,
    /// Error reply (daemon to client).
    Error = 16,
    /// Whether a domain has been introduced.
    IsDomainIntroduced = 17,
    /// Re-arm @releaseDomain for a domain.
    Resume = 18,
    /// Let a domain act on behalf of another.
    SetTarget = 19,
    /// Drop the caller's watches and transactions.
    ResetWatches = 21,
    /// Part of a long children list.
    DirectoryPart = 22,
    /// Read the feature bitmap (of the store or a domain).
    GetFeature = 23,
    /// Set a domain's feature bitmap.
    SetFeature = 24,
    /// Read quota names or a quota value.
    GetQuota = 25,
    /// Set a quota value.
    SetQuota = 26,
}

impl MsgType {
    /// All types, in numeric order.
    pub const ALL: [MsgType; 26] = [
        MsgType::Control,
        MsgType::Directory,
        MsgType::Read,
        MsgType::GetPerms,
        MsgType::Watch,
        MsgType::Unwatch,
        MsgType::TransactionStart,
        MsgType::TransactionEnd,
        MsgType::Introduce,
        MsgType::Release,
        MsgType::GetDomainPath,
        MsgType::Write,
        MsgType::Mkdir,
        MsgType::Rm,
        MsgType::SetPerms,
        MsgType::WatchEvent,
        MsgType::Error,
        MsgType::IsDomainIntroduced,
        MsgType::Resume,
        MsgType::SetTarget,
        MsgType::ResetWatches,
        MsgType::DirectoryPart,
        MsgType::GetFeature,
        MsgType::SetFeature,
        MsgType::GetQuota,
        MsgType::SetQuota,
    ];

    /// Maps a raw type to a known one.
    pub fn from_u32(v: u32) -> Option<MsgType> {
        MsgType::ALL.iter().copied().find(|t| *t as u32 == v)
    }

    /// The name xenstored uses in its logs (`XS_` dropped).
    pub fn name(self) -> &'static str {
        match self {
            MsgType::Control => "CONTROL",
            MsgType::Directory => "DIRECTORY",
            MsgType::Read => "READ",
            MsgType::GetPerms => "GET_PERMS",
            MsgType::Watch => "WATCH",
            MsgType::Unwatch => "UNWATCH",
            MsgType::TransactionStart => "TRANSACTION_START",
            MsgType::TransactionEnd => "TRANSACTION_END",
            MsgType::Introduce => "INTRODUCE",
            MsgType::Release => "RELEASE",
            MsgType::GetDomainPath => "GET_DOMAIN_PATH",
            MsgType::Write => "WRITE",
            MsgType::Mkdir => "MKDIR",
            MsgType::Rm => "RM",
            MsgType::SetPerms => "SET_PERMS",
            MsgType::WatchEvent => "WATCH_EVENT",
            MsgType::Error => "ERROR",
            MsgType::IsDomainIntroduced => "IS_DOMAIN_INTRODUCED",
            MsgType::Resume => "RESUME",
            MsgType::SetTarget => "SET_TARGET",
            MsgType::ResetWatches => "RESET_WATCHES",
            MsgType::DirectoryPart => "DIRECTORY_PART",
            MsgType::GetFeature => "GET_FEATURE",
            MsgType::SetFeature => "SET_FEATURE",
            MsgType::GetQuota => "GET_QUOTA",
            MsgType::SetQuota => "SET_QUOTA",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_matches_xs_wire() {
        assert_eq!(MsgType::from_u32(2), Some(MsgType::Read));
        assert_eq!(MsgType::from_u32(11), Some(MsgType::Write));
        assert_eq!(MsgType::from_u32(16), Some(MsgType::Error));
        assert_eq!(MsgType::from_u32(20), None, "XS_RESTRICT was removed");
        assert_eq!(MsgType::from_u32(21), Some(MsgType::ResetWatches));
        assert_eq!(MsgType::from_u32(26), Some(MsgType::SetQuota));
        assert_eq!(MsgType::from_u32(27), None);
        assert_eq!(MsgType::from_u32(0xffff), None);
        for (i, t) in MsgType::ALL.iter().enumerate() {
            let want = if i < 20 { i } else { i + 1 };
            assert_eq!(*t as usize, want, "{}", t.name());
        }
    }
}

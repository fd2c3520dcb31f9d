//! Parse errors.

use crate::Errno;

/// Why a message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before the header or payload does.
    #[error("message truncated")]
    Truncated,
    /// The header announces more than `PAYLOAD_MAX` bytes.
    #[error("payload of {0} bytes exceeds the 4096-byte limit")]
    PayloadTooLarge(u32),
    /// The type is not one of xs_wire.h's (or is a reply-only type).
    #[error("unknown or unexpected message type {0}")]
    UnknownType(u32),
    /// A string field lacks its terminating nul.
    #[error("string not nul-terminated")]
    Unterminated,
    /// A required field is missing.
    #[error("missing field")]
    MissingField,
    /// More fields than the message type allows.
    #[error("unexpected extra field")]
    ExtraField,
    /// A path breaks the path rules.
    #[error("invalid path")]
    BadPath,
    /// A decimal number field is malformed or out of range.
    #[error("invalid number")]
    BadNumber,
    /// A permission string is malformed.
    #[error("invalid permission")]
    BadPerm,
    /// A field has a value outside its allowed set (e.g. `T`/`F`).
    #[error("invalid field value")]
    BadValue,
}

impl Error {
    /// The errno name to answer a peer with.
    pub fn errno(self) -> Errno {
        match self {
            Error::PayloadTooLarge(_) => Errno::E2BIG,
            Error::UnknownType(_) => Errno::EINVAL,
            _ => Errno::EINVAL,
        }
    }
}

//! The crate's error type.

/// What can be wrong with a config-space buffer or a structure inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is not 64, 256 or 4096 bytes long.
    #[error("config space of {0} bytes (expected 64, 256 or 4096)")]
    BadLength(usize),
    /// A structure runs past the end of the buffer.
    #[error("{what} at {offset:#x} runs past the end of {len}-byte config space")]
    Truncated {
        /// The structure.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// The buffer length.
        len: usize,
    },
    /// The capability at `offset` has another ID than the parser expects.
    #[error("capability at {offset:#x} has ID {found:#x}, expected {expected:#x}")]
    WrongId {
        /// Where the capability starts.
        offset: usize,
        /// The ID found there.
        found: u16,
        /// The ID the parser wanted.
        expected: u16,
    },
    /// A field holds a value the specification does not allow.
    #[error("{what} at {offset:#x} is malformed")]
    Malformed {
        /// The field.
        what: &'static str,
        /// Where the structure starts.
        offset: usize,
    },
}

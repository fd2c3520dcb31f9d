//! The vfio-user protocol (QEMU `docs/interop/vfio-user.rst`) as a spec crate:
//! no I/O, no `unsafe`.
//!
//! Every structure has a checked zero-copy view (`Header`, `DmaMap`, …,
//! declared with `view!` in `view.rs`) and a parsed representation (`…Repr`)
//! with `parse` (from a view) and `emit` (into a view). [`message`] ties them
//! together: [`Request::parse`]/[`Reply::parse`] take a command and a payload
//! and return a typed message, and `emit` writes one back.
//!
//! All integers are in host byte order, as the spec says (both peers share a
//! host). Everything a peer controls is bounded by the limits below: a parser
//! never allocates more than a small multiple of the bytes it was given.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod view;

pub mod device;
pub mod dma;
pub mod feature;
pub mod header;
pub mod message;
pub mod region;
pub mod version;

pub use device::*;
pub use dma::*;
pub use feature::*;
pub use header::*;
pub use message::*;
pub use region::*;
pub use version::*;

/// Largest data transfer (REGION/DMA READ/WRITE `count`) we send or accept:
/// the spec's default `max_data_xfer_size` (1 MiB).
pub const MAX_DATA_XFER_SIZE: u32 = 1 << 20;

/// Largest message (header included) we accept: one maximal data transfer
/// plus its fixed headers, with slack for the largest fixed structure.
pub const MAX_MESSAGE_SIZE: u32 = MAX_DATA_XFER_SIZE + 4096;

/// Most file descriptors we accept in one message (we advertise this as
/// `max_msg_fds`; the kernel's own SCM_RIGHTS limit is 253).
pub const MAX_MSG_FDS: u32 = 64;

/// Largest JSON version data we accept.
pub const MAX_VERSION_DATA: usize = 4096;

/// Most interrupts one SET_IRQS / IRQ type may cover (the MSI-X maximum).
pub const MAX_IRQS: u32 = 2048;

/// Most entries in one REGION_WRITE_MULTI.
pub const MAX_WRITE_MULTI: u64 = 1024;

/// Most region capabilities we follow in one region-info reply.
pub const MAX_REGION_CAPS: usize = 16;

/// Most sparse-mmap areas in one region / sub-regions in an IO_FDS reply.
pub const MAX_AREAS: u32 = 256;

/// Errno values used in error replies (Linux numbering, as the spec says).
pub mod errno {
    pub const EPERM: u32 = 1;
    pub const ENOENT: u32 = 2;
    pub const EIO: u32 = 5;
    pub const E2BIG: u32 = 7;
    pub const EBADF: u32 = 9;
    pub const ENOMEM: u32 = 12;
    pub const EFAULT: u32 = 14;
    pub const EBUSY: u32 = 16;
    pub const EEXIST: u32 = 17;
    pub const EINVAL: u32 = 22;
    pub const ENOSPC: u32 = 28;
    pub const ERANGE: u32 = 34;
    pub const ENOSYS: u32 = 38;
    pub const EOPNOTSUPP: u32 = 95;
}

/// Everything that can be wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("message truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("message size {size} out of range ({min}..={max})")]
    BadSize { size: u64, min: u64, max: u64 },
    #[error("unknown command {0}")]
    UnknownCommand(u16),
    #[error("command {0} is not valid in this direction")]
    WrongDirection(u16),
    #[error("bad message type {0} in header flags")]
    BadType(u32),
    #[error("field {field} has invalid value {value:#x}")]
    Invalid { field: &'static str, value: u64 },
    #[error("{what} count {count} exceeds the limit {limit}")]
    TooMany {
        what: &'static str,
        count: u64,
        limit: u64,
    },
    #[error("{0} bytes of trailing data")]
    Trailing(usize),
    #[error("address range {addr:#x}+{size:#x} overflows")]
    Overflow { addr: u64, size: u64 },
    #[error("bad version data: {0}")]
    VersionData(String),
}

impl Error {
    /// The errno to put in an error reply for a request that failed to parse.
    pub fn errno(&self) -> u32 {
        match self {
            Error::UnknownCommand(_) | Error::WrongDirection(_) => errno::ENOSYS,
            Error::BadSize { .. } | Error::TooMany { .. } => errno::E2BIG,
            Error::Overflow { .. } => errno::ERANGE,
            _ => errno::EINVAL,
        }
    }
}

/// Result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;

/// Fail with [`Error::TooMany`] when `count > limit`.
pub(crate) fn bound(what: &'static str, count: u64, limit: u64) -> Result<()> {
    if count > limit {
        Err(Error::TooMany { what, count, limit })
    } else {
        Ok(())
    }
}

/// `addr + size` without overflow, or [`Error::Overflow`].
pub fn range_end(addr: u64, size: u64) -> Result<u64> {
    addr.checked_add(size).ok_or(Error::Overflow { addr, size })
}

/// Fail with [`Error::Truncated`] unless `buf` has at least `need` bytes.
pub(crate) fn need(buf: &[u8], need: usize) -> Result<()> {
    if buf.len() < need {
        Err(Error::Truncated {
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

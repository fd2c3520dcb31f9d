//! Parsed representations of the capabilities drivers and the broker use.
//!
//! Every `parse` takes the whole config-space bytes and the capability's
//! offset, checks the capability ID and that the structure fits, and
//! copies the fields out; `emit` writes the writable fields back.

mod aer;
mod msi;
mod msix;
mod pcie;
mod pm;
pub mod regs;
mod vendor;

pub use aer::{AerRepr, DsnRepr};
pub use msi::MsiRepr;
pub use msix::{MsixEntry, MsixRepr};
pub use pcie::{PcieLink, PciePortType, PcieRepr};
pub use pm::PmRepr;
pub use vendor::{VirtioCapRepr, VirtioCfgType};

use crate::Error;

/// The `len` bytes at `offset`, or [`Error::Truncated`].
pub(crate) fn field<'a>(
    buf: &'a [u8],
    offset: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Error> {
    offset
        .checked_add(len)
        .and_then(|end| buf.get(offset..end))
        .ok_or(Error::Truncated {
            what,
            offset,
            len: buf.len(),
        })
}

/// Mutable variant of [`field`].
pub(crate) fn field_mut<'a>(
    buf: &'a mut [u8],
    offset: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a mut [u8], Error> {
    let total = buf.len();
    offset
        .checked_add(len)
        .and_then(|end| buf.get_mut(offset..end))
        .ok_or(Error::Truncated {
            what,
            offset,
            len: total,
        })
}

/// Checks that the standard capability at `offset` has ID `id`.
pub(crate) fn check_id(buf: &[u8], offset: usize, id: u8) -> Result<(), Error> {
    let found = field(buf, offset, 2, "capability header")?[0];
    if found != id {
        return Err(Error::WrongId {
            offset,
            found: found.into(),
            expected: id.into(),
        });
    }
    Ok(())
}

/// Checks that the extended capability at `offset` has ID `id`.
pub(crate) fn check_ext_id(buf: &[u8], offset: usize, id: u16) -> Result<(), Error> {
    let found = le16(field(buf, offset, 4, "extended capability header")?, 0);
    if found != id {
        return Err(Error::WrongId {
            offset,
            found,
            expected: id,
        });
    }
    Ok(())
}

/// Little-endian fields of a slice already checked to be long enough.
pub(crate) use le_field::{u16 as le16, u32 as le32};

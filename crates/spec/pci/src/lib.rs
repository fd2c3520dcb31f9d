//! PCI configuration space as a spec crate: no I/O, no `unsafe`.
//!
//! In the style of smoltcp's `wire/` modules: [`ConfigSpace::new_checked`]
//! wraps a 64-, 256- or 4096-byte buffer without copying, accessors read
//! fields in place, and parsed representations (`*Repr`) carry the decoded
//! values of the structures a driver or broker needs: [`Bar`]s, the
//! capability lists ([`CapIter`], [`ExtCapIter`]) and the capabilities
//! [`PmRepr`], [`MsiRepr`], [`MsixRepr`], [`PcieRepr`], [`VirtioCapRepr`],
//! [`AerRepr`] and [`DsnRepr`].
//!
//! Walks over capability lists are bounded: every offset is visited at most
//! once, so a looping or hostile list ends with a marked stop
//! ([`WalkError`]), never a panic or an endless walk.
//!
//! pciutils-compatible listings (pci.ids names, dumps, lspci's formats)
//! live in the `pci-lspci` crate, so drivers do not link them.
#![forbid(unsafe_code)]

mod bar;
mod cap;
mod caps;
mod config;
mod error;

pub use bar::{bar_bits, Bar, Bars, MemKind};
pub use cap::regs as cap_reg;
pub use cap::{
    AerRepr, DsnRepr, MsiRepr, MsixEntry, MsixRepr, PcieLink, PciePortType, PcieRepr, PmRepr,
    VirtioCapRepr, VirtioCfgType,
};
pub use caps::{cap_id, ext_cap_id, Cap, CapIter, ExtCap, ExtCapIter, WalkError};
pub use config::{command, reg, status, Address, AddressError, ConfigSpace, HeaderType};
pub use error::Error;

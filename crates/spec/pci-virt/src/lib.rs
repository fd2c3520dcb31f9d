//! One virtual PCI configuration space, as a spec crate: no I/O, no
//! `unsafe`.
//!
//! A [`VirtualConfig`] is a private copy of a config space (256 or 4096
//! bytes) plus a policy for every bit ([`Rule`]: read-only, read-write or
//! write-1-to-clear; served from the copy, passed through to the device, or
//! hidden), BAR sizing, and handlers for the command register, BARs, the
//! expansion ROM and the PM, MSI, MSI-X and PCI Express capabilities. It is
//! the one component behind both
//!
//! - a config-space **firewall** ([`VirtualConfig::firewall`]): a virtual
//!   space over a real device's config. Reads pass through with per-bit
//!   overlays; writes are filtered, and a [`WriteOutcome`] says what to
//!   [`Forward`] to the device, what was denied or virtualised, and which
//!   [`Event`]s the owner must act on. Only allow-listed capabilities stay
//!   in the (re-linked) capability lists; and
//! - **device models** ([`ModelBuilder`]): a fully emulated config space
//!   with BARs and capabilities laid out by the builder.
//!
//! Nothing here does I/O: the owner reads the device, hands the bytes to
//! [`VirtualConfig::read`], performs the forwarded writes and acts on the
//! events. See `docs/virt-config.md` for the policy model.
#![forbid(unsafe_code)]

mod bar;
mod builder;
mod chain;
mod firewall;
pub mod fuzzing;
mod handler;
mod policy;
mod rules;
mod space;

pub use builder::{Ids, ModelBuilder};
pub use chain::{filter_chain, Chain, Kept};
pub use firewall::FirewallPolicy;
pub use policy::{Access, Policy, Rule, Source};
pub use space::{Event, Forward, VirtualConfig, WriteOutcome};

/// The two config-space sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 256 bytes: conventional PCI.
    Conventional,
    /// 4096 bytes: PCI Express extended config space.
    Extended,
}

impl Size {
    /// The length in bytes.
    pub fn len(self) -> usize {
        match self {
            Size::Conventional => 256,
            Size::Extended => 4096,
        }
    }

    /// Never empty.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// What can go wrong building or accessing a virtual config space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An access that is not 1, 2 or 4 bytes long.
    #[error("access of {len} bytes (1, 2 or 4 expected)")]
    BadWidth {
        /// The access length.
        len: usize,
    },
    /// An access or rule reaching past the end of the space.
    #[error("{len} bytes at {offset:#x} run past the end of the {size}-byte config space")]
    OutOfRange {
        /// Where the access starts.
        offset: usize,
        /// Its length.
        len: usize,
        /// The space's size.
        size: usize,
    },
    /// A capability that cannot be placed where it was asked for.
    #[error("{what} at {offset:#x}: {why}")]
    Placement {
        /// The capability.
        what: &'static str,
        /// The requested offset.
        offset: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A BAR or expansion ROM that cannot be emulated as described.
    #[error("BAR {index}: {why}")]
    Bar {
        /// The BAR slot (6 for the expansion ROM).
        index: u8,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The device's config space is not 256 or 4096 bytes long.
    #[error("device config space of {0} bytes (256 or 4096 expected)")]
    DeviceSize(usize),
    /// The firewall supports type 0 (endpoint) headers only.
    #[error("header type {0:#04x} is not supported (type 0 endpoints only)")]
    Header(u8),
}

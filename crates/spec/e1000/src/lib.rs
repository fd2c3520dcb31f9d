//! The Intel 82574L ("e1000e") as a spec crate: register offsets and bit
//! layouts, interrupt causes, the EEPROM read register, the interrupt vector
//! allocation register, receive-address and multicast-table encodings, the
//! statistics counters, and the legacy/extended receive and legacy transmit
//! descriptors as checked zero-copy views plus parsed representations.
//!
//! No I/O and no `unsafe`: a driver reads and writes the registers through its
//! own BAR accessors and hands descriptor bytes from DMA memory to the views
//! here. Facts come from the 82574 datasheet and were checked against QEMU's
//! `e1000e` model, which is what the tests run against; where the model and
//! the datasheet differ it is said at the item.
//!
//! Register side effects that matter to a driver:
//! - **write-1-to-clear**: writing ICR clears the cause bits written as 1
//!   (an acknowledgement); IMC clears IMS bits written as 1; writing IMS sets
//!   bits (it never clears them).
//! - **read-to-clear**: reading ICR clears it on the datasheet's terms (see
//!   [`regs::ICR`]); the statistics counters clear when read, the 64-bit ones
//!   when their high half is read ([`stats`]).
//! - **self-clearing**: CTRL.RST and CTRL.PHY_RST.
#![forbid(unsafe_code)]

pub mod desc;
pub mod regs;
pub mod ring;
pub mod stats;

mod addr;
mod fuzz;

pub use addr::{mac_from_eeprom_words, mac_from_ral_rah, mta_hash, ral_rah_from_mac, MacAddress};
pub use desc::{RxDesc, RxDescRepr, RxExtDesc, RxExtDescRepr, TxDesc, TxDescRepr, DESC_LEN};
pub use fuzz::check_descriptor_bytes;

/// Why bytes could not be viewed or parsed as an e1000 structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the structure.
    #[error("buffer of {got} bytes is shorter than the {need}-byte {what}")]
    Truncated {
        /// What was being viewed.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// A transmit descriptor is not in the legacy format (DEXT set: a context
    /// or extended data descriptor, which this crate does not model).
    #[error("transmit descriptor is an extended (DEXT) descriptor, not a legacy one")]
    NotLegacy,
    /// An interrupt vector number the 82574 does not have (it has 5 MSI-X
    /// vectors, 0..=4).
    #[error("MSI-X vector {0} out of range (the 82574 has vectors 0..=4)")]
    BadVector(u8),
    /// An EEPROM word address that does not fit the EERD address field.
    #[error("EEPROM word address {0:#x} does not fit EERD's 14-bit address field")]
    BadEepromAddress(u16),
}

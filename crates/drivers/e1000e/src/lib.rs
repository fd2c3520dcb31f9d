//! A user-space driver for the Intel 82574L ("e1000e") NIC on the pcibox
//! kit, plus a smoltcp [`phy::Device`](smoltcp::phy::Device) over it and
//! DHCPv4 and ICMP echo built from smoltcp sockets.
//!
//! - [`E1000e::open`] checks the IDs, resets the device, reads the MAC
//!   (RAL0/RAH0, else the EEPROM), sets up the receive and transmit rings
//!   (descriptors in one DMA buffer, one pool buffer per slot) and
//!   interrupts: MSI-X (receive, transmit and other causes on their own
//!   vectors, re-armed through IMS after each interrupt), INTx (EOI through
//!   the kit's unmask) or polling.
//! - The frame interface: [`E1000e::rx`] lends each received frame to a
//!   closure, [`E1000e::tx`] lends a frame to fill in place (`None` when the
//!   ring is full, never a sleep), [`E1000e::wait_for`] sleeps until a frame
//!   or a transmit slot is there; no allocation per frame.
//!   [`E1000e::receive_batch`] / [`E1000e::transmit_batch`] move a batch of
//!   frames per call with one tail-register write.
//! - [`E1000e::quiesce`] (also run on drop) masks and stops the device and
//!   waits out QEMU's interrupt throttling before MSI-X is disabled.
//! - [`phy`]: [`phy::NetDevice`], smoltcp's `phy::Device` as a thin adapter
//!   over the frame interface.
//! - [`net`]: [`net::dhcp`], [`net::ping`].
//! - [`bench`]: the transmit/receive batch benchmark over MAC loopback.
//!
//! See `docs/e1000e.md`.

pub mod bench;
mod error;
mod frames;
pub mod net;
mod nic;
pub mod phy;
mod rings;
mod stats;

pub use e1000_spec::MacAddress;
pub use error::{Error, Result};
pub use frames::{Ready, Rx, Tx};
pub use nic::{
    Config, E1000e, IrqMode, IrqPreference, Wake, DEVICE_82574L, QUIESCE_WAIT, VENDOR_INTEL,
};
pub use rings::{RxBatch, BUF_SIZE};
pub use stats::Stats;

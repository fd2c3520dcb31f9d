//! The pcibox driver kit: the interface every driver uses and every backend
//! implements — the four groups of the rump kernel PCI hypercalls (docs/architecture.md).
//!
//! - [`Backend`]: the public, object-safe trait a way of reaching a device
//!   implements (Linux VFIO in `pcibox-vfio`, the vfio-user client, models).
//! - [`Device`]: what a driver holds. Config space
//!   ([`Device::config_read32`] …, offsets checked), regions
//!   ([`Device::region`]: mapped where allowed, read/write otherwise,
//!   volatile 8–64-bit, [`doorbell_fence`]), interrupts
//!   ([`Device::enable_interrupts`]: eventfd-backed [`Vector`]s with wait,
//!   poll, fd, count, mask, and unmask as INTx's end-of-interrupt), DMA
//!   ([`Device::alloc_dma`], [`Device::map_memfd`], [`Device::map_raw`],
//!   [`Device::dma_pool`]; the device sees IOVAs only), [`Device::reset`],
//!   and teardown on drop (interrupts off, bus master off, DMA unmapped).
//! - [`DeviceControl`]: the privileged handle of whoever opened the device
//!   ([`Device::with_control`]): the raw backend, trusted quiescing, and
//!   caller-placed [`DmaWindow`]s in the device's one IOVA space.
//!
//! See `docs/kit.md`.

mod backend;
mod config;
mod device;
mod dma;
mod error;
mod iova;
mod irq;
mod mmap;
mod raw;
mod region;
mod window;

pub use backend::{Backend, DmaMemory, IrqInfo, IrqKind, RegionInfo, ROM_REGION};
pub use device::{
    Device, DeviceControl, COMMAND, COMMAND_BUS_MASTER, COMMAND_INTX_DISABLE, COMMAND_MEMORY,
};
pub use dma::{DmaBuffer, DmaPool, DmaSlice, PoolBuffer};
pub use error::{causes, BackendError, Chain, Error, Result};
pub use iova::{IovaAllocator, IOVA_FLOOR};
pub use irq::{Interrupts, Vector};
pub use mmap::{volatile_copy_in, volatile_copy_out, Width};
pub use raw::DmaMapping;
pub use region::{doorbell_fence, Region};
pub use window::DmaWindow;

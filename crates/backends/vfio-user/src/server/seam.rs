//! The session's path to its device: the seam a config-space firewall
//! wraps.
//!
//! Everything a client's requests make the device do goes through one
//! [`SessionDevice`]: config space, regions, interrupt setup and masks, DMA
//! windows, reset. [`DirectDevice`] forwards straight to the device (the
//! kit's books for interrupts and DMA windows, the backend for the rest); a
//! firewall implements the trait over another `SessionDevice` — usually the
//! direct one — and decides what passes and what the client sees.
//!
//! What never passes the seam: releases (disabling interrupts, dropping a
//! window — a wrapper may refuse what a client asks for, but can never keep
//! the device reaching eventfds or memory the client let go) and the
//! trusted teardown when the session ends (interrupts off, bus mastering
//! off, DMA dropped, reset), which uses the kit's privileged handle on the
//! device itself.

use pcibox_kit::{
    Backend, Device, DeviceControl, DmaWindow, Interrupts, IrqInfo, IrqKind, RegionInfo, Result,
    Vector,
};
use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

/// What one client session may make its device do. Object safe,
/// `Send + Sync`.
///
/// The session checks every argument first, so an implementation is only
/// called the way the kit's [`Backend`] contract allows: config widths
/// 1/2/4 inside [`SessionDevice::config_len`], region widths 1/2/4/8
/// naturally aligned inside the region, windows page aligned. Errors go
/// back to the client as an errno (`Unsupported` → `EOPNOTSUPP`,
/// `IovaRange` → `ERANGE`, `IovaInUse` → `EEXIST`, most others `EIO`).
pub trait SessionDevice: Send + Sync + fmt::Debug {
    /// The size of config space the client sees (256 or 4096).
    fn config_len(&self) -> usize;
    /// The client reads config space: 1, 2 or 4 bytes at `offset`.
    fn config_read(&self, offset: usize, buf: &mut [u8]) -> Result<()>;
    /// The client writes config space: 1, 2 or 4 bytes at `offset`.
    fn config_write(&self, offset: usize, data: &[u8]) -> Result<()>;
    /// Region `index` (0–5 BARs, 6 ROM) as the client sees it; `None`
    /// hides it.
    fn region_info(&self, index: u32) -> Result<Option<RegionInfo>>;
    /// The client reads a region: 1, 2, 4 or 8 bytes at `offset`.
    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// The client writes a region: 1, 2, 4 or 8 bytes at `offset`.
    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<()>;
    /// The file behind a mappable region, offered to the client only under
    /// the server's sharing policy (`ServerOptions::share_mappings`).
    fn region_mmap_fd(&self, index: u32) -> Result<BorrowedFd<'_>>;
    /// Describes interrupt kind `kind`.
    fn irq_info(&self, kind: IrqKind) -> Result<IrqInfo>;
    /// Enables one vector of `kind` per eventfd (the client's, gaps filled
    /// with private ones). Only one kind is enabled at a time.
    fn enable_interrupts(&self, kind: IrqKind, fds: Vec<OwnedFd>) -> Result<Interrupts>;
    /// Masks or unmasks one vector of the session's interrupts (unmask of
    /// INTx is its end of interrupt).
    fn set_masked(&self, vector: &Vector, masked: bool) -> Result<()>;
    /// Reserves a DMA window at the client's IOVA, in the device's one IOVA
    /// space (the session backs it with the client's file, if any).
    fn reserve_window(&self, iova: u64, len: u64) -> Result<DmaWindow>;
    /// Resets the device at the client's request.
    fn reset(&self) -> Result<()>;
}

/// The direct path: the client's requests go to the device unfiltered.
/// What a firewall wraps; cheap to clone.
#[derive(Debug, Clone)]
pub struct DirectDevice {
    device: Arc<Device>,
    control: DeviceControl,
}

impl DirectDevice {
    pub(crate) fn new(device: Arc<Device>, control: DeviceControl) -> DirectDevice {
        DirectDevice { device, control }
    }

    fn backend(&self) -> &dyn Backend {
        self.control.backend()
    }
}

impl SessionDevice for DirectDevice {
    fn config_len(&self) -> usize {
        self.backend().config_len()
    }
    fn config_read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.backend().config_read(offset, buf)
    }
    fn config_write(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.backend().config_write(offset, data)
    }
    fn region_info(&self, index: u32) -> Result<Option<RegionInfo>> {
        self.backend().region_info(index)
    }
    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.backend().region_read(index, offset, buf)
    }
    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.backend().region_write(index, offset, data)
    }
    fn region_mmap_fd(&self, index: u32) -> Result<BorrowedFd<'_>> {
        self.backend().region_mmap_fd(index)
    }
    fn irq_info(&self, kind: IrqKind) -> Result<IrqInfo> {
        self.device.irq_info(kind)
    }
    fn enable_interrupts(&self, kind: IrqKind, fds: Vec<OwnedFd>) -> Result<Interrupts> {
        self.device.enable_interrupts_with(kind, fds)
    }
    fn set_masked(&self, vector: &Vector, masked: bool) -> Result<()> {
        if masked {
            vector.mask()
        } else {
            vector.unmask()
        }
    }
    fn reserve_window(&self, iova: u64, len: u64) -> Result<DmaWindow> {
        self.control.reserve_window(iova, len)
    }
    fn reset(&self) -> Result<()> {
        self.device.reset()
    }
}

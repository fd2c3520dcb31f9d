//! The [`DeviceModel`] trait: a PCI device as the device sees it, and the
//! plain data it describes itself with.

use crate::error::Result;
use crate::memory::RegionMemory;
use pci_virt::{Event, VirtualConfig};
use pcibox_kit::IrqKind;
use std::fmt;
use std::ops::Range;

/// One region (BAR 0–5, or 6 for the expansion ROM) of a model.
#[derive(Debug, Clone)]
pub struct ModelRegion {
    /// The region index.
    pub index: u32,
    /// Size in bytes.
    pub size: u64,
    /// An I/O-port BAR rather than memory (never mapped).
    pub io_port: bool,
    /// Memory behind the region that the driver may map, if any.
    pub memory: Option<RegionMemory>,
    /// The areas of `memory` (offsets into the region) the driver may map;
    /// accesses there never reach the model. Everything else is trapped:
    /// [`DeviceModel::bar_read`] / [`DeviceModel::bar_write`].
    pub mappable: Vec<Range<u64>>,
}

impl ModelRegion {
    /// A region of `size` bytes whose every access is trapped (registers,
    /// doorbells).
    pub fn trapped(index: u32, size: u64) -> Self {
        ModelRegion {
            index,
            size,
            io_port: false,
            memory: None,
            mappable: Vec::new(),
        }
    }

    /// A region backed by `memory` (its size), of which the `mappable`
    /// areas may be mapped by the driver; the rest is trapped.
    pub fn memory(index: u32, memory: RegionMemory, mappable: Vec<Range<u64>>) -> Self {
        ModelRegion {
            index,
            size: memory.size(),
            io_port: false,
            memory: Some(memory),
            mappable,
        }
    }
}

/// How many vectors of each interrupt type a model offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IrqCounts {
    /// INTx (0 or 1).
    pub intx: u32,
    /// MSI (up to 32).
    pub msi: u32,
    /// MSI-X (up to 2048).
    pub msix: u32,
}

impl IrqCounts {
    /// The count for `kind`.
    pub fn get(&self, kind: IrqKind) -> u32 {
        match kind {
            IrqKind::Intx => self.intx,
            IrqKind::Msi => self.msi,
            IrqKind::Msix => self.msix,
        }
    }

    /// Sets the count for `kind`.
    pub fn set(&mut self, kind: IrqKind, count: u32) {
        match kind {
            IrqKind::Intx => self.intx = count,
            IrqKind::Msi => self.msi = count,
            IrqKind::Msix => self.msix = count,
        }
    }
}

/// A PCI device as the device sees it: what it does when a driver reads or
/// writes its config space or a trapped part of a BAR, and when it is reset.
/// [`crate::ModelBackend`] turns any model into a kit
/// [`pcibox_kit::Backend`].
///
/// A model owns its config space as a [`pci_virt::VirtualConfig`] (usually
/// built with [`pci_virt::ModelBuilder`]): the backend serves reads from it
/// and passes writes through its policy, then hands the model each
/// [`Event`] the write raised. A model reaches driver memory and raises
/// interrupts through the [`crate::DmaSpace`] and [`crate::IrqSink`] it was
/// given when it was built ([`crate::ModelBackend::build`]), never through
/// whoever serves it.
///
/// The backend serialises every call (one lock around the model) and
/// checks arguments first: config accesses are 1, 2 or 4 bytes inside the
/// space; BAR accesses are 1, 2, 4 or 8 bytes inside a region the model
/// declared — possibly inside a mappable area too, since a driver may
/// choose the trapped path for any offset (the kit's `region_unmapped`, a
/// vfio-user client without shared mappings).
pub trait DeviceModel: Send + fmt::Debug + 'static {
    /// The config space.
    fn config(&self) -> &VirtualConfig;

    /// The config space, for writes.
    fn config_mut(&mut self) -> &mut VirtualConfig;

    /// A config write raised `event` (BAR moved, command changed, MSI/MSI-X
    /// control, power state, FLR). Called once per event, in register
    /// order, after the write landed in [`DeviceModel::config`]. After
    /// [`Event::FlrRequested`] the backend also calls
    /// [`DeviceModel::reset`]. By default nothing happens.
    fn config_event(&mut self, event: &Event) {
        let _ = event;
    }

    /// The regions, read once when the backend is built: a device's BARs
    /// do not change.
    fn regions(&self) -> Vec<ModelRegion>;

    /// The interrupt vectors offered, read once when the backend is built.
    fn irqs(&self) -> IrqCounts;

    /// A trapped read of `buf.len()` bytes of region `index` at `offset`.
    fn bar_read(&mut self, index: u32, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// A trapped write of `data` to region `index` at `offset`. This is the
    /// doorbell hook: a model acts on the write here (reads descriptors
    /// through its DMA space, raises interrupts), before the driver's write
    /// returns.
    fn bar_write(&mut self, index: u32, offset: u64, data: &[u8]) -> Result<()>;

    /// A function reset ([`pcibox_kit::Backend::reset`] or FLR): device
    /// registers go back to their reset values. Like Linux VFIO, which
    /// saves and restores config space around a reset, the backend leaves
    /// the config space, the DMA windows and the enabled interrupts alone.
    fn reset(&mut self);
}

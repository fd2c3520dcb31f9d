//! The test fake: a [`ModelBackend`] of [`FakeModel`], a device with no
//! behaviour of its own, for tests of the kit and of what is built on it.
//!
//! Regions are memfds ([`RegionMemory`]), so the mapped and trapped paths
//! see the same bytes. Config space is a scratch space: every byte but the
//! vendor and device IDs is read-write, so tests can lay out capability
//! lists (even broken ones) by writing them. The test keeps a clone of the
//! [`Fake`] to act as the device: raise interrupts
//! ([`trigger`](ModelBackend::trigger)), do DMA (which fails — an "IOMMU
//! fault" — at IOVAs not mapped), and inspect what the kit did (mappings,
//! enabled interrupts, resets).

use crate::backend::ModelBackend;
use crate::error::{Error, Result};
use crate::memory::RegionMemory;
use crate::model::{DeviceModel, IrqCounts, ModelRegion};
use pci_virt::{Access, Ids, ModelBuilder, Rule, Size, VirtualConfig};
use pcibox_kit::IrqKind;
use std::ops::Range;

/// The fake device. Clones share state.
pub type Fake = ModelBackend<FakeModel>;

/// The model behind [`Fake`]: scratch config space, memory regions,
/// interrupt counts, and counters of resets and trapped accesses.
#[derive(Debug)]
pub struct FakeModel {
    config: VirtualConfig,
    regions: Vec<ModelRegion>,
    irqs: IrqCounts,
    resets: u64,
    traps: u64,
}

impl FakeModel {
    fn new(vendor: u16, device: u16) -> Self {
        let ids = Ids {
            vendor,
            device,
            ..Ids::default()
        };
        let mut config = ModelBuilder::new(Size::Conventional, &ids).build();
        for at in (4..config.len()).step_by(4) {
            // In range and 4 wide by construction: cannot fail.
            let _ = config.set_rule(at, 4, u32::MAX, Rule::virt(Access::ReadWrite));
        }
        FakeModel {
            config,
            regions: Vec::new(),
            irqs: IrqCounts::default(),
            resets: 0,
            traps: 0,
        }
    }

    fn memory(&self, index: u32) -> Result<&RegionMemory> {
        self.regions
            .iter()
            .find(|r| r.index == index)
            .and_then(|r| r.memory.as_ref())
            .ok_or(Error::Region {
                index,
                offset: 0,
                len: 0,
                why: "no such region",
            })
    }
}

impl DeviceModel for FakeModel {
    fn config(&self) -> &VirtualConfig {
        &self.config
    }

    fn config_mut(&mut self) -> &mut VirtualConfig {
        &mut self.config
    }

    fn regions(&self) -> Vec<ModelRegion> {
        self.regions.clone()
    }

    fn irqs(&self) -> IrqCounts {
        self.irqs
    }

    fn bar_read(&mut self, index: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.traps += 1;
        self.memory(index)?.read(offset, buf)
    }

    fn bar_write(&mut self, index: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.traps += 1;
        self.memory(index)?.write(offset, data)
    }

    fn reset(&mut self) {
        self.resets += 1;
    }
}

impl ModelBackend<FakeModel> {
    /// A device with the given IDs, 256 bytes of config space, no regions
    /// and no interrupts.
    pub fn new(vendor: u16, device: u16) -> Self {
        ModelBackend::build(format!("fake:{vendor:04x}:{device:04x}"), |_| {
            FakeModel::new(vendor, device)
        })
    }

    /// Adds region `index` of `size` bytes of memory whose `mappable` parts
    /// may be mapped. Call before cloning.
    ///
    /// # Panics
    /// If the memfd cannot be made, or the fake was cloned.
    pub fn with_region(self, index: u32, size: u64, mappable: Vec<Range<u64>>) -> Self {
        let mem = RegionMemory::new("fake-region", size)
            .unwrap_or_else(|e| panic!("fake region memory: {e}"));
        self.reconfigure(|m| m.regions.push(ModelRegion::memory(index, mem, mappable)))
    }

    /// Offers `count` vectors of `kind`. Call before cloning.
    ///
    /// # Panics
    /// If the fake was cloned.
    pub fn with_irqs(self, kind: IrqKind, count: u32) -> Self {
        self.reconfigure(|m| m.irqs.set(kind, count))
    }

    /// Device side: writes region memory directly (like the device changing
    /// a register).
    ///
    /// # Panics
    /// If region `index` does not exist or the bytes do not fit in it.
    pub fn poke(&self, index: u32, offset: u64, data: &[u8]) {
        self.with(|m| m.memory(index).and_then(|mem| mem.write(offset, data)))
            .unwrap_or_else(|e| panic!("poke of region {index} at {offset:#x}: {e}"));
    }

    /// Device side: raises vector `index` of the enabled kind. Returns true
    /// if it was signalled, false if masked (then pending) or not enabled.
    /// INTx masks itself when it fires until the driver unmasks it.
    pub fn trigger(&self, index: u32) -> bool {
        self.irq().raise(index)
    }

    /// Device side: DMA write. Fails (counting an IOMMU fault) unless the
    /// whole range lies in one device-writable mapping.
    pub fn dma_write(&self, iova: u64, data: &[u8]) -> Result<()> {
        self.dma().write(iova, data)
    }

    /// Device side: DMA read of `len` bytes.
    pub fn dma_read(&self, iova: u64, len: usize) -> Result<Vec<u8>> {
        self.dma().read_vec(iova, len)
    }

    /// Number of live DMA mappings.
    pub fn mapping_count(&self) -> usize {
        self.dma().window_count()
    }

    /// From now on every DMA unmap fails (or, with `false`, works again).
    pub fn fail_dma_unmap(&self, fail: bool) {
        self.dma().fail_unmap(fail);
    }

    /// DMA accesses refused so far.
    pub fn faults(&self) -> u64 {
        self.dma().faults()
    }

    /// The enabled interrupt kind.
    pub fn irq_enabled(&self) -> Option<IrqKind> {
        self.irq().enabled()
    }

    /// Resets so far.
    pub fn resets(&self) -> u64 {
        self.with(|m| m.resets)
    }

    /// Region accesses that went through the read/write path.
    pub fn region_traps(&self) -> u64 {
        self.with(|m| m.traps)
    }

    /// Config space bytes as the device holds them.
    pub fn config(&self) -> Vec<u8> {
        self.with(|m| m.config.bytes().to_vec())
    }
}

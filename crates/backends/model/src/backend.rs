//! [`ModelBackend`]: any [`DeviceModel`] served as a kit [`Backend`], with
//! its [`DmaSpace`] and [`IrqSink`].

use crate::dma::DmaSpace;
use crate::error::Error;
use crate::irq::IrqSink;
use crate::model::{DeviceModel, IrqCounts, ModelRegion};
use pci_virt::Event;
use pcibox_kit::{Backend, DmaMemory, IrqInfo, IrqKind, RegionInfo};
use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard};

/// The IOVA range a model accepts windows in: 39 bits, what a common IOMMU
/// (Intel VT-d with 3-level tables) decodes.
pub const MODEL_IOVA_RANGE: Range<u64> = 0..1 << 39;

/// What a model is given when it is built: the driver memory it may reach
/// and where it raises interrupts. Clone the handles it keeps.
#[derive(Debug, Clone, Default)]
pub struct ModelIo {
    dma: DmaSpace,
    irq: IrqSink,
}

impl ModelIo {
    /// The model's IOMMU view of driver memory.
    pub fn dma(&self) -> &DmaSpace {
        &self.dma
    }

    /// The model's interrupt outputs.
    pub fn irq(&self) -> &IrqSink {
        &self.irq
    }
}

/// A [`DeviceModel`] served as a kit [`Backend`]: hand one clone to
/// [`pcibox_kit::Device::new`] (or a vfio-user server) and keep another as
/// the device side — [`ModelBackend::with`] runs code on the model, as
/// when something outside the driver happens (a frame arrives on the wire,
/// a test injects a fault). Clones share the device.
///
/// Clones are one device: a DMA window mapped through any clone lasts until
/// it is unmapped or the last clone is dropped — that is when this backend
/// counts as dropped for [`Backend::dma_map`]'s contract. Then every window
/// is removed from the [`DmaSpace`] (and the interrupts from the
/// [`IrqSink`]), so a model thread still holding either reaches nothing.
///
/// The backend checks every argument itself, whoever calls it (the kit has
/// already, a server may not have), serves config space from the model's
/// [`pci_virt::VirtualConfig`], traps BAR accesses outside the mappable
/// areas to the model, keeps the DMA windows in the model's [`DmaSpace`]
/// and the interrupt eventfds in its [`IrqSink`].
#[derive(Debug)]
pub struct ModelBackend<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Clone for ModelBackend<M> {
    fn clone(&self) -> Self {
        ModelBackend {
            shared: self.shared.clone(),
        }
    }
}

#[derive(Debug)]
struct Shared<M> {
    name: String,
    config_len: usize,
    regions: Vec<ModelRegion>,
    irqs: IrqCounts,
    io: ModelIo,
    model: Mutex<M>,
}

impl<M> Drop for Shared<M> {
    fn drop(&mut self) {
        // The last clone is gone: so is the device's access to memory whose
        // owner may now release it (see `Backend::dma_map`).
        self.io.dma.clear();
        self.io.irq.clear();
    }
}

impl<M: DeviceModel> ModelBackend<M> {
    /// Builds the model with `make`, which receives the model's DMA space
    /// and interrupt sink, and reads its regions and interrupt counts.
    pub fn build(name: impl Into<String>, make: impl FnOnce(&ModelIo) -> M) -> Self {
        let io = ModelIo::default();
        let model = make(&io);
        ModelBackend {
            shared: Arc::new(Shared {
                name: name.into(),
                config_len: model.config().len(),
                regions: model.regions(),
                irqs: model.irqs(),
                io,
                model: Mutex::new(model),
            }),
        }
    }

    /// Changes the model before the backend is shared, and reads its
    /// regions and interrupt counts again (for builders such as the Fake's).
    ///
    /// # Panics
    /// If the backend has been cloned: a served device's layout is fixed.
    pub(crate) fn reconfigure(mut self, f: impl FnOnce(&mut M)) -> Self {
        let Some(sh) = Arc::get_mut(&mut self.shared) else {
            panic!("configure a model backend before cloning it");
        };
        let model = sh.model.get_mut().unwrap_or_else(|p| p.into_inner());
        f(model);
        sh.regions = model.regions();
        sh.irqs = model.irqs();
        sh.config_len = model.config().len();
        self
    }

    fn lock(&self) -> MutexGuard<'_, M> {
        // A model that panicked mid-access is still memory safe to use;
        // its state is its own business.
        self.shared.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the model (device side), serialised with the driver's
    /// accesses.
    pub fn with<R>(&self, f: impl FnOnce(&mut M) -> R) -> R {
        f(&mut self.lock())
    }

    /// The model's DMA space (device side).
    pub fn dma(&self) -> &DmaSpace {
        &self.shared.io.dma
    }

    /// The model's interrupt sink (device side).
    pub fn irq(&self) -> &IrqSink {
        &self.shared.io.irq
    }

    fn region(&self, index: u32) -> Option<&ModelRegion> {
        self.shared.regions.iter().find(|r| r.index == index)
    }

    /// The region for a trapped access of `len` bytes at `offset`, checked.
    fn trapped(&self, index: u32, offset: u64, len: usize) -> Result<(), Error> {
        let bad = |why| Error::Region {
            index,
            offset,
            len,
            why,
        };
        let r = self.region(index).ok_or(bad("no such region"))?;
        if !matches!(len, 1 | 2 | 4 | 8) {
            return Err(bad("not 1, 2, 4 or 8 bytes"));
        }
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > r.size)
        {
            return Err(bad("outside the region"));
        }
        Ok(())
    }
}

impl<M: DeviceModel> Backend for ModelBackend<M> {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn config_len(&self) -> usize {
        self.shared.config_len
    }

    fn config_read(&self, offset: usize, buf: &mut [u8]) -> pcibox_kit::Result<()> {
        // No device behind a model: bits a model left pass-through read 0.
        buf.fill(0);
        self.lock()
            .config()
            .read(offset, buf)
            .map_err(|e| Error::Config(e).into())
    }

    fn config_write(&self, offset: usize, data: &[u8]) -> pcibox_kit::Result<()> {
        let mut model = self.lock();
        let outcome = model
            .config_mut()
            .write(offset, data)
            .map_err(Error::Config)?;
        // `outcome.forward` has nowhere to go: a model is all there is.
        for event in &outcome.events {
            model.config_event(event);
            if *event == Event::FlrRequested {
                model.reset();
            }
        }
        Ok(())
    }

    fn region_info(&self, index: u32) -> pcibox_kit::Result<Option<RegionInfo>> {
        Ok(self.region(index).map(|r| RegionInfo {
            index,
            size: r.size,
            readable: true,
            writable: true,
            mmap_areas: match (&r.memory, r.io_port) {
                (Some(_), false) => r.mappable.clone(),
                _ => Vec::new(),
            },
            mmap_offset: 0,
            msix_mappable: false,
            io_port: r.io_port,
        }))
    }

    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> pcibox_kit::Result<()> {
        self.trapped(index, offset, buf.len())?;
        Ok(self.lock().bar_read(index, offset, buf)?)
    }

    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> pcibox_kit::Result<()> {
        self.trapped(index, offset, data.len())?;
        Ok(self.lock().bar_write(index, offset, data)?)
    }

    fn region_mmap_fd(&self, index: u32) -> pcibox_kit::Result<BorrowedFd<'_>> {
        match self.region(index).and_then(|r| r.memory.as_ref()) {
            Some(m) => Ok(m.fd()),
            None => Err(pcibox_kit::Error::Unsupported {
                backend: self.shared.name.clone(),
                what: "mapping a region without memory",
            }),
        }
    }

    fn irq_info(&self, kind: IrqKind) -> pcibox_kit::Result<IrqInfo> {
        Ok(IrqInfo {
            count: self.shared.irqs.get(kind),
            eventfd: true,
            maskable: true,
            automasked: kind == IrqKind::Intx,
            noresize: true,
        })
    }

    fn irq_enable(&self, kind: IrqKind, fds: &[BorrowedFd<'_>]) -> pcibox_kit::Result<()> {
        let offered = self.shared.irqs.get(kind);
        Ok(self.irq().enable(kind, fds, offered)?)
    }

    fn irq_disable(&self, kind: IrqKind) -> pcibox_kit::Result<()> {
        Ok(self.irq().disable(kind)?)
    }

    fn irq_mask(&self, kind: IrqKind, index: u32, _fd: BorrowedFd<'_>) -> pcibox_kit::Result<()> {
        Ok(self.irq().mask(kind, index)?)
    }

    fn irq_unmask(&self, kind: IrqKind, index: u32, _fd: BorrowedFd<'_>) -> pcibox_kit::Result<()> {
        Ok(self.irq().unmask(kind, index)?)
    }

    fn iova_ranges(&self) -> pcibox_kit::Result<Vec<Range<u64>>> {
        Ok(vec![MODEL_IOVA_RANGE])
    }

    #[allow(unsafe_code)] // implements the trait's contract; see `Backend::dma_map`
    unsafe fn dma_map(&self, iova: u64, mem: &DmaMemory<'_>) -> pcibox_kit::Result<()> {
        if iova
            .checked_add(mem.len)
            .is_none_or(|end| end > MODEL_IOVA_RANGE.end)
        {
            return Err(Error::DmaWindow {
                op: "map",
                iova,
                len: mem.len,
                why: "outside the model's IOVA range",
            }
            .into());
        }
        // SAFETY: our caller's contract is the one `DmaSpace::map` needs.
        Ok(unsafe { self.dma().map(iova, mem) }?)
    }

    fn dma_unmap(&self, iova: u64, len: u64) -> pcibox_kit::Result<()> {
        Ok(self.dma().unmap(iova, len)?)
    }

    fn reset(&self) -> pcibox_kit::Result<()> {
        self.lock().reset();
        Ok(())
    }
}

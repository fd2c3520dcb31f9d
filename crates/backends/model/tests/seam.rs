//! The seam end to end: a small DMA copy engine written as a `DeviceModel`,
//! driven through the kit's `Device` exactly as a driver drives hardware —
//! config space from its `VirtualConfig` (sizing, events, FLR), doorbells
//! trapped to the model, DMA only inside the driver's windows, interrupts
//! through the driver's eventfds.
#![allow(clippy::unwrap_used, clippy::single_range_in_vec_init)]

use pci::cap_reg::exp;
use pci::{cap_id, reg, Bar, MemKind, MsixRepr, PciePortType, PcieRepr};
use pci_virt::{Event, Ids, ModelBuilder, Size, VirtualConfig};
use pcibox_kit::{Backend, Device, IrqKind};
use pcibox_model::{
    DeviceModel, DmaSpace, IrqCounts, IrqSink, ModelBackend, ModelRegion, RegionMemory,
};
use std::time::Duration;

const P: u64 = 4096;
/// BAR 0 registers (little-endian): source and destination IOVAs, length,
/// doorbell, status and a count of copies.
const SRC: u64 = 0x00;
const DST: u64 = 0x08;
const LEN: u64 = 0x10;
const DOORBELL: u64 = 0x14;
const STATUS: u64 = 0x18;
const COPIES: u64 = 0x1c;
const STATUS_DONE: u32 = 1;
const STATUS_FAULT: u32 = 2;
const PCIE_AT: u8 = 0x40;
const MSIX_AT: u8 = 0x80;
const BAR0_ADDR: u64 = 0xfe00_0000;

/// Copies LEN bytes from SRC to DST when the doorbell is written, then
/// reports in STATUS and raises vector 0.
#[derive(Debug)]
struct CopyEngine {
    config: VirtualConfig,
    regs: [u8; 0x20],
    bar2: RegionMemory,
    dma: DmaSpace,
    irq: IrqSink,
    events: Vec<Event>,
    resets: u32,
}

impl CopyEngine {
    fn new(dma: DmaSpace, irq: IrqSink) -> Self {
        let ids = Ids {
            vendor: 0x1b36,
            device: 0x00ce,
            class: 0x0880,
            ..Ids::default()
        };
        let pcie = PcieRepr {
            version: 2,
            port_type: PciePortType::Endpoint,
            slot: false,
            interrupt_message: 0,
            max_payload_supported: 256,
            flr: true,
            device_control: 0,
            device_status: 0,
            link: None,
        };
        let msix = MsixRepr {
            enable: false,
            function_mask: false,
            table_size: 2,
            table_bir: 2,
            table_offset: 0x2000,
            pba_bir: 2,
            pba_offset: 0x3000,
        };
        let mem = |mem| Bar::Memory {
            addr: BAR0_ADDR,
            mem,
            prefetchable: false,
        };
        let config = ModelBuilder::new(Size::Conventional, &ids)
            .interrupt_pin(1)
            .and_then(|b| b.bar(0, mem(MemKind::Bits32), P))
            .and_then(|b| b.bar(2, mem(MemKind::Bits64), 4 * P))
            .and_then(|b| b.pcie(PCIE_AT, &pcie))
            .and_then(|b| b.msix(MSIX_AT, &msix))
            .unwrap()
            .build();
        CopyEngine {
            config,
            regs: [0; 0x20],
            bar2: RegionMemory::new("copy-engine-bar2", 4 * P).unwrap(),
            dma,
            irq,
            events: Vec::new(),
            resets: 0,
        }
    }

    fn reg32(&self, at: u64) -> u32 {
        let at = at as usize;
        u32::from_le_bytes(self.regs[at..at + 4].try_into().unwrap())
    }

    fn reg64(&self, at: u64) -> u64 {
        u64::from(self.reg32(at)) | u64::from(self.reg32(at + 4)) << 32
    }

    fn set32(&mut self, at: u64, v: u32) {
        let at = at as usize;
        self.regs[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// The doorbell: one copy through the DMA space.
    fn run(&mut self) {
        let mut data = vec![0; self.reg32(LEN) as usize];
        let done = self
            .dma
            .read(self.reg64(SRC), &mut data)
            .and_then(|()| self.dma.write(self.reg64(DST), &data));
        let status = if done.is_ok() {
            STATUS_DONE
        } else {
            STATUS_FAULT
        };
        self.set32(STATUS, status);
        self.set32(COPIES, self.reg32(COPIES) + 1);
        self.irq.raise(0);
    }
}

impl DeviceModel for CopyEngine {
    fn config(&self) -> &VirtualConfig {
        &self.config
    }

    fn config_mut(&mut self) -> &mut VirtualConfig {
        &mut self.config
    }

    fn config_event(&mut self, event: &Event) {
        self.events.push(*event);
    }

    fn regions(&self) -> Vec<ModelRegion> {
        vec![
            ModelRegion::trapped(0, P),
            // The MSI-X table and PBA pages stay trapped.
            ModelRegion::memory(2, self.bar2.clone(), vec![0..2 * P]),
        ]
    }

    fn irqs(&self) -> IrqCounts {
        IrqCounts {
            intx: 1,
            msi: 0,
            msix: 2,
        }
    }

    fn bar_read(&mut self, index: u32, offset: u64, buf: &mut [u8]) -> pcibox_model::Result<()> {
        if index == 2 {
            return self.bar2.read(offset, buf);
        }
        let at = offset as usize;
        match self.regs.get(at..at + buf.len()) {
            Some(r) => buf.copy_from_slice(r),
            None => buf.fill(0),
        }
        Ok(())
    }

    fn bar_write(&mut self, index: u32, offset: u64, data: &[u8]) -> pcibox_model::Result<()> {
        if index == 2 {
            return self.bar2.write(offset, data);
        }
        if offset == DOORBELL {
            self.run();
        } else if offset < STATUS {
            let at = offset as usize;
            self.regs[at..at + data.len()].copy_from_slice(data);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.regs = [0; 0x20];
        self.resets += 1;
    }
}

fn engine() -> (ModelBackend<CopyEngine>, Device) {
    let b = ModelBackend::build("copy-engine", |io| {
        CopyEngine::new(io.dma().clone(), io.irq().clone())
    });
    let d = Device::new(Box::new(b.clone())).unwrap();
    (b, d)
}

/// Programs one copy and rings the doorbell.
fn copy(d: &Device, src: u64, dst: u64, len: u32) -> u32 {
    let r = d.region(0).unwrap();
    r.write64(SRC, src).unwrap();
    r.write64(DST, dst).unwrap();
    r.write32(LEN, len).unwrap();
    r.write32(DOORBELL, 1).unwrap();
    r.read32(STATUS).unwrap()
}

#[test]
fn config_space_is_the_models_and_its_events_reach_it() {
    let (b, d) = engine();
    assert_eq!(d.name(), "copy-engine");
    assert_eq!(
        d.config_bytes().unwrap(),
        b.with(|m| m.config.bytes().to_vec())
    );
    assert_eq!(d.ids().unwrap(), (0x1b36, 0x00ce));
    assert_eq!(d.find_capability(cap_id::MSIX).unwrap(), Some(MSIX_AT));
    assert_eq!(d.find_capability(cap_id::EXP).unwrap(), Some(PCIE_AT));
    // IDs are read-only.
    d.config_write16(reg::VENDOR_ID, 0xffff).unwrap();
    assert_eq!(d.ids().unwrap(), (0x1b36, 0x00ce));
    // BAR sizing: all ones reads back the size mask; the probe is no move,
    // putting the address back is not either, a new address is.
    d.config_write32(reg::BAR0, u32::MAX).unwrap();
    assert_eq!(d.config_read32(reg::BAR0).unwrap(), !(P as u32 - 1));
    d.config_write32(reg::BAR0, BAR0_ADDR as u32).unwrap();
    d.config_write32(reg::BAR0, 0xfd00_0000).unwrap();
    d.enable_memory_and_bus_master().unwrap();
    let events = b.with(|m| std::mem::take(&mut m.events));
    assert_eq!(
        events,
        [
            Event::BarMoved {
                bar: 0,
                addr: 0xfd00_0000
            },
            Event::CommandChanged { old: 0, new: 0x6 }
        ]
    );
    // Out of the space: the model's config refuses, the kit never asks.
    let err = b.config_read(0x100, &mut [0; 4]).unwrap_err();
    assert!(matches!(
        downcast(&err),
        Some(pcibox_model::Error::Config(_))
    ));
}

#[test]
fn flr_and_reset_reach_the_model() {
    let (b, d) = engine();
    let r = d.region(0).unwrap();
    r.write64(SRC, 0x1234_5000).unwrap();
    let devctl = usize::from(PCIE_AT) + exp::DEVCTL;
    let v = d.config_read16(devctl).unwrap();
    d.config_write16(devctl, v | exp::DEVCTL_FLR).unwrap();
    assert_eq!(b.with(|m| m.resets), 1);
    assert!(b.with(|m| m.events.contains(&Event::FlrRequested)));
    assert_eq!(r.read64(SRC).unwrap(), 0, "registers reset");
    assert_eq!(d.config_read16(devctl).unwrap() & exp::DEVCTL_FLR, 0);
    d.reset().unwrap();
    assert_eq!(b.with(|m| m.resets), 2);
}

#[test]
fn doorbell_copies_through_the_drivers_windows_and_interrupts() {
    let (b, d) = engine();
    let irqs = d.enable_interrupts(IrqKind::Msix, 2).unwrap();
    let v = irqs.vector(0).unwrap();
    let src = d.alloc_dma(P as usize).unwrap();
    let dst = d.alloc_dma(P as usize).unwrap();
    src.write(0, b"through the IOMMU").unwrap();
    assert_eq!(copy(&d, src.iova(), dst.iova() + 100, 17), STATUS_DONE);
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
    let mut got = [0u8; 17];
    dst.read(100, &mut got).unwrap();
    assert_eq!(&got, b"through the IOMMU");
    assert_eq!(b.dma().faults(), 0);

    // A window the device may only read: the write faults, nothing lands.
    let fd = rustix::fs::memfd_create("ro", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, P).unwrap();
    let ro = d.map_memfd(fd, 0, P as usize, false).unwrap();
    assert_eq!(copy(&d, src.iova(), ro.iova(), 4), STATUS_FAULT);
    assert_eq!(ro.to_vec(), vec![0; P as usize]);
    // Past a window's end, and where nothing is mapped.
    assert_eq!(copy(&d, src.iova() + P - 2, dst.iova(), 4), STATUS_FAULT);
    assert_eq!(copy(&d, 0xdead_0000, dst.iova(), 4), STATUS_FAULT);
    assert_eq!(b.dma().faults(), 3);
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 3);

    // Masked: held pending, delivered on unmask.
    v.mask().unwrap();
    assert!(b.irq().is_masked(0));
    assert_eq!(copy(&d, src.iova(), dst.iova(), 1), STATUS_DONE);
    assert_eq!(v.wait(Some(Duration::from_millis(20))).unwrap(), 0);
    v.unmask().unwrap();
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
    assert_eq!(d.region(0).unwrap().read32(COPIES).unwrap(), 5);

    // Teardown: the windows and the interrupts are gone from the model.
    assert_eq!(b.dma().window_count(), 3);
    drop((src, dst, ro, irqs));
    assert_eq!((b.dma().window_count(), b.irq().enabled()), (0, None));
}

#[test]
fn intx_is_automasked_until_the_end_of_interrupt() {
    let (b, d) = engine();
    let irqs = d.enable_interrupts(IrqKind::Intx, 1).unwrap();
    let v = irqs.vector(0).unwrap();
    let buf = d.alloc_dma(P as usize).unwrap();
    assert_eq!(copy(&d, buf.iova(), buf.iova() + 8, 8), STATUS_DONE);
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
    assert!(b.irq().is_masked(0), "INTx masks itself when it fires");
    assert_eq!(copy(&d, buf.iova(), buf.iova() + 8, 8), STATUS_DONE);
    assert_eq!(v.wait(Some(Duration::from_millis(20))).unwrap(), 0);
    v.unmask().unwrap();
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
}

#[test]
fn mapped_areas_and_trapped_accesses_share_the_regions_memory() {
    let (b, d) = engine();
    let r = d.region(2).unwrap();
    assert_eq!(r.mapped_ranges(), vec![0..2 * P]);
    assert!(!r.is_mapped_at(0x2000), "the MSI-X table page is trapped");
    r.write32(0x10, 0xfeed_f00d).unwrap();
    let mut got = [0u8; 4];
    b.with(|m| m.bar2.read(0x10, &mut got)).unwrap();
    assert_eq!(u32::from_le_bytes(got), 0xfeed_f00d);
    r.write64(0x2000, 0x0123_4567_89ab_cdef).unwrap();
    b.with(|m| m.bar2.read(0x2004, &mut got)).unwrap();
    assert_eq!(u32::from_le_bytes(got), 0x0123_4567);
    let t = d.region_unmapped(2).unwrap();
    assert_eq!(t.read32(0x10).unwrap(), 0xfeed_f00d);
}

/// The model error inside a kit error, if there is one.
fn downcast(e: &pcibox_kit::Error) -> Option<&pcibox_model::Error> {
    match e {
        pcibox_kit::Error::Backend(b) => b.downcast_ref(),
        _ => None,
    }
}

#[test]
fn the_backend_checks_what_it_is_given() {
    let (b, _d) = engine();
    let be: &dyn Backend = &b;
    let region_err = |r: pcibox_kit::Result<()>| {
        matches!(
            downcast(&r.unwrap_err()),
            Some(pcibox_model::Error::Region { .. })
        )
    };
    assert!(region_err(be.region_read(0, P - 2, &mut [0; 4])));
    assert!(region_err(be.region_read(0, 0, &mut [0; 3])));
    assert!(region_err(be.region_write(5, 0, &[0; 4])));
    assert!(region_err(be.region_write(0, u64::MAX - 1, &[0; 4])));
    assert!(matches!(
        be.region_mmap_fd(0),
        Err(pcibox_kit::Error::Unsupported { .. })
    ));
    assert!(be.region_info(0).unwrap().unwrap().mmap_areas.is_empty());
    assert_eq!(be.region_info(1).unwrap(), None);
    assert_eq!(be.irq_info(IrqKind::Msix).unwrap().count, 2);
    assert_eq!(be.irq_info(IrqKind::Msi).unwrap().count, 0);
    let fds: Vec<_> = (0..3)
        .map(|_| rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap())
        .collect();
    let borrowed: Vec<_> = fds.iter().map(std::os::fd::AsFd::as_fd).collect();
    let irq_err = |r: pcibox_kit::Result<()>| {
        matches!(
            downcast(&r.unwrap_err()),
            Some(pcibox_model::Error::Irq { .. })
        )
    };
    assert!(irq_err(be.irq_enable(IrqKind::Msix, &borrowed)));
    assert!(irq_err(be.irq_mask(IrqKind::Msix, 0, borrowed[0])));
    be.irq_enable(IrqKind::Msix, &borrowed[..2]).unwrap();
    assert!(irq_err(be.irq_enable(IrqKind::Intx, &borrowed[..1])));
    assert!(irq_err(be.irq_unmask(IrqKind::Msix, 2, borrowed[0])));
    assert!(irq_err(be.irq_disable(IrqKind::Intx)));
    be.irq_disable(IrqKind::Msix).unwrap();
    assert!(be.dma_unmap(0x10_0000, P).is_err(), "nothing mapped there");
}

#[test]
fn the_last_clone_takes_the_windows_and_interrupts_with_it() {
    let f = pcibox_model::fake::Fake::new(1, 2).with_irqs(IrqKind::Msix, 1);
    let (dma, irq) = (f.dma().clone(), f.irq().clone());
    let d = Device::new(Box::new(f.clone())).unwrap();
    let irqs = d.enable_interrupts(IrqKind::Msix, 1).unwrap();
    let buf = d.alloc_dma(P as usize).unwrap();
    let iova = buf.iova();
    // An unmap that fails keeps the window: the device may still reach it
    // (and the kit leaks the buffer's memory rather than release it).
    f.fail_dma_unmap(true);
    drop((irqs, buf, d));
    assert_eq!(dma.window_count(), 1);
    assert!(dma.read(iova, &mut [0; 8]).is_ok());
    let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    f.irq_enable(IrqKind::Msix, &[std::os::fd::AsFd::as_fd(&efd)])
        .unwrap();
    assert_eq!(irq.enabled(), Some(IrqKind::Msix));
    // The backend itself gone, a model's leftover handles reach nothing.
    drop(f);
    assert_eq!(dma.window_count(), 0);
    assert!(dma.read(iova, &mut [0; 8]).is_err());
    assert_eq!(irq.enabled(), None);
}

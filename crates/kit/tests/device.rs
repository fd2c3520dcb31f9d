//! The kit's `Device` against the fake backend (`pcibox_model::fake`, a
//! device model: an integration test, so that the kit and the model crate
//! share one copy of the kit).
#![allow(clippy::unwrap_used)]

mod common;

use common::process_mappings_of;
use pcibox_kit::*;
use pcibox_model::fake::Fake;
use std::time::{Duration, Instant};

const P: u64 = 4096;

fn fake() -> Fake {
    Fake::new(0x1b36, 0x0010)
        .with_region(0, 4 * P, vec![0..P, 2 * P..4 * P]) // sparse: page 1 trapped
        .with_region(2, 64, vec![])
        .with_irqs(IrqKind::Intx, 1)
        .with_irqs(IrqKind::Msix, 4)
}

fn open() -> (Fake, Device) {
    let f = fake();
    let d = Device::new(Box::new(f.clone())).unwrap();
    (f, d)
}

#[test]
fn config_widths_and_checks() {
    let (f, d) = open();
    assert_eq!(d.ids().unwrap(), (0x1b36, 0x0010));
    assert_eq!(d.config_read32(0).unwrap(), 0x0010_1b36);
    assert_eq!(d.config_read8(1).unwrap(), 0x1b);
    d.config_write16(0x3c, 0xbeef).unwrap();
    assert_eq!(d.config_read8(0x3c).unwrap(), 0xef);
    assert_eq!(d.config_read16(0x3c).unwrap(), 0xbeef);
    assert_eq!(&f.config()[0x3c..0x3e], &[0xef, 0xbe]);
    // Misaligned, outside, too wide.
    assert!(matches!(
        d.config_read16(0x3d),
        Err(Error::ConfigOffset { .. })
    ));
    assert!(matches!(
        d.config_read32(0xfe),
        Err(Error::ConfigOffset { .. })
    ));
    assert!(matches!(
        d.config_read8(256),
        Err(Error::ConfigOffset { .. })
    ));
    assert!(matches!(
        d.config_read::<u64>(0),
        Err(Error::ConfigOffset { .. })
    ));
    assert!(matches!(
        d.config_write32(usize::MAX - 3, 0),
        Err(Error::ConfigOffset { .. })
    ));
    assert_eq!(d.config_bytes().unwrap(), f.config());
    d.enable_memory_and_bus_master().unwrap();
    assert_eq!(
        d.config_read16(COMMAND).unwrap(),
        COMMAND_MEMORY | COMMAND_BUS_MASTER
    );
}

#[test]
fn region_mapped_and_trapped_agree() {
    let (f, d) = open();
    let r = d.region(0).unwrap();
    assert_eq!(r.mapped_ranges(), vec![0..P, 2 * P..4 * P]);
    assert!(r.is_mapped_at(0) && !r.is_mapped_at(P) && r.is_mapped_at(3 * P));
    let t = d.region_unmapped(0).unwrap();
    assert!(t.mapped_ranges().is_empty());
    f.poke(0, 0, &0x0123_4567_89ab_cdefu64.to_le_bytes());
    f.poke(0, P + 8, &0xdead_beefu32.to_le_bytes());
    let before = f.region_traps();
    assert_eq!(r.read64(0).unwrap(), 0x0123_4567_89ab_cdef);
    assert_eq!(r.read32(4).unwrap(), 0x0123_4567);
    assert_eq!(r.read16(2).unwrap(), 0x89ab);
    assert_eq!(r.read8(7).unwrap(), 0x01);
    assert_eq!(f.region_traps(), before, "mapped reads must not trap");
    assert_eq!(r.read32(P + 8).unwrap(), 0xdead_beef);
    assert_eq!(f.region_traps(), before + 1, "the sparse hole traps");
    for off in [0u64, 4, P + 8, 2 * P, 4 * P - 8] {
        assert_eq!(r.read64(off & !7).unwrap(), t.read64(off & !7).unwrap());
    }
    r.write32(2 * P + 4, 0x55aa_55aa).unwrap();
    assert_eq!(t.read32(2 * P + 4).unwrap(), 0x55aa_55aa);
    t.write_doorbell32(0x10, 7).unwrap();
    assert_eq!(r.read32(0x10).unwrap(), 7);
    // Checks.
    assert!(matches!(r.read32(4 * P), Err(Error::RegionBounds { .. })));
    assert!(matches!(r.read32(2), Err(Error::RegionBounds { .. })));
    assert!(matches!(
        r.write64(u64::MAX - 7, 0),
        Err(Error::RegionBounds { .. })
    ));
    assert!(matches!(d.region(5), Err(Error::Region { .. })));
    // A region with no mappable area works through read/write.
    let small = d.region(2).unwrap();
    small.write16(62, 0x1234).unwrap();
    assert_eq!(small.read16(62).unwrap(), 0x1234);
}

#[test]
fn msix_vectors_fire_count_and_mask() {
    let (f, d) = open();
    let irqs = d.enable_interrupts(IrqKind::Msix, 4).unwrap();
    assert_eq!(f.irq_enabled(), Some(IrqKind::Msix));
    let v = irqs.vector(2).unwrap();
    assert_eq!(v.wait(Some(Duration::from_millis(10))).unwrap(), 0);
    assert!(f.trigger(2));
    assert!(f.trigger(2));
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 2);
    assert_eq!(v.poll().unwrap(), 0);
    assert_eq!(v.count(), 2);
    // Masked: the device's signal does not wake; it is delivered on unmask.
    v.mask().unwrap();
    assert!(!f.trigger(2));
    assert_eq!(v.wait(Some(Duration::from_millis(20))).unwrap(), 0);
    v.unmask().unwrap();
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
    // wait_any finds the vector that fired.
    assert!(f.trigger(3));
    assert_eq!(
        irqs.wait_any(Some(Duration::from_secs(5))).unwrap(),
        Some(3)
    );
    assert_eq!(irqs.wait_any(Some(Duration::from_millis(5))).unwrap(), None);
    // wait_some leaves the other vectors' signals for whoever owns them.
    assert!(f.trigger(1));
    assert_eq!(
        irqs.wait_some(&[0, 3, 9], Some(Duration::from_millis(20)))
            .unwrap(),
        None
    );
    assert!(f.trigger(3));
    assert_eq!(
        irqs.wait_some(&[0, 3], Some(Duration::from_secs(5)))
            .unwrap(),
        Some(3)
    );
    assert_eq!(irqs.vector(1).unwrap().poll().unwrap(), 1);
    // Only one kind at a time; too many vectors refused.
    assert!(matches!(
        d.enable_interrupts(IrqKind::Intx, 1),
        Err(Error::Irq { .. })
    ));
    drop(irqs);
    assert_eq!(f.irq_enabled(), None);
    assert!(matches!(
        d.enable_interrupts(IrqKind::Msix, 5),
        Err(Error::Irq { .. })
    ));
    assert!(matches!(
        d.enable_interrupts(IrqKind::Msi, 1),
        Err(Error::Irq { .. })
    ));
}

#[test]
fn intx_needs_unmask_after_handling() {
    let (f, d) = open();
    let irqs = d.enable_interrupts(IrqKind::Intx, 1).unwrap();
    let v = irqs.vector(0).unwrap();
    assert!(f.trigger(0));
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
    // Automasked: a second assertion stays pending until the EOI.
    assert!(!f.trigger(0));
    assert_eq!(v.wait(Some(Duration::from_millis(20))).unwrap(), 0);
    v.unmask().unwrap();
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
}

#[test]
fn wait_times_out_roughly_on_time() {
    let (_f, d) = open();
    let irqs = d.enable_interrupts(IrqKind::Msix, 1).unwrap();
    let t = Instant::now();
    assert_eq!(
        irqs.vector(0)
            .unwrap()
            .wait(Some(Duration::from_millis(30)))
            .unwrap(),
        0
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn dma_buffer_is_what_the_device_sees() {
    let (f, d) = open();
    let b = d.alloc_dma(100).unwrap();
    assert_eq!(b.len(), P as usize);
    assert!(b.iova() >= IOVA_FLOOR && b.iova() % P == 0);
    assert_eq!(f.mapping_count(), 1);
    f.dma_write(b.iova() + 16, b"identify").unwrap();
    b.sync_for_cpu();
    let mut got = [0u8; 8];
    b.read(16, &mut got).unwrap();
    assert_eq!(&got, b"identify");
    b.write_le::<u32>(64, 0xcafe_f00d).unwrap();
    b.sync_for_device();
    assert_eq!(
        f.dma_read(b.iova() + 64, 4).unwrap(),
        0xcafe_f00du32.to_le_bytes()
    );
    assert_eq!(
        b.read_le::<u64>(16).unwrap(),
        u64::from_le_bytes(*b"identify")
    );
    assert!(b.read(P as usize - 1, &mut got).is_err());
    assert!(b.read_le::<u32>(2).is_err());
    // Never-mapped IOVAs fault.
    assert!(f.dma_write(0xdead_0000, b"x").is_err());
    assert_eq!(f.faults(), 1);
    let iova = b.iova();
    drop(b);
    assert_eq!(f.mapping_count(), 0);
    assert!(f.dma_write(iova, b"x").is_err(), "unmapped on drop");
    assert!(d.alloc_dma(0).is_err());
}

#[test]
fn dma_pool_hands_out_distinct_buffers() {
    let (f, d) = open();
    let pool = d.dma_pool(512, 16).unwrap();
    let bufs: Vec<_> = (0..16).map(|_| pool.alloc().unwrap()).collect();
    assert!(pool.alloc().is_none());
    let mut iovas: Vec<u64> = bufs.iter().map(|b| b.iova()).collect();
    iovas.sort();
    iovas.dedup();
    assert_eq!(iovas.len(), 16);
    bufs[3].write(0, b"three").unwrap();
    assert_eq!(f.dma_read(bufs[3].iova(), 5).unwrap(), b"three");
    assert!(
        bufs[3].write(510, b"xyz").is_err(),
        "a pool buffer is bounded"
    );
    drop(bufs);
    assert_eq!(pool.available(), 16);
    let again = pool.alloc().unwrap();
    assert_eq!(
        again.to_vec(),
        vec![0u8; 512],
        "reissued buffers are zeroed"
    );
    assert!(d.dma_pool(100, 4).is_err());
    assert_eq!(f.mapping_count(), 1);
}

#[test]
fn caller_memory_maps() {
    let (f, d) = open();
    let fd = rustix::fs::memfd_create("caller", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, 2 * P).unwrap();
    let b = d.map_memfd(fd, P, P as usize, false).unwrap();
    b.write(0, b"hello").unwrap();
    assert_eq!(f.dma_read(b.iova(), 5).unwrap(), b"hello");
    assert!(
        f.dma_write(b.iova(), b"no").is_err(),
        "read-only for the device"
    );
    let fd2 = rustix::fs::memfd_create("caller", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    assert!(d.map_memfd(fd2, 1, P as usize, true).is_err());
}

#[test]
fn teardown_turns_everything_off() {
    let (f, d) = open();
    d.enable_memory_and_bus_master().unwrap();
    let irqs = d.enable_interrupts(IrqKind::Msix, 2).unwrap();
    let b1 = d.alloc_dma(P as usize).unwrap();
    let _b2 = d.alloc_dma(3 * P as usize).unwrap();
    let r = d.region(0).unwrap();
    assert_eq!(d.dma_mapping_count(), 2);
    d.reset().unwrap();
    assert_eq!(f.resets(), 1);
    drop(d);
    assert_eq!(f.irq_enabled(), None);
    assert_eq!(f.mapping_count(), 0);
    assert_eq!(f.config()[COMMAND] & COMMAND_BUS_MASTER as u8, 0);
    // Handles that outlive the device stay memory-safe and inert.
    assert!(matches!(irqs.vector(0).unwrap().mask(), Err(Error::Closed)));
    b1.write(0, b"still my memory").unwrap();
    assert!(f.dma_read(b1.iova(), 4).is_err());
    assert!(r.read32(0).is_ok());
    drop(irqs);
    drop(b1);
}

#[test]
fn reopen_many_times_leaks_nothing() {
    let f = fake();
    for _ in 0..20 {
        let d = Device::new(Box::new(f.clone())).unwrap();
        let irqs = d.enable_interrupts(IrqKind::Msix, 4).unwrap();
        let _b = d.alloc_dma(8192).unwrap();
        let _r = d.region(0).unwrap();
        drop(irqs);
    }
    assert_eq!(f.mapping_count(), 0);
    assert_eq!(f.irq_enabled(), None);
}

#[test]
fn backend_is_object_safe_and_device_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Device>();
    assert_send_sync::<Region>();
    assert_send_sync::<Interrupts>();
    assert_send_sync::<DmaBuffer>();
    assert_send_sync::<PoolBuffer>();
    let b: Box<dyn Backend> = Box::new(fake());
    assert!(b.name().starts_with("fake:"));
}

#[test]
fn capability_walk_comes_from_the_pci_crate() {
    let (_f, d) = open();
    assert_eq!(d.find_capability(pci::cap_id::MSIX).unwrap(), None);
    // Status.CAP_LIST, pointer 0x40 → MSI-X (0x11) → PM (0x01) at 0x50.
    d.config_write16(0x06, 1 << 4).unwrap();
    d.config_write8(0x34, 0x40).unwrap();
    d.config_write16(0x40, 0x5011).unwrap();
    d.config_write16(0x42, 3).unwrap(); // table size 4
    d.config_write16(0x50, 0x0001).unwrap();
    assert_eq!(d.find_capability(pci::cap_id::MSIX).unwrap(), Some(0x40));
    assert_eq!(d.find_capability(pci::cap_id::PM).unwrap(), Some(0x50));
    let cs = d.config_space().unwrap();
    let msix = pci::MsixRepr::parse(cs.as_bytes(), 0x40).unwrap();
    assert_eq!(msix.table_size, 4);
    // A looping list ends the walk instead of hanging.
    d.config_write8(0x51, 0x40).unwrap();
    assert_eq!(d.find_capability(0x05).unwrap(), None);
}

#[test]
fn memory_the_device_may_still_reach_is_never_released() {
    for fail in [false, true] {
        let (f, d) = open();
        let name = format!("kit-unmap-test-{fail}");
        let fd = rustix::fs::memfd_create(name.as_str(), rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, P).unwrap();
        let buf = d.map_memfd(fd, 0, P as usize, true).unwrap();
        assert_eq!(process_mappings_of(&name), 1);
        f.fail_dma_unmap(fail);
        drop(buf);
        // Unmapped from the device: the memory goes. Unmap failed: the
        // device may still write it, so it stays mapped in the process.
        assert_eq!(f.mapping_count(), usize::from(fail));
        assert_eq!(process_mappings_of(&name), usize::from(fail), "fail={fail}");
    }
}

#[test]
fn teardown_that_cannot_unmap_keeps_the_buffer_memory() {
    let (f, d) = open();
    let name = "kit-teardown-unmap-test";
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, P).unwrap();
    let buf = d.map_memfd(fd, 0, P as usize, true).unwrap();
    f.fail_dma_unmap(true);
    drop(d);
    assert_eq!(f.mapping_count(), 1, "teardown's unmap failed");
    drop(buf);
    assert_eq!(
        process_mappings_of(name),
        1,
        "memory released under a live mapping"
    );
}

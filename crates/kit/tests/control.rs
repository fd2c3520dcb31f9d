//! Unit tests of the privileged handle against the fake backend: windows
//! placed by the caller in the device's one IOVA space, interrupts with
//! the caller's eventfds, and quiescing.
#![allow(clippy::unwrap_used)]

mod common;

use common::process_mappings_of;
use pcibox_kit::*;
use pcibox_model::fake::Fake;
use std::os::fd::{AsFd, OwnedFd};

const P: u64 = 4096;

fn open() -> (Fake, Device, DeviceControl) {
    let f = Fake::new(0x1b36, 0x0010).with_irqs(IrqKind::Msix, 4);
    let (d, c) = Device::with_control(Box::new(f.clone())).unwrap();
    (f, d, c)
}

fn memfd(name: &str, len: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    fd
}

#[test]
fn windows_and_allocations_share_one_address_space() {
    let (f, d, c) = open();
    // The kit allocates first: a window over that IOVA is refused.
    let buf = d.alloc_dma(P as usize).unwrap();
    assert!(matches!(
        c.reserve_window(buf.iova(), P),
        Err(Error::IovaInUse { .. })
    ));
    assert!(matches!(
        c.reserve_window(buf.iova() - P, 2 * P),
        Err(Error::IovaInUse { .. })
    ));
    // A window first: later allocations go around it.
    let w = c.reserve_window(buf.iova() + P, 4 * P).unwrap();
    let later: Vec<_> = (0..8).map(|_| d.alloc_dma(P as usize).unwrap()).collect();
    for b in &later {
        assert!(b.iova() + P <= w.iova() || b.iova() >= w.iova() + w.len());
    }
    // Windows do not overlap each other; below the allocator's floor and
    // outside the ranges behave as they should.
    assert!(matches!(
        c.reserve_window(w.iova() + 3 * P, 2 * P),
        Err(Error::IovaInUse { .. })
    ));
    let low = c.reserve_window(0, P).unwrap();
    assert!(matches!(
        c.reserve_window(1 << 39, P),
        Err(Error::IovaRange { .. })
    ));
    assert!(matches!(c.reserve_window(P + 1, P), Err(Error::Dma { .. })));
    // Reserved only: the device sees nothing there.
    assert_eq!(f.mapping_count(), 9);
    assert!(f.dma_write(w.iova(), b"x").is_err());
    // Released, the range can be taken again.
    drop((w, low));
    let again = c.reserve_window(buf.iova() + P, 4 * P).unwrap();
    assert_eq!(again.iova(), buf.iova() + P);
}

#[test]
fn a_file_backed_window_reaches_the_file_and_unmaps_on_drop() {
    let (f, _d, c) = open();
    let name = "kit-window-test";
    let mem = memfd(name, 4 * P);
    let mut w = c.reserve_window(0x20_0000, 2 * P).unwrap();
    w.map_file(mem.as_fd(), P, true).unwrap();
    assert!(w.is_mapped());
    assert!(w.map_file(mem.as_fd(), 0, true).is_err(), "backed twice");
    assert_eq!(f.mapping_count(), 1);
    f.dma_write(0x20_0000 + 8, b"device").unwrap();
    let mut got = [0u8; 6];
    rustix::io::pread(&mem, &mut got, P + 8).unwrap();
    assert_eq!(&got, b"device");
    assert_eq!(process_mappings_of(name), 1);
    w.release().unwrap();
    assert_eq!(f.mapping_count(), 0);
    assert_eq!(process_mappings_of(name), 0);
    // Read-only for the device: its writes fault.
    let mut ro = c.reserve_window(0x20_0000, P).unwrap();
    ro.map_file(mem.as_fd(), 0, false).unwrap();
    assert!(f.dma_write(0x20_0000, b"no").is_err());
    assert_eq!(f.dma_read(0x20_0000 + 8, 6).unwrap(), vec![0; 6]);
}

#[test]
fn a_window_the_backend_cannot_unmap_keeps_its_memory_and_iovas() {
    let (f, d, c) = open();
    let name = "kit-window-leak-test";
    let mem = memfd(name, P);
    let mut w = c.reserve_window(0x20_0000, P).unwrap();
    w.map_file(mem.as_fd(), 0, true).unwrap();
    f.fail_dma_unmap(true);
    assert!(w.release().is_err());
    assert_eq!(f.mapping_count(), 1);
    assert_eq!(
        process_mappings_of(name),
        1,
        "memory released under a live mapping"
    );
    assert!(matches!(
        c.reserve_window(0x20_0000, P),
        Err(Error::IovaInUse { .. })
    ));
    f.fail_dma_unmap(false);
    drop(d);
    // A closed device takes no windows.
    assert!(matches!(c.reserve_window(0x40_0000, P), Err(Error::Closed)));
}

#[test]
fn interrupts_with_the_callers_eventfds() {
    let (f, d, _c) = open();
    let efd = || {
        rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .unwrap()
    };
    let mine = efd();
    let theirs = mine.try_clone().unwrap();
    let irqs = d
        .enable_interrupts_with(IrqKind::Msix, vec![efd(), theirs])
        .unwrap();
    assert_eq!(irqs.len(), 2);
    assert!(f.trigger(1));
    let mut v = [0u8; 8];
    rustix::io::read(&mine, &mut v).unwrap();
    assert_eq!(
        u64::from_ne_bytes(v),
        1,
        "vector 1 signals the caller's eventfd"
    );
    // Too many, none, and a second kind are refused like enable_interrupts.
    assert!(d
        .enable_interrupts_with(IrqKind::Intx, vec![efd()])
        .is_err());
    let fds = irqs.disable();
    assert_eq!(f.irq_enabled(), None);
    assert_eq!(fds.len(), 2);
    assert!(d.enable_interrupts_with(IrqKind::Msix, vec![]).is_err());
    let five = (0..5).map(|_| efd()).collect();
    assert!(d.enable_interrupts_with(IrqKind::Msix, five).is_err());
    // The descriptors given back enable again.
    let irqs = d.enable_interrupts_with(IrqKind::Msix, fds).unwrap();
    assert!(f.trigger(1));
    assert_eq!(irqs.vector(1).unwrap().poll().unwrap(), 1);
}

#[test]
fn quiesce_turns_interrupts_and_bus_mastering_off_and_keeps_the_device_open() {
    let (f, d, c) = open();
    d.enable_memory_and_bus_master().unwrap();
    let irqs = d.enable_interrupts(IrqKind::Msix, 2).unwrap();
    let buf = d.alloc_dma(P as usize).unwrap();
    c.quiesce();
    assert_eq!(f.irq_enabled(), None);
    assert_eq!(d.config_read16(COMMAND).unwrap() & COMMAND_BUS_MASTER, 0);
    assert_eq!(
        d.config_read16(COMMAND).unwrap() & COMMAND_MEMORY,
        COMMAND_MEMORY
    );
    assert!(matches!(irqs.vector(0).unwrap().mask(), Err(Error::Closed)));
    // DMA stays mapped; the device is still usable.
    assert_eq!(f.mapping_count(), 1);
    drop(irqs);
    let irqs = d.enable_interrupts(IrqKind::Msix, 1).unwrap();
    assert!(f.trigger(0));
    assert_eq!(irqs.vector(0).unwrap().poll().unwrap(), 1);
    drop(buf);
}

//! A kit device used through a vfio-user client, served by our server from
//! the kit's fake backend: every kit operation arrives at the fake.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use pcibox_kit::IrqKind;
use pcibox_vfio_user::{ClientOptions, ServerOptions};
use std::time::Duration;

#[test]
fn config_space_passes_through() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let dev = connect(&r, ClientOptions::default());
    assert_eq!(dev.config_read32(0).unwrap(), 0x10d3_8086);
    assert_eq!(dev.config_read16(2).unwrap(), 0x10d3);
    dev.config_write16(0x04, 0x0006).unwrap();
    assert_eq!(fake.config()[4], 0x06);
    assert_eq!(dev.config_read8(4).unwrap(), 0x06);
    // Out of range is refused by the kit before any message.
    assert!(dev.config_read32(0x100).is_err());
}

#[test]
fn trapped_and_mapped_regions() {
    let fake = fake();
    // Default: everything trapped, even a mappable memfd region.
    {
        let r = serve(&fake, ServerOptions::default());
        let dev = connect(&r, ClientOptions::default());
        let bar0 = dev.region(0).unwrap();
        assert!(!bar0.is_mapped_at(0));
        let before = fake.region_traps();
        bar0.write::<u32>(0x10, 0xdead_beef).unwrap();
        assert_eq!(bar0.read::<u32>(0x10).unwrap(), 0xdead_beef);
        assert!(fake.region_traps() >= before + 2);
        fake.poke(2, 8, &0x1122_3344_5566_7788u64.to_le_bytes());
        let bar2 = dev.region(2).unwrap();
        assert_eq!(bar2.read::<u64>(8).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(bar2.read::<u8>(9).unwrap(), 0x77);
        assert!(bar2.read::<u32>(0x1000).is_err());
    }
    // Sharing on: the memfd region is mapped, accesses cost no message.
    let r = serve(
        &fake,
        ServerOptions {
            share_mappings: true,
            ..Default::default()
        },
    );
    let dev = connect(&r, ClientOptions::default());
    let bar0 = dev.region(0).unwrap();
    assert!(bar0.is_mapped_at(0) && bar0.is_mapped_at(0x3ffc));
    let before = fake.region_traps();
    bar0.write::<u32>(0x20, 0x0bad_cafe).unwrap();
    assert_eq!(bar0.read::<u32>(0x20).unwrap(), 0x0bad_cafe);
    assert_eq!(fake.region_traps(), before, "mapped access trapped");
    // The fake (device side) sees the same bytes.
    let bar0_trapped = dev.region_unmapped(0).unwrap();
    assert_eq!(bar0_trapped.read::<u32>(0x20).unwrap(), 0x0bad_cafe);
    // BAR2 has no mappable area: still trapped.
    assert!(!dev.region(2).unwrap().is_mapped_at(0));
}

#[test]
fn interrupts_arrive_as_eventfds_and_mask() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let dev = connect(&r, ClientOptions::default());
    let info = dev.irq_info(IrqKind::Msix).unwrap();
    assert_eq!(info.count, 4);
    let irqs = dev.enable_interrupts(IrqKind::Msix, 4).unwrap();
    assert_eq!(fake.irq_enabled(), Some(IrqKind::Msix));
    assert!(fake.trigger(2));
    let v2 = irqs.vector(2).unwrap();
    assert_eq!(v2.wait(Some(Duration::from_secs(2))).unwrap(), 1);
    assert_eq!(irqs.vector(1).unwrap().poll().unwrap(), 0);
    // Masked: held pending, delivered on unmask.
    v2.mask().unwrap();
    assert!(!fake.trigger(2));
    assert_eq!(v2.wait(Some(Duration::from_millis(50))).unwrap(), 0);
    v2.unmask().unwrap();
    assert_eq!(v2.wait(Some(Duration::from_secs(2))).unwrap(), 1);
    drop(irqs);
    assert_eq!(fake.irq_enabled(), None);
    // INTx: automasked, unmask is the EOI.
    let intx = dev.enable_interrupts(IrqKind::Intx, 1).unwrap();
    assert!(fake.trigger(0));
    assert!(!fake.trigger(0), "INTx must automask");
    let v = intx.vector(0).unwrap();
    assert_eq!(v.wait(Some(Duration::from_secs(2))).unwrap(), 1);
    // The second assertion of the line stayed pending: EOI delivers it.
    v.unmask().unwrap();
    assert_eq!(v.wait(Some(Duration::from_secs(2))).unwrap(), 1);
    v.unmask().unwrap();
    assert!(fake.trigger(0));
    assert_eq!(v.wait(Some(Duration::from_secs(2))).unwrap(), 1);
}

#[test]
fn dma_reaches_client_memory_through_fds() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let dev = connect(&r, ClientOptions::default());
    let buf = dev.alloc_dma(8192).unwrap();
    assert_eq!(fake.mapping_count(), 1);
    fake.dma_write(buf.iova() + 100, b"from the device")
        .unwrap();
    let mut got = [0u8; 15];
    buf.read(100, &mut got).unwrap();
    assert_eq!(&got, b"from the device");
    buf.write(4000, b"to the device").unwrap();
    assert_eq!(
        fake.dma_read(buf.iova() + 4000, 13).unwrap(),
        b"to the device"
    );
    // Past the window: refused (an IOMMU fault on the fake).
    assert!(fake.dma_write(buf.iova() + 8190, b"xyz").is_err());
    // The server's software DMA handle sees the same memory via the fd.
    let mut via = [0u8; 15];
    r.dma.read(buf.iova() + 100, &mut via).unwrap();
    assert_eq!(&via, b"from the device");
    assert!(r.dma.read(buf.iova() + 8190, &mut [0u8; 4]).is_err());
    assert!(r.dma.read(0x10_0000_0000, &mut [0u8; 4]).is_err());
    drop(buf);
    assert_eq!(fake.mapping_count(), 0);
    assert_eq!(r.dma.window_count(), 0);
}

#[test]
fn dma_by_messages_over_the_twin_socket() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let dev = connect(
        &r,
        ClientOptions {
            send_dma_fds: false,
            ..Default::default()
        },
    );
    let buf = dev.alloc_dma(4096).unwrap();
    // No file was passed: the device itself cannot reach the memory.
    assert_eq!(fake.mapping_count(), 0);
    assert_eq!(r.dma.window_count(), 1);
    r.dma.write(buf.iova() + 8, b"over the twin").unwrap();
    let mut got = [0u8; 13];
    buf.read(8, &mut got).unwrap();
    assert_eq!(&got, b"over the twin");
    buf.write(1000, &[7u8; 300]).unwrap();
    let mut back = vec![0u8; 300];
    r.dma.read(buf.iova() + 1000, &mut back).unwrap();
    assert_eq!(back, vec![7u8; 300]);
    // Outside the window: refused by the server before any message.
    assert!(r.dma.write(buf.iova() + 4090, &[0u8; 8]).is_err());
}

#[test]
fn reset_and_disconnect_cleanup() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    {
        let dev = connect(&r, ClientOptions::default());
        dev.reset().unwrap();
        assert_eq!(fake.resets(), 1);
        let _buf = dev.alloc_dma(4096).unwrap();
        let irqs = dev.enable_interrupts(IrqKind::Msix, 2).unwrap();
        // Leak both past the device: the server must clean up on disconnect.
        std::mem::forget(irqs);
        std::mem::forget(_buf);
        std::mem::forget(dev);
        // The client socket is leaked with the device: still connected.
        assert_eq!(fake.irq_enabled(), Some(IrqKind::Msix));
        assert_eq!(fake.mapping_count(), 1);
    }
    // Stopping the server ends the session with the full cleanup.
    r.stop.stop();
    eventually("cleanup", || {
        fake.irq_enabled().is_none() && fake.mapping_count() == 0 && fake.resets() >= 2
    });
}

#[test]
#[allow(unsafe_code)]
fn next_client_after_disconnect() {
    use pcibox_kit::{Backend, DmaMemory};
    use pcibox_vfio_user::Client;
    use std::os::fd::AsFd;
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    for round in 0..3u32 {
        // A bare client (no kit Device, so nobody tidies up) that vanishes
        // with interrupts on, DMA mapped and bus mastering on.
        let client = Client::connect(&r.path, ClientOptions::default()).unwrap();
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        client.irq_enable(IrqKind::Msix, &[efd.as_fd()]).unwrap();
        let mem = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&mem, 4096).unwrap();
        // SAFETY: the window is file-backed: the client hands the memfd to
        // the server and reaches the memory through the file itself, never
        // through `vaddr` (0, never dereferenced); `mem` outlives `client`.
        unsafe {
            client.dma_map(
                0x20_0000,
                &DmaMemory {
                    vaddr: 0,
                    len: 4096,
                    fd: Some(mem.as_fd()),
                    fd_offset: 0,
                    device_writable: true,
                },
            )
        }
        .unwrap();
        client.config_write(0x04, &0x0006u16.to_le_bytes()).unwrap();
        assert_eq!(fake.irq_enabled(), Some(IrqKind::Msix));
        assert_eq!(fake.mapping_count(), 1);
        drop(client);
        eventually("cleanup after client", || {
            fake.irq_enabled().is_none()
                && fake.mapping_count() == 0
                && fake.resets() > u64::from(round)
        });
        // Bus mastering was cleared.
        assert_eq!(fake.config()[4] & 0x04, 0);
    }
}

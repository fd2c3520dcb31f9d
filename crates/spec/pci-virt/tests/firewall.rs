//! The firewall profile over a real device's config (the virtio-net
//! function of the project's real-VM fixtures) and over a PCI Express
//! device built as a model: what is visible, what is forwarded, denied
//! or virtualised, and lists that loop or point into the header.

#![allow(clippy::unwrap_used)]

use pci::{cap_id, ext_cap_id, Bar, ConfigSpace, MemKind, MsiRepr, MsixRepr, PcieLink};
use pci::{PciePortType, PcieRepr};
use pci_virt::fuzzing::check_chain;
use pci_virt::{Error, Event, FirewallPolicy, Forward, Ids, ModelBuilder, Size, VirtualConfig};

const VIRTIO_NET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../pcibox/tests/data/pci-config/microvm-0000-00-03.0.config.bin"
);

fn read(vc: &VirtualConfig, device: &[u8], at: usize, width: usize) -> u32 {
    let mut b = [0u8; 4];
    b[..width].copy_from_slice(&device[at..at + width]);
    vc.read(at, &mut b[..width]).unwrap();
    u32::from_le_bytes(b)
}

fn caps(bytes: &[u8]) -> Vec<(u8, u8)> {
    let cs = ConfigSpace::new_checked(bytes).unwrap();
    cs.caps()
        .map(|c| c.unwrap())
        .map(|c| (c.offset, c.id))
        .collect()
}

#[test]
fn virtio_net_with_msix_only() {
    let dev = std::fs::read(VIRTIO_NET).unwrap();
    assert_eq!(caps(&dev).len(), 6, "five virtio capabilities and MSI-X");
    let mut bar_sizes = [0; 6];
    bar_sizes[0] = 512 << 10;
    let policy = FirewallPolicy {
        caps: vec![cap_id::MSIX],
        bar_sizes,
        ..FirewallPolicy::default()
    };
    let mut vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    check_chain(&dev, &vc, &policy);
    let view = vc.view(&dev);
    assert_eq!(caps(&view), [(0x98, cap_id::MSIX)]);
    assert_eq!(view[..4], dev[..4], "IDs pass through");
    assert!(
        view[0x40..0x98].iter().all(|&b| b == 0),
        "virtio capabilities hidden"
    );
    assert_eq!(vc.needs_device(0x00, 4), Ok(true));
    assert_eq!(vc.needs_device(0x40, 4), Ok(false));
    // MSI-X starts disabled whatever the device had; enabling it is the
    // owner's job, never forwarded.
    let m = MsixRepr::parse(&dev, 0x98).unwrap();
    let seen = MsixRepr::parse(&view, 0x98).unwrap();
    assert!(m.enable && !seen.enable);
    assert_eq!((seen.table_size, seen.pba_offset), (3, 0x48000));
    let out = vc.write(0x9b, &[0x80]).unwrap();
    assert_eq!(
        out.events,
        vec![Event::MsixControl {
            enabled: true,
            function_mask: false
        }]
    );
    assert_eq!((out.forward, out.virtualised), (None, 0xc0));
    // Command: decode, master and INTx disable go to the device.
    let cmd = read(&vc, &dev, 0x04, 2);
    assert_eq!(cmd, 0x0406);
    let out = vc.write(0x04, &0x0402u16.to_le_bytes()).unwrap();
    assert_eq!(
        out.events,
        vec![Event::CommandChanged {
            old: 0x0406,
            new: 0x0402
        }]
    );
    let f = out.forward.unwrap();
    assert_eq!(
        (f.offset, f.len, f.value, f.mask, f.w1c),
        (4, 2, 0x0402, 0x0547, 0)
    );
    // A dword write over command and status: the error bits written 1 are
    // cleared on the device, the ones written 0 are guarded in a
    // read-modify-write.
    let out = vc.write(0x04, &0x4000_0406u32.to_le_bytes()).unwrap();
    let f = out.forward.unwrap();
    assert_eq!((f.mask, f.w1c), (0xf900_0547, 0xf900_0000));
    assert!(f.needs_current());
    assert_eq!(f.apply(0x8110_0000), 0x4010_0406);
    // BAR 0 is sized from the owner's 512 KiB; the others are absent.
    assert_eq!(read(&vc, &dev, 0x10, 4), 0x0010_0004);
    vc.write(0x10, &[0xff; 4]).unwrap();
    vc.write(0x14, &[0xff; 4]).unwrap();
    assert_eq!(read(&vc, &dev, 0x10, 4), 0xfff8_0004);
    assert_eq!(read(&vc, &dev, 0x14, 4), 0xffff_ffff);
    let out = vc.write(0x18, &[0xff; 4]).unwrap();
    assert_eq!((read(&vc, &dev, 0x18, 4), out.denied), (0, u32::MAX));
    // The interrupt line is virtual.
    let out = vc.write(0x3c, &[0x0b]).unwrap();
    assert_eq!((out.forward, read(&vc, &dev, 0x3c, 1)), (None, 0x0b));
}

/// A PCI Express endpoint with PM, MSI, MSI-X, PCIe v2 (FLR), a vendor
/// capability, and DSN, AER and a vendor extended capability.
fn pcie_device() -> Vec<u8> {
    let msi = MsiRepr::parse(pci_virt::fuzzing::model(0x0c).bytes(), 0x48).unwrap();
    let msix = MsixRepr::parse(pci_virt::fuzzing::model(0).bytes(), 0x60).unwrap();
    let pcie = PcieRepr {
        version: 2,
        port_type: PciePortType::Endpoint,
        slot: false,
        interrupt_message: 0,
        max_payload_supported: 512,
        flr: true,
        device_control: 0x2810,
        device_status: 0,
        link: Some(PcieLink {
            port: 0,
            max_speed: 3,
            max_width: 4,
            aspm_support: 3,
            control: 0,
            speed: 3,
            width: 4,
        }),
    };
    let mut vc = ModelBuilder::new(Size::Extended, &Ids::default())
        .bar(
            0,
            Bar::Memory {
                addr: 0xfe00_0000,
                mem: MemKind::Bits32,
                prefetchable: false,
            },
            0x4000,
        )
        .and_then(|b| b.msi(0x50, &msi))
        .and_then(|b| b.msix(0x70, &msix))
        .and_then(|b| b.pcie(0x80, &pcie))
        .and_then(|b| b.vendor(0xc0, &[1, 2, 3]))
        .and_then(|b| b.ext(0x100, ext_cap_id::DSN, 1, &[1, 2, 3, 4, 5, 6, 7, 8]))
        .and_then(|b| b.ext(0x140, ext_cap_id::AER, 2, &[0; 0x40]))
        .and_then(|b| b.ext(0x200, ext_cap_id::VENDOR, 1, &[9; 8]))
        .unwrap()
        .build();
    vc.poke(0x64, &[0x3]).unwrap(); // MSI pending bits 0 and 1
    vc.bytes().to_vec()
}

#[test]
fn pcie_device_restricted() {
    let dev = pcie_device();
    let policy = FirewallPolicy {
        caps: vec![cap_id::MSI, cap_id::EXP],
        ext_caps: vec![ext_cap_id::AER, ext_cap_id::VENDOR],
        ..FirewallPolicy::default()
    };
    let mut vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    check_chain(&dev, &vc, &policy);
    let view = vc.view(&dev);
    assert_eq!(caps(&view), [(0x50, cap_id::MSI), (0x80, cap_id::EXP)]);
    let cs = ConfigSpace::new_checked(&view[..]).unwrap();
    let ext: Vec<_> = cs
        .ext_caps()
        .map(|c| c.unwrap())
        .map(|c| (c.offset, c.id))
        .collect();
    assert_eq!(
        ext,
        [
            (0x100, 0),
            (0x140, ext_cap_id::AER),
            (0x200, ext_cap_id::VENDOR)
        ]
    );
    assert_eq!(view[0x104..0x10c], [0; 8], "the DSN is hidden");
    // MSI is virtual, its pending bits are the device's.
    assert_eq!(MsiRepr::parse(&view, 0x50).unwrap().pending, Some(3));
    let out = vc.write(0x52, &[0x01]).unwrap();
    assert_eq!(out.forward, None);
    assert_eq!(out.events.len(), 1);
    // Device control: FLR is an event (never forwarded), reporting and
    // MRRS are forwarded, max payload, phantom and aux power denied.
    let devctl = 0x88;
    let out = vc.write(devctl, &0x80ffu16.to_le_bytes()).unwrap();
    assert_eq!(out.events, vec![Event::FlrRequested]);
    let f = out.forward.unwrap();
    assert_eq!((f.mask, f.value), (0x791f, 0x001f));
    assert_eq!(out.denied, 0x00e0, "max payload");
    assert_eq!(read(&vc, &dev, devctl, 2) & 0x8000, 0);
    let out = vc.write(devctl + 1, &[0x06]).unwrap();
    assert_eq!(out.denied, 0x06, "phantom functions and aux power");
    // Link control: no disable, no retrain, nothing forwarded.
    let out = vc.write(0x90, &0x0030u16.to_le_bytes()).unwrap();
    assert_eq!((out.forward, out.denied), (None, 0x30));
    // Device control 2: all but ARI forwarding.
    let out = vc.write(0xa8, &0xffffu16.to_le_bytes()).unwrap();
    assert_eq!(out.forward.map(|f| f.mask), Some(0xffdf));
    assert_eq!(out.denied, 0x20);
    // Without FLR in the policy the bit is simply read-only.
    let policy = FirewallPolicy {
        flr: false,
        ..policy
    };
    let mut vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    let out = vc.write(devctl, &0x8000u16.to_le_bytes()).unwrap();
    assert_eq!((out.events, out.denied), (vec![], 0x8000));
    assert_eq!(out.forward.map(|f| (f.mask, f.value)), Some((0x791f, 0)));
}

#[test]
fn forward_apply() {
    let f = Forward {
        offset: 6,
        len: 2,
        value: 0x0100,
        mask: 0xf900,
        w1c: 0xf900,
    };
    assert_eq!(f.apply(0x8910), 0x0110);
    assert!(f.needs_current());
    let full = Forward {
        offset: 4,
        len: 1,
        value: 0x5,
        mask: 0xff,
        w1c: 0,
    };
    assert_eq!((full.apply(0xaa), full.needs_current()), (0x5, false));
}

#[test]
fn loops_and_bad_pointers_cut_the_list() {
    let mut dev = vec![0u8; 4096];
    dev[0x06] = 0x10;
    dev[0x34] = 0x40;
    dev[0x40..0x42].copy_from_slice(&[cap_id::VENDOR, 0x50]);
    dev[0x50..0x52].copy_from_slice(&[cap_id::MSIX, 0x40]); // back to 0x40
    let ext = |id: u32, next: u32| (id | 1 << 16 | next << 20).to_le_bytes();
    dev[0x100..0x104].copy_from_slice(&ext(1, 0x180));
    dev[0x180..0x184].copy_from_slice(&ext(3, 0x100)); // back to 0x100
    let policy = FirewallPolicy {
        caps: vec![cap_id::VENDOR, cap_id::MSIX],
        ext_caps: vec![ext_cap_id::AER, ext_cap_id::DSN],
        ..FirewallPolicy::default()
    };
    let vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    check_chain(&dev, &vc, &policy);
    let view = vc.view(&dev);
    assert_eq!(caps(&view), [(0x40, cap_id::VENDOR), (0x50, cap_id::MSIX)]);
    let cs = ConfigSpace::new_checked(&view[..]).unwrap();
    assert_eq!(cs.ext_caps().count(), 2, "the loop is cut");
    // A pointer into the header ends the list where it was.
    dev[0x51] = 0x10;
    let vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    assert_eq!(
        caps(&vc.view(&dev)),
        [(0x40, cap_id::VENDOR), (0x50, cap_id::MSIX)]
    );
    // A capability whose known length does not fit is dropped.
    dev[0x41..0x43].copy_from_slice(&[0x44, 8]);
    dev[0x44..0x46].copy_from_slice(&[cap_id::MSIX, 0]);
    let vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    assert_eq!(caps(&vc.view(&dev)), [(0x44, cap_id::MSIX)]);
}

#[test]
fn refusals() {
    let dev = std::fs::read(VIRTIO_NET).unwrap();
    let p = FirewallPolicy::default();
    assert_eq!(
        VirtualConfig::firewall(&dev[..64], &p).err(),
        Some(Error::DeviceSize(64))
    );
    let mut bridge = dev.clone();
    bridge[0x0e] = 0x01;
    assert_eq!(
        VirtualConfig::firewall(&bridge, &p).err(),
        Some(Error::Header(1))
    );
    for slot in [1, 2] {
        let mut p = FirewallPolicy::default();
        p.bar_sizes[slot] = 0x1000;
        let r = VirtualConfig::firewall(&dev, &p);
        assert!(matches!(r, Err(Error::Bar { .. })), "slot {slot}: {r:?}");
    }
}

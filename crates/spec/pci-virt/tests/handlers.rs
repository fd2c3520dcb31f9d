//! Unit tests of a model's registers and of each handler: access rules,
//! BAR sizing, MSI, MSI-X, PM, PCI Express, the built chains and the
//! builder's refusals.

#![allow(clippy::unwrap_used)]

use pci::{cap_id, ext_cap_id, Bar, ConfigSpace, MemKind, MsiRepr, PmRepr};
use pci_virt::{Error, Event, Ids, ModelBuilder, Size, VirtualConfig, WriteOutcome};

/// The fuzz model: 64-bit prefetchable BAR 0 (16 KiB), I/O BAR 2 (32
/// bytes), 32-bit BAR 3 (4 KiB); PM at 0x40 (D1, D2 unless 0x10), MSI at
/// 0x48 (8 vectors; 64-bit with 0x04, masking with 0x08), MSI-X at 0x60,
/// PCI Express at 0x70 (v2 with 0x20, FLR with 0x40), vendor at 0xb0; ROM
/// with 0x80; DSN at 0x100 and AER at 0x140 with 0x02.
fn model(ctl: u8) -> VirtualConfig {
    pci_virt::fuzzing::model(ctl)
}

fn read(vc: &VirtualConfig, at: usize, width: usize) -> u32 {
    let mut b = [0u8; 4];
    vc.read(at, &mut b[..width]).unwrap();
    u32::from_le_bytes(b)
}

fn write(vc: &mut VirtualConfig, at: usize, width: usize, v: u32) -> WriteOutcome {
    vc.write(at, &v.to_le_bytes()[..width]).unwrap()
}

#[test]
fn access_checks() {
    let mut vc = model(0);
    assert_eq!(
        vc.write(0xff, &[0, 0]),
        Err(Error::OutOfRange {
            offset: 0xff,
            len: 2,
            size: 256
        })
    );
    assert_eq!(vc.write(0x40, &[0; 3]), Err(Error::BadWidth { len: 3 }));
    assert_eq!(vc.write(0x40, &[]), Err(Error::BadWidth { len: 0 }));
    assert!(vc.read(0x100, &mut [0]).is_err());
    assert!(vc.read(usize::MAX, &mut [0]).is_err());
    assert!(vc.poke(0xfe, &[0; 4]).is_err());
    let ext = model(2);
    assert_eq!(read(&ext, 0xffc, 4), 0);
    assert!(ext.read(0xffd, &mut [0; 4]).is_err());
    assert_eq!(vc.needs_device(0, 4), Ok(false));
}

#[test]
fn unaligned_and_cross_register_writes() {
    let mut vc = model(0);
    // Bytes 3..7: device ID high byte (read-only), the command register,
    // the status register's low byte.
    let out = vc.write(0x03, &[0xff, 0x06, 0x04, 0x00]).unwrap();
    assert_eq!(read(&vc, 0x02, 2), 0x0010, "device ID kept");
    assert_eq!(read(&vc, 0x04, 2), 0x0406);
    assert_eq!(
        out.events,
        vec![Event::CommandChanged {
            old: 0,
            new: 0x0406
        }]
    );
    // 0xff over 0x00 in the device ID is denied; nothing is forwarded.
    assert_eq!(out.denied & 0xff, 0xff);
    assert_eq!(out.forward, None);
    // A word write straddling the status register and the revision ID.
    let out = vc.write(0x07, &[0xff, 0xff]).unwrap();
    assert_eq!(read(&vc, 0x08, 1), 0, "revision kept");
    assert_eq!(
        out.denied,
        0xff00 | 0x06,
        "status bits 9-10 and revision denied"
    );
    // The command register's read-only bits stay 0.
    write(&mut vc, 0x04, 2, 0xffff);
    assert_eq!(read(&vc, 0x04, 2), 0x0547);
}

#[test]
fn status_write_one_to_clear() {
    let mut vc = model(0);
    vc.poke(0x06, &0xf910u16.to_le_bytes()).unwrap();
    let out = write(&mut vc, 0x06, 2, 0x0100);
    assert_eq!(read(&vc, 0x06, 2), 0xf810);
    assert_eq!(out.denied, 0);
    write(&mut vc, 0x06, 2, 0);
    assert_eq!(read(&vc, 0x06, 2), 0xf810, "writing 0 clears nothing");
    write(&mut vc, 0x04, 4, 0xffff_0000);
    assert_eq!(
        read(&vc, 0x06, 2),
        0x0010,
        "capability list bit is read-only"
    );
}

#[test]
fn bars_size_and_move() {
    let mut vc = model(0x80);
    let probe = |vc: &mut VirtualConfig, at| {
        let out = write(vc, at, 4, u32::MAX);
        assert!(out.events.is_empty(), "{out:?}");
        read(vc, at, 4)
    };
    assert_eq!(read(&vc, 0x10, 4), 0xfe00_000c);
    assert_eq!(probe(&mut vc, 0x10), 0xffff_c00c);
    assert_eq!(probe(&mut vc, 0x14), 0xffff_ffff);
    assert_eq!(probe(&mut vc, 0x18), 0xffff_ffe1, "I/O, 32 bytes");
    assert_eq!(probe(&mut vc, 0x1c), 0xffff_f000, "32-bit, 4 KiB");
    assert_eq!(probe(&mut vc, 0x24), 0, "unimplemented BAR 5");
    assert_eq!(probe(&mut vc, 0x30), 0xffff_0001, "64 KiB ROM, enable bit");
    let out = write(&mut vc, 0x30, 4, 0xffff_fffe);
    assert_eq!((out.events, read(&vc, 0x30, 4)), (vec![], 0xffff_0000));
    let out = write(&mut vc, 0x30, 4, 0xc001_2345);
    assert_eq!(
        out.events,
        vec![Event::RomChanged {
            addr: 0xc001_0000,
            enabled: true
        }]
    );
    // Moving the 64-bit BAR: nothing while either half holds a probe, then
    // each half reports as it lands.
    let out = write(&mut vc, 0x14, 4, 1);
    assert_eq!(out.events, vec![], "low half still probing");
    let out = write(&mut vc, 0x10, 4, 0x8000_4000);
    assert_eq!(
        out.events,
        vec![Event::BarMoved {
            bar: 0,
            addr: 0x1_8000_4000
        }]
    );
    let out = write(&mut vc, 0x14, 4, 2);
    assert_eq!(
        out.events,
        vec![Event::BarMoved {
            bar: 0,
            addr: 0x2_8000_4000
        }]
    );
    write(&mut vc, 0x14, 4, 1);
    let bars: Vec<_> = ConfigSpace::new_checked(vc.bytes())
        .unwrap()
        .bars()
        .collect();
    assert_eq!(
        bars[0].1,
        Bar::Memory {
            addr: 0x1_8000_4000,
            mem: MemKind::Bits64,
            prefetchable: true
        }
    );
    // A byte write moves the address within the size's alignment only.
    write(&mut vc, 0x1c, 4, 0xfe00_0000);
    write(&mut vc, 0x1c, 1, 0xff);
    assert_eq!(read(&vc, 0x1c, 4), 0xfe00_0000);
    let out = write(&mut vc, 0x1d, 1, 0xff);
    assert_eq!(read(&vc, 0x1c, 4), 0xfe00_f000);
    assert_eq!(
        out.events,
        vec![Event::BarMoved {
            bar: 3,
            addr: 0xfe00_f000
        }]
    );
}

#[test]
fn msi() {
    let mut vc = model(0x0c);
    let at = 0x48;
    let m = MsiRepr::parse(vc.bytes(), at).unwrap();
    assert!(m.is_64bit && m.per_vector_masking);
    assert_eq!(m.vectors_capable(), 8);
    let out = write(&mut vc, at + 2, 2, 0x0021);
    assert_eq!(
        out.events,
        vec![Event::MsiControl {
            enabled: true,
            vectors_log2: 2
        }]
    );
    // More vectors than capable: refused, the old value stays.
    let out = write(&mut vc, at + 2, 2, 0x0051);
    assert_eq!(out.events, vec![]);
    assert_eq!(out.denied & 0x70, 0x70);
    assert_eq!(read(&vc, at + 2, 2) & 0x71, 0x21);
    write(&mut vc, at + 4, 4, 0xfee0_1003);
    let out = write(&mut vc, at + 8, 4, 0x1);
    assert_eq!(
        out.events,
        vec![Event::MsiMessage {
            address: 0x1_fee0_1000,
            data: 0
        }]
    );
    let out = write(&mut vc, at + 0xc, 2, 0x4041);
    assert_eq!(
        out.events,
        vec![Event::MsiMessage {
            address: 0x1_fee0_1000,
            data: 0x4041
        }]
    );
    let out = write(&mut vc, at + 0x10, 4, u32::MAX);
    assert_eq!(out.events, vec![Event::MsiMask { mask: 0xff }]);
    vc.poke(at + 0x14, &[0x5]).unwrap();
    let out = write(&mut vc, at + 0x14, 4, 0xa);
    assert_eq!(
        (out.denied, read(&vc, at + 0x14, 4)),
        (0xa, 0x5),
        "pending is read-only"
    );
    assert_eq!(out.forward, None, "a model forwards nothing");
    // A 32-bit capability without masking: data right after the address.
    let mut vc = model(0);
    write(&mut vc, at + 8, 2, 0x1234);
    assert_eq!(MsiRepr::parse(vc.bytes(), at).unwrap().data, 0x1234);
}

#[test]
fn msix() {
    let mut vc = model(0);
    let out = write(&mut vc, 0x62, 2, 0xffff);
    assert_eq!(
        out.events,
        vec![Event::MsixControl {
            enabled: true,
            function_mask: true
        }]
    );
    assert_eq!(read(&vc, 0x62, 2), 0xc00f, "table size is read-only");
    let out = write(&mut vc, 0x63, 1, 0x80);
    assert_eq!(
        out.events,
        vec![Event::MsixControl {
            enabled: true,
            function_mask: false
        }]
    );
    write(&mut vc, 0x64, 4, 0);
    assert_eq!(read(&vc, 0x64, 4), 0x2000, "table location is read-only");
}

#[test]
fn power_management() {
    let mut vc = model(0);
    let out = write(&mut vc, 0x44, 2, 3);
    assert_eq!(out.events, vec![Event::PowerState { from: 0, to: 3 }]);
    let out = write(&mut vc, 0x44, 2, 1);
    assert_eq!(out.events, vec![Event::PowerState { from: 3, to: 1 }]);
    // D0/D3hot only: D1 and D2 refused even though PMC offers D1.
    let mut only = model(0x10);
    assert!(PmRepr::parse(only.bytes(), 0x40).unwrap().d1);
    let out = write(&mut only, 0x44, 2, 1);
    assert_eq!((out.events, out.denied), (vec![], 3));
    let out = write(&mut only, 0x44, 2, 2);
    assert_eq!((out.events, read(&only, 0x44, 2) & 3), (vec![], 0));
    // PME enable is writable, PME status write-1-to-clear, NSR read-only.
    only.poke(0x45, &[0x80]).unwrap();
    write(&mut only, 0x44, 2, 0x8100);
    assert_eq!(read(&only, 0x44, 2), 0x0108);
}

#[test]
fn pci_express() {
    let mut vc = model(0x60);
    let devctl = 0x78;
    let out = write(&mut vc, devctl, 2, 0x8000 | 0x2810);
    assert_eq!(out.events, vec![Event::FlrRequested]);
    assert_eq!(read(&vc, devctl, 2), 0x2810, "FLR reads 0");
    // Phantom functions and aux power are read-only.
    let out = write(&mut vc, devctl, 2, 0x0600 | 0x2810);
    assert_eq!(out.denied, 0x0600);
    // Without FLR capability the bit is read-only and raises nothing.
    let mut no_flr = model(0x20);
    let out = write(&mut no_flr, devctl, 2, 0x8000);
    assert_eq!((out.events, out.denied & 0x8000), (vec![], 0x8000));
    // Device status errors are write-1-to-clear.
    vc.poke(0x7a, &[0x0f]).unwrap();
    write(&mut vc, 0x7a, 2, 0x5);
    assert_eq!(read(&vc, 0x7a, 2), 0xa);
    // Device control 2: completion timeout only.
    write(&mut vc, 0x98, 2, 0xffff);
    assert_eq!(read(&vc, 0x98, 2), 0x1f);
}

#[test]
fn chains_in_offset_order() {
    let vc = model(2);
    let cs = ConfigSpace::new_checked(vc.bytes()).unwrap();
    let ids: Vec<_> = cs.caps().map(|c| c.unwrap().id).collect();
    let want = [
        cap_id::PM,
        cap_id::MSI,
        cap_id::MSIX,
        cap_id::EXP,
        cap_id::VENDOR,
    ];
    assert_eq!(ids, want);
    let ext: Vec<_> = cs.ext_caps().map(|c| c.unwrap().id).collect();
    assert_eq!(ext, [ext_cap_id::DSN, ext_cap_id::AER]);
    // The next pointers are read-only.
    let mut vc = vc;
    let out = write(&mut vc, 0x40, 2, 0xffff);
    assert_eq!((out.denied, read(&vc, 0x40, 2)), (0xb7fe, 0x4801));
    // Extended capabilities not starting at 0x100 get a link header there.
    let vc = ModelBuilder::new(Size::Extended, &Ids::default())
        .ext(0x200, ext_cap_id::DSN, 1, &[0; 8])
        .unwrap()
        .build();
    let cs = ConfigSpace::new_checked(vc.bytes()).unwrap();
    let ext: Vec<_> = cs.ext_caps().map(|c| c.unwrap()).collect();
    assert_eq!(
        ext.iter().map(|c| (c.offset, c.id)).collect::<Vec<_>>(),
        [(0x100, 0), (0x200, ext_cap_id::DSN)]
    );
    // No capabilities: no list bit, no pointer.
    let vc = ModelBuilder::new(Size::Conventional, &Ids::default()).build();
    assert_eq!(read(&vc, 0x06, 2) & 0x10, 0);
}

#[test]
fn builder_refusals() {
    let b = || ModelBuilder::new(Size::Conventional, &Ids::default());
    let mem64 = Bar::Memory {
        addr: 0,
        mem: MemKind::Bits64,
        prefetchable: false,
    };
    let place = |r: Result<ModelBuilder, Error>| matches!(r, Err(Error::Placement { .. }));
    let bar = |r: Result<ModelBuilder, Error>| matches!(r, Err(Error::Bar { .. }));
    assert!(place(b().vendor(0x42, &[])));
    assert!(place(b().vendor(0x3c, &[])));
    assert!(place(b().vendor(0xfc, &[0, 0])));
    assert!(place(b().ext(0x100, 1, 1, &[])));
    assert!(place(b().vendor(0x40, &[0; 8]).unwrap().vendor(0x48, &[])));
    assert!(place(b().interrupt_pin(5)));
    assert!(bar(b().bar(5, mem64, 0x1000)));
    assert!(bar(b()
        .bar(0, mem64, 0x1000)
        .unwrap()
        .bar(1, mem64, 0x1000)));
    assert!(bar(b().bar(0, mem64, 0x1001)));
    assert!(bar(b().bar(0, mem64, 8)));
    assert!(bar(b().bar(0, Bar::Io { port: 0 }, 1 << 32)));
    assert!(bar(b().bar(0, Bar::Unused, 0x1000)));
    assert!(bar(b().bar(6, Bar::Io { port: 0 }, 4)));
    assert!(bar(b().rom(0x400)));
    let mut msi = MsiRepr::parse(model(0).bytes(), 0x48).unwrap();
    msi.address = 1 << 40;
    assert!(place(b().msi(0x40, &msi)));
}

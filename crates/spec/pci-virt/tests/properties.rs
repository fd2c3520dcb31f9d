//! Property tests over models and firewalls: whatever the sequence of
//! writes, read-only bits never change, write-1-to-clear bits only clear
//! where written 1, forwarded writes touch only pass-through bits; BAR
//! sizing reads back the size mask with the type bits; a filtered chain is
//! acyclic, bounded and a subset of the device's with allowed IDs only.

#![allow(clippy::unwrap_used)]

use pci::{Bar, MemKind};
use pci_virt::fuzzing::{self, check_chain, check_forward, check_read_only, check_w1c};
use pci_virt::{Event, Ids, ModelBuilder, Size, VirtualConfig};
use proptest::prelude::*;

/// Bytes of the fuzz model where a list is decided: the status register,
/// the capability pointer, each capability's ID, next pointer and length
/// or control byte, and the extended headers at 0x100 and 0x140.
const SPOTS: [usize; 21] = [
    0x06, 0x34, 0x40, 0x41, 0x48, 0x49, 0x4a, 0x60, 0x61, 0x70, 0x71, 0x72, 0xb0, 0xb1, 0xb2,
    0x100, 0x102, 0x103, 0x140, 0x142, 0x143,
];

/// A device's config space: the fuzz model (every capability kind, both
/// lists) with some of its list bytes overwritten, so that loops, pointers
/// into the header or past the end, unknown IDs and capabilities that do
/// not fit all occur; or random bytes with a type 0 header.
fn device() -> impl Strategy<Value = Vec<u8>> {
    let pokes = prop::collection::vec((prop::sample::select(SPOTS.to_vec()), any::<u8>()), 0..8);
    let random = prop::collection::vec(any::<u8>(), 256);
    prop_oneof![
        3 => (any::<u8>(), pokes).prop_map(|(ctl, pokes)| {
            let mut b = fuzzing::model(ctl & !1).bytes().to_vec();
            for (at, v) in pokes {
                if let Some(x) = b.get_mut(at) {
                    *x = v;
                }
            }
            b
        }),
        1 => random.prop_map(|mut b| {
            b[0x0e] = 0;
            b[0x06] |= 0x10;
            b
        }),
    ]
}

/// A space to write to and the device bytes behind it: a model (options
/// from a byte) or a firewall over a device.
fn space() -> impl Strategy<Value = (VirtualConfig, Vec<u8>)> {
    prop_oneof![
        any::<u8>().prop_map(|ctl| {
            let vc = fuzzing::model(ctl & !1);
            let n = vc.len();
            (vc, vec![0; n])
        }),
        (device(), any::<u8>(), any::<u8>()).prop_map(|(d, sel, ctl)| {
            let vc = VirtualConfig::firewall(&d, &fuzzing::policy(&d, sel, ctl)).unwrap();
            (vc, d)
        }),
    ]
}

/// Writes: offsets mostly in the header and capability area, widths 1, 2
/// and 4 at any alignment, values biased to all ones and zero.
fn writes() -> impl Strategy<Value = Vec<(usize, usize, u32)>> {
    prop::collection::vec(
        (
            prop_oneof![3 => 0usize..0x100, 1 => 0usize..0x1000],
            prop::sample::select(vec![1usize, 2, 4]),
            prop_oneof![any::<u32>(), Just(u32::MAX), Just(0)],
        ),
        0..64,
    )
}

/// Runs `writes` on `vc`, calling `check` with the space before and after
/// each write that was in range.
fn each_write(
    vc: &mut VirtualConfig,
    writes: &[(usize, usize, u32)],
    mut check: impl FnMut(&VirtualConfig, &VirtualConfig, usize, &[u8], &pci_virt::WriteOutcome),
) {
    for &(offset, width, value) in writes {
        let data = &value.to_le_bytes()[..width];
        let before = vc.clone();
        if let Ok(out) = vc.write(offset, data) {
            check(&before, vc, offset, data, &out);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn read_only_bits_never_change((mut vc, _) in space(), w in writes()) {
        each_write(&mut vc, &w, |b, a, off, d, _| check_read_only(b, a, off, d.len()));
    }

    #[test]
    fn w1c_bits_clear_only_when_written_one((mut vc, _) in space(), w in writes()) {
        each_write(&mut vc, &w, |b, a, off, d, _| check_w1c(b, a, off, d));
    }

    #[test]
    fn forwarded_writes_touch_only_passthrough_bits((mut vc, _) in space(), w in writes()) {
        each_write(&mut vc, &w, |_, a, off, d, out| check_forward(a, off, d, out));
    }

    #[test]
    fn reads_overlay_virtual_bits((mut vc, device) in space(), w in writes()) {
        each_write(&mut vc, &w, |_, a, off, d, _| fuzzing::check_read(a, &device, off, d.len()));
    }

    #[test]
    fn filtered_chain_is_a_bounded_subset(d in device(), sel in any::<u8>(), ctl in any::<u8>()) {
        let policy = fuzzing::policy(&d, sel, ctl);
        let vc = VirtualConfig::firewall(&d, &policy).unwrap();
        check_chain(&d, &vc, &policy);
    }

    #[test]
    fn bar_sizing(
        kind in 0usize..4,
        log2 in 4u32..40,
        addr in any::<u64>(),
        value in any::<u32>(),
    ) {
        let (bar, log2) = match kind {
            0 => (Bar::Io { port: addr as u32 & !3 }, log2.clamp(2, 8)),
            1 => (Bar::Memory { addr: addr & 0xffff_fff0, mem: MemKind::Bits32, prefetchable: false }, log2.min(31)),
            2 => (Bar::Memory { addr: addr & 0xf_ffff, mem: MemKind::Below1M, prefetchable: false }, log2.min(20)),
            _ => (Bar::Memory { addr, mem: MemKind::Bits64, prefetchable: true }, log2),
        };
        let size = 1u64 << log2;
        let mut vc = ModelBuilder::new(Size::Conventional, &Ids::default())
            .bar(1, bar, size).unwrap().build();
        let read = |vc: &VirtualConfig, at: usize| {
            let mut b = [0u8; 4];
            vc.read(at, &mut b).unwrap();
            u32::from_le_bytes(b)
        };
        let lo0 = read(&vc, 0x14);
        let type_bits = if kind == 0 { 0x3 } else { 0xf };
        let mask = !(size - 1) & if kind == 0 { !3 } else { !0xf };
        // All ones reads back the size mask with the type bits unchanged.
        let out = vc.write(0x14, &u32::MAX.to_le_bytes()).unwrap();
        prop_assert_eq!(read(&vc, 0x14), mask as u32 | (lo0 & type_bits));
        prop_assert!(out.events.is_empty(), "a sizing probe moved the BAR: {:?}", out.events);
        if kind == 3 {
            vc.write(0x18, &u32::MAX.to_le_bytes()).unwrap();
            prop_assert_eq!(read(&vc, 0x18), (mask >> 32) as u32);
        }
        // Any other value lands as an address aligned to the size.
        vc.write(0x18, &0u32.to_le_bytes()).unwrap();
        let out = vc.write(0x14, &value.to_le_bytes()).unwrap();
        let lo = read(&vc, 0x14);
        prop_assert_eq!(lo & type_bits, lo0 & type_bits);
        prop_assert_eq!(lo & !type_bits, value & mask as u32);
        let expect = u64::from(lo & !type_bits);
        if value & mask as u32 != mask as u32 || mask as u32 == 0 {
            let moved = |e: &Event| matches!(e, Event::BarMoved { bar: 1, addr } if *addr == expect);
            prop_assert!(out.events.iter().all(moved), "events {:?}", out.events);
        }
    }

    #[test]
    fn fuzz_body_never_panics(data in prop::collection::vec(any::<u8>(), 0..700)) {
        fuzzing::run(&data);
    }
}

//! Property tests of the parsers: what is emitted parses back; BAR
//! decoding keeps its invariants. (Rendering and the walks over arbitrary
//! bytes are exercised by `pci-lspci`'s property tests and fuzz target.)

#![allow(clippy::unwrap_used)]

use pci::{cap_id, Bar, ConfigSpace, MsiRepr};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// MSI: what emit writes, parse reads back; read-only layout bits stay.
    #[test]
    fn msi_round_trip(ctl in any::<u16>(), addr in any::<u64>(), data in any::<u16>(),
                      mask in any::<u32>(), enable in any::<bool>(), mme in 0u8..6) {
        let mut b = vec![0u8; 256];
        b[0x50] = cap_id::MSI;
        b[0x52..0x54].copy_from_slice(&ctl.to_le_bytes());
        let mut m = MsiRepr::parse(&b, 0x50).unwrap();
        m.enable = enable;
        m.multiple_message_enable = mme;
        m.address = if m.is_64bit { addr } else { addr & 0xffff_ffff };
        m.data = data;
        if m.per_vector_masking { m.mask = Some(mask); }
        m.emit(&mut b, 0x50).unwrap();
        let back = MsiRepr::parse(&b, 0x50).unwrap();
        prop_assert_eq!(back, m);
        prop_assert_eq!(b[0x52] & 0x8e, (ctl as u8) & 0x8e);
    }

    /// BAR decoding: addresses keep no flag bits; 64-bit BARs take a slot.
    #[test]
    fn bars(raw in prop::array::uniform6(any::<u32>())) {
        let mut b = [0u8; 64];
        for (i, r) in raw.iter().enumerate() {
            b[0x10 + 4 * i..0x14 + 4 * i].copy_from_slice(&r.to_le_bytes());
        }
        let c = ConfigSpace::new_checked(&b[..]).unwrap();
        let slots: Vec<_> = c.bars().collect();
        prop_assert_eq!(slots.len(), 6);
        for (i, (slot, bar)) in slots.iter().enumerate() {
            prop_assert_eq!(i, *slot);
            match bar {
                Bar::Io { port } => prop_assert_eq!(port & 3, 0),
                Bar::Memory { addr, .. } => prop_assert_eq!(addr & 0xf, 0),
                Bar::Upper => prop_assert!(i > 0 && slots[i - 1].1.is_64bit()),
                _ => {}
            }
        }
    }
}

//! Property tests: every repr round-trips through its view, ring arithmetic
//! holds for any geometry, and the fuzz oracle accepts arbitrary bytes.

use e1000_spec::desc::{RxErrors, RxStatus, TxCmd, TxStatus};
use e1000_spec::ring::Ring;
use e1000_spec::{
    mac_from_ral_rah, ral_rah_from_mac, MacAddress, RxDesc, RxDescRepr, TxDesc, TxDescRepr,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn rx_repr_round_trips(addr: u64, length: u16, checksum: u16, status: u8, errors: u8, special: u16) {
        let repr = RxDescRepr {
            buffer_addr: addr,
            length,
            checksum,
            status: RxStatus::from_bits_retain(status),
            errors: RxErrors::from_bits_retain(errors),
            special,
        };
        let mut b = [0u8; 16];
        repr.emit(&mut RxDesc::new_unchecked(&mut b[..]));
        let back = RxDescRepr::parse(&RxDesc::new_checked(&b[..]).expect("16 bytes")).expect("legacy");
        prop_assert_eq!(back, repr);
    }

    #[test]
    fn tx_repr_round_trips_unless_dext(addr: u64, length: u16, cso: u8, cmd: u8, sta: u8, css: u8, special: u16) {
        let repr = TxDescRepr {
            buffer_addr: addr,
            length,
            cso,
            cmd: TxCmd::from_bits_retain(cmd),
            status: TxStatus::from_bits_retain(sta),
            css,
            special,
        };
        let mut b = [0u8; 16];
        repr.emit(&mut TxDesc::new_unchecked(&mut b[..]));
        let back = TxDescRepr::parse(&TxDesc::new_checked(&b[..]).expect("16 bytes"));
        if cmd & TxCmd::DEXT.bits() != 0 {
            prop_assert!(back.is_err());
        } else {
            prop_assert_eq!(back, Ok(repr));
        }
    }

    #[test]
    fn ring_indices(len8 in 1u32..=8192, a: u32, b: u32, n: u32) {
        let ring = Ring::new(len8 * 8).expect("valid length");
        let len = ring.len();
        let d = ring.distance(a, b);
        prop_assert!(d < len);
        prop_assert_eq!(ring.advance(a, d), b % len);
        prop_assert_eq!(ring.distance(a, ring.advance(a, n % len)), n % len);
        prop_assert_eq!(ring.in_flight(a, b) + ring.free(a, b), len - 1);
        prop_assert_eq!(ring.distance(a, b) + ring.distance(b, a), if a % len == b % len { 0 } else { len });
    }

    #[test]
    fn mac_registers_round_trip(mac: [u8; 6]) {
        let (ral, rah) = ral_rah_from_mac(MacAddress(mac));
        prop_assert_eq!(mac_from_ral_rah(ral, rah), Some(MacAddress(mac)));
    }

    #[test]
    fn mta_hash_in_range(mac: [u8; 6], mo in 0u8..4) {
        let (reg, bit) = e1000_spec::mta_hash(MacAddress(mac), mo);
        prop_assert!(reg < 128 && bit < 32);
    }

    #[test]
    fn oracle_accepts_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        e1000_spec::check_descriptor_bytes(&data);
    }
}

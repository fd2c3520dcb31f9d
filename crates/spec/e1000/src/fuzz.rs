//! The oracle behind the `e1000_descriptors` fuzz target, shared with the
//! stable test that replays its corpus.

use crate::desc::{RxDesc, RxDescRepr, RxExtDesc, RxExtDescRepr, TxDesc, TxDescRepr, DESC_LEN};
use crate::ring::Ring;
use crate::{regs::Ivar, Error};

/// Feed arbitrary bytes (as a device or a hostile peer might leave them in
/// descriptor memory) through every view and repr, and through the ring
/// arithmetic. Panics if an invariant breaks:
/// - views refuse short buffers and accept 16-byte ones;
/// - every legacy/extended receive descriptor parses, and emitting the repr
///   reproduces the bytes exactly; a transmit descriptor parses unless DEXT
///   is set, and then reproduces its bytes too;
/// - ring indices derived from the bytes stay in range and agree with each
///   other; IVAR decodes and re-encodes to a canonical value.
pub fn check_descriptor_bytes(data: &[u8]) {
    if data.len() < DESC_LEN {
        assert!(matches!(
            RxDesc::new_checked(data),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            RxExtDesc::new_checked(data),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            TxDesc::new_checked(data),
            Err(Error::Truncated { .. })
        ));
    }
    for chunk in data.chunks(DESC_LEN) {
        check_chunk(chunk);
    }
}

fn check_chunk(chunk: &[u8]) {
    let Ok(rx) = RxDesc::new_checked(chunk) else {
        assert!(chunk.len() < DESC_LEN);
        return;
    };
    let mut out = [0u8; DESC_LEN];
    let repr = RxDescRepr::parse(&rx).expect("every 16 bytes are a legacy rx descriptor");
    repr.emit(&mut RxDesc::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &chunk[..DESC_LEN], "legacy rx round trip");

    let ext = RxExtDesc::new_checked(chunk).expect("length checked above");
    let repr = RxExtDescRepr::parse(&ext).expect("every 16 bytes are an extended rx write-back");
    assert_eq!(repr.status(), ext.status());
    assert_eq!(repr.errors(), ext.errors());
    out.fill(0);
    repr.emit(&mut RxExtDesc::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &chunk[..DESC_LEN], "extended rx round trip");

    let tx = TxDesc::new_checked(chunk).expect("length checked above");
    match TxDescRepr::parse(&tx) {
        Ok(repr) => {
            out.fill(0);
            repr.emit(&mut TxDesc::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], &chunk[..DESC_LEN], "tx round trip");
        }
        Err(e) => assert_eq!(e, Error::NotLegacy),
    }

    // Ring arithmetic with a length and indices taken from the bytes.
    let len = (u32::from(u16::from_le_bytes([chunk[0], chunk[1]])) + 1).next_multiple_of(8);
    let ring = Ring::new(len).expect("multiple of 8 in 8..=65536");
    let a = u32::from_le_bytes([chunk[2], chunk[3], chunk[4], chunk[5]]);
    let b = u32::from_le_bytes([chunk[6], chunk[7], chunk[8], chunk[9]]);
    let n = u32::from_le_bytes([chunk[10], chunk[11], chunk[12], chunk[13]]) % len;
    let d = ring.distance(a, b);
    assert!(d < len);
    assert_eq!(ring.advance(a, d), b % len);
    assert_eq!(ring.distance(a, ring.advance(a, n)), n);
    assert_eq!(ring.in_flight(a, b) + ring.free(a, b), len - 1);
    assert!(ring.offset(a) + DESC_LEN <= ring.bytes() as usize);

    // IVAR: decode anything; re-encoding succeeds iff every valid vector < 5.
    let v = u32::from_le_bytes([chunk[12], chunk[13], chunk[14], chunk[15]]);
    let ivar = Ivar::decode(v);
    match ivar.encode() {
        Ok(enc) => assert_eq!(Ivar::decode(enc), ivar),
        Err(Error::BadVector(x)) => assert!(x >= crate::regs::MSIX_VECTORS),
        Err(e) => panic!("unexpected IVAR error {e}"),
    }
}

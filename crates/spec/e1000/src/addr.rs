//! MAC addresses: the receive-address registers, the EEPROM words and the
//! multicast table hash.

use crate::regs::RAH_AV;
use std::fmt;

/// A 48-bit Ethernet address in transmission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// The broadcast address.
    pub const BROADCAST: MacAddress = MacAddress([0xFF; 6]);

    /// Unicast (I/G bit clear) and not all zeros: usable as a station address.
    pub fn is_valid_station(&self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The address in a RAL/RAH pair, or `None` when RAH.AV (address valid) is
/// clear. RAL holds bytes 0..4 little-endian, RAH bits 15:0 bytes 4..6.
pub fn mac_from_ral_rah(ral: u32, rah: u32) -> Option<MacAddress> {
    if rah & RAH_AV == 0 {
        return None;
    }
    let l = ral.to_le_bytes();
    let h = rah.to_le_bytes();
    Some(MacAddress([l[0], l[1], l[2], l[3], h[0], h[1]]))
}

/// The RAL and RAH values (with AV set) that make `mac` a filter entry.
pub fn ral_rah_from_mac(mac: MacAddress) -> (u32, u32) {
    let b = mac.0;
    let ral = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let rah = u32::from_le_bytes([b[4], b[5], 0, 0]) | RAH_AV;
    (ral, rah)
}

/// The address in EEPROM words 0, 1 and 2 (each word little-endian).
pub fn mac_from_eeprom_words(words: [u16; 3]) -> MacAddress {
    let [a, b] = words[0].to_le_bytes();
    let [c, d] = words[1].to_le_bytes();
    let [e, f] = words[2].to_le_bytes();
    MacAddress([a, b, c, d, e, f])
}

/// Where a multicast address lands in the 4096-bit MTA for RCTL.MO = `mo`
/// (0..=3): returns (register index 0..128, bit 0..32). The hash is 12 bits
/// taken from the last two address bytes, starting at bit `4 - mo` of byte 4
/// (MO=3 takes byte 4 whole).
pub fn mta_hash(mac: MacAddress, mo: u8) -> (u32, u32) {
    let shift = match mo & 3 {
        0 => 4,
        1 => 3,
        2 => 2,
        _ => 0,
    };
    let hash = ((u32::from(mac.0[4]) >> shift) | (u32::from(mac.0[5]) << (8 - shift))) & 0xFFF;
    (hash >> 5, hash & 0x1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_default_mac_round_trips() {
        let mac = MacAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        let (ral, rah) = ral_rah_from_mac(mac);
        assert_eq!((ral, rah), (0x1200_5452, 0x8000_5634));
        assert_eq!(mac_from_ral_rah(ral, rah), Some(mac));
        assert_eq!(mac_from_ral_rah(ral, rah & !RAH_AV), None);
        assert_eq!(mac_from_eeprom_words([0x5452, 0x1200, 0x5634]), mac);
        assert_eq!(mac.to_string(), "52:54:00:12:34:56");
        assert!(mac.is_valid_station());
        assert!(!MacAddress::BROADCAST.is_valid_station());
    }

    #[test]
    fn mta_hash_of_all_hosts_group() {
        // 01:00:5e:00:00:01 with MO=0: hash = (0x00 >> 4) | (0x01 << 4) = 0x010.
        let mac = MacAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
        assert_eq!(mta_hash(mac, 0), (0, 16));
        assert_eq!(mta_hash(MacAddress([0, 0, 0, 0, 0xFF, 0xFF]), 3), (127, 31));
    }
}

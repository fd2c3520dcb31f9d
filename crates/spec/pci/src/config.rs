//! The checked view over a whole config space and its header fields.

use crate::bar::Bars;
use crate::caps::{CapIter, ExtCapIter};
use crate::Error;

/// Register offsets of the common and type-specific headers.
pub mod reg {
    pub const VENDOR_ID: usize = 0x00;
    pub const DEVICE_ID: usize = 0x02;
    pub const COMMAND: usize = 0x04;
    pub const STATUS: usize = 0x06;
    pub const REVISION: usize = 0x08;
    pub const PROG_IF: usize = 0x09;
    pub const CLASS: usize = 0x0a;
    pub const CACHE_LINE: usize = 0x0c;
    pub const LATENCY: usize = 0x0d;
    pub const HEADER_TYPE: usize = 0x0e;
    pub const BIST: usize = 0x0f;
    pub const BAR0: usize = 0x10;
    pub const SUBSYS_VENDOR: usize = 0x2c;
    pub const SUBSYS_ID: usize = 0x2e;
    pub const ROM: usize = 0x30;
    pub const CAP_PTR: usize = 0x34;
    pub const INT_LINE: usize = 0x3c;
    pub const INT_PIN: usize = 0x3d;
    pub const MIN_GNT: usize = 0x3e;
    pub const MAX_LAT: usize = 0x3f;
    // Type 1 (PCI-to-PCI bridge).
    pub const PRIMARY_BUS: usize = 0x18;
    pub const SECONDARY_BUS: usize = 0x19;
    pub const SUBORDINATE_BUS: usize = 0x1a;
    pub const SEC_LATENCY: usize = 0x1b;
    pub const IO_BASE: usize = 0x1c;
    pub const IO_LIMIT: usize = 0x1d;
    pub const SEC_STATUS: usize = 0x1e;
    pub const MEM_BASE: usize = 0x20;
    pub const MEM_LIMIT: usize = 0x22;
    pub const PREF_BASE: usize = 0x24;
    pub const PREF_LIMIT: usize = 0x26;
    pub const PREF_BASE_UPPER: usize = 0x28;
    pub const PREF_LIMIT_UPPER: usize = 0x2c;
    pub const IO_BASE_UPPER: usize = 0x30;
    pub const IO_LIMIT_UPPER: usize = 0x32;
    pub const ROM_BRIDGE: usize = 0x38;
    pub const BRIDGE_CONTROL: usize = 0x3e;
    // Type 2 (CardBus bridge).
    pub const CB_CAP_PTR: usize = 0x14;
}

/// Command register bits.
pub mod command {
    pub const IO: u16 = 1 << 0;
    pub const MEMORY: u16 = 1 << 1;
    pub const MASTER: u16 = 1 << 2;
    pub const SPECIAL: u16 = 1 << 3;
    pub const INVALIDATE: u16 = 1 << 4;
    pub const VGA_PALETTE: u16 = 1 << 5;
    pub const PARITY: u16 = 1 << 6;
    pub const WAIT: u16 = 1 << 7;
    pub const SERR: u16 = 1 << 8;
    pub const FAST_BACK: u16 = 1 << 9;
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Status register bits.
pub mod status {
    pub const INTX: u16 = 1 << 3;
    pub const CAP_LIST: u16 = 1 << 4;
    pub const MHZ66: u16 = 1 << 5;
    pub const UDF: u16 = 1 << 6;
    pub const FAST_BACK: u16 = 1 << 7;
    pub const PARITY: u16 = 1 << 8;
    pub const DEVSEL_MASK: u16 = 3 << 9;
    pub const SIG_TARGET_ABORT: u16 = 1 << 11;
    pub const REC_TARGET_ABORT: u16 = 1 << 12;
    pub const REC_MASTER_ABORT: u16 = 1 << 13;
    pub const SIG_SYSTEM_ERROR: u16 = 1 << 14;
    pub const DETECTED_PARITY: u16 = 1 << 15;
}

/// The layout of the rest of the header (header type register, bits 0–6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HeaderType {
    /// Type 0: an endpoint.
    Normal,
    /// Type 1: a PCI-to-PCI bridge.
    Bridge,
    /// Type 2: a CardBus bridge.
    CardBus,
    /// Any other value: the rest of the header cannot be interpreted.
    Unknown(u8),
}

impl HeaderType {
    /// Decodes bits 0–6 of the header type register.
    pub fn from_raw(raw: u8) -> Self {
        match raw & 0x7f {
            0 => Self::Normal,
            1 => Self::Bridge,
            2 => Self::CardBus,
            other => Self::Unknown(other),
        }
    }

    /// How many BAR slots this header has.
    pub fn bar_count(self) -> usize {
        match self {
            Self::Normal => 6,
            Self::Bridge => 2,
            Self::CardBus => 1,
            Self::Unknown(_) => 0,
        }
    }
}

/// A function's address: domain (segment), bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Address {
    /// PCI domain (segment group).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0–31.
    pub device: u8,
    /// Function number, 0–7.
    pub function: u8,
}

impl std::fmt::Display for Address {
    /// `dddd:bb:dd.f`, the sysfs name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// A text that is not a PCI address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a PCI address (expected DDDD:BB:DD.F or BB:DD.F, hexadecimal)")]
pub struct AddressError(pub String);

impl std::str::FromStr for Address {
    type Err = AddressError;

    /// Parses `dddd:bb:dd.f` or `bb:dd.f` (hexadecimal, as sysfs and lspci).
    fn from_str(s: &str) -> Result<Self, AddressError> {
        let bad = || AddressError(s.to_string());
        let (head, func) = s.rsplit_once('.').ok_or_else(bad)?;
        let mut parts = head.rsplitn(3, ':');
        let dev = parts.next().ok_or_else(bad)?;
        let bus = parts.next().ok_or_else(bad)?;
        let domain = parts.next().unwrap_or("0");
        let hex = |t: &str, max: u32| -> Result<u32, AddressError> {
            if t.is_empty() || t.len() > 8 || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            let v = u32::from_str_radix(t, 16).map_err(|_| bad())?;
            if v > max {
                return Err(bad());
            }
            Ok(v)
        };
        Ok(Address {
            domain: hex(domain, u32::MAX)?,
            bus: hex(bus, 0xff)? as u8,
            device: hex(dev, 0x1f)? as u8,
            function: hex(func, 7)? as u8,
        })
    }
}

/// A checked, zero-copy view over a config space of 64, 256 or 4096 bytes.
///
/// 64 bytes is the standard header alone (what unprivileged sysfs readers
/// get), 256 bytes conventional PCI config space, 4096 bytes PCI Express
/// extended config space.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSpace<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ConfigSpace<T> {
    /// Wraps `buffer` after checking its length.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        match buffer.as_ref().len() {
            64 | 256 | 4096 => Ok(Self { buffer }),
            n => Err(Error::BadLength(n)),
        }
    }

    /// The largest valid config-space length not above `len` (for dumps
    /// with odd lengths), or `None` below 64 bytes.
    pub fn usable_len(len: usize) -> Option<usize> {
        [4096, 256, 64].into_iter().find(|&n| n <= len)
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Consumes the view, giving the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The buffer length (64, 256 or 4096).
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Always false: a checked view holds at least 64 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The byte at `off`, or `None` past the end.
    pub fn byte(&self, off: usize) -> Option<u8> {
        self.as_bytes().get(off).copied()
    }

    /// The little-endian 16-bit word at `off`, or `None` past the end.
    pub fn word(&self, off: usize) -> Option<u16> {
        let b = self.as_bytes().get(off..off.checked_add(2)?)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }

    /// The little-endian 32-bit dword at `off`, or `None` past the end.
    pub fn dword(&self, off: usize) -> Option<u32> {
        let b = self.as_bytes().get(off..off.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    // Header fields lie inside the first 64 bytes, which every checked view
    // has, so these accessors cannot fail; `hdr*` keep the fallback in one
    // place instead of an `unwrap` per field.
    fn hdr8(&self, off: usize) -> u8 {
        self.byte(off).unwrap_or(0xff)
    }
    fn hdr16(&self, off: usize) -> u16 {
        self.word(off).unwrap_or(0xffff)
    }
    fn hdr32(&self, off: usize) -> u32 {
        self.dword(off).unwrap_or(u32::MAX)
    }

    /// Vendor ID.
    pub fn vendor_id(&self) -> u16 {
        self.hdr16(reg::VENDOR_ID)
    }
    /// Device ID.
    pub fn device_id(&self) -> u16 {
        self.hdr16(reg::DEVICE_ID)
    }
    /// Command register.
    pub fn command(&self) -> u16 {
        self.hdr16(reg::COMMAND)
    }
    /// Status register.
    pub fn status(&self) -> u16 {
        self.hdr16(reg::STATUS)
    }
    /// Revision ID.
    pub fn revision(&self) -> u8 {
        self.hdr8(reg::REVISION)
    }
    /// Programming interface.
    pub fn prog_if(&self) -> u8 {
        self.hdr8(reg::PROG_IF)
    }
    /// Base class and subclass as one 16-bit value (`0x0200` = Ethernet).
    pub fn class(&self) -> u16 {
        self.hdr16(reg::CLASS)
    }
    /// Cache line size register (in dwords).
    pub fn cache_line_size(&self) -> u8 {
        self.hdr8(reg::CACHE_LINE)
    }
    /// Latency timer.
    pub fn latency_timer(&self) -> u8 {
        self.hdr8(reg::LATENCY)
    }
    /// The raw header type register (bit 7: multi-function).
    pub fn header_type_raw(&self) -> u8 {
        self.hdr8(reg::HEADER_TYPE)
    }
    /// The header layout.
    pub fn header_type(&self) -> HeaderType {
        HeaderType::from_raw(self.header_type_raw())
    }
    /// Whether the device has more than one function.
    pub fn multifunction(&self) -> bool {
        self.header_type_raw() & 0x80 != 0
    }
    /// BIST register.
    pub fn bist(&self) -> u8 {
        self.hdr8(reg::BIST)
    }
    /// The raw dword of BAR slot `i` (0–5; slots a header lacks read as
    /// whatever bytes are there).
    pub fn bar_raw(&self, i: usize) -> u32 {
        self.hdr32(reg::BAR0 + 4 * (i % 6))
    }
    /// The BARs of this header, decoded.
    pub fn bars(&self) -> Bars {
        let mut raw = [0u32; 6];
        let n = self.header_type().bar_count();
        for (i, r) in raw.iter_mut().enumerate().take(n) {
            *r = self.bar_raw(i);
        }
        Bars::new(raw, n)
    }
    /// Subsystem vendor and device ID (type 0 at 0x2c; CardBus at 0x40 when
    /// the buffer has it); `None` for other headers.
    pub fn subsystem(&self) -> Option<(u16, u16)> {
        match self.header_type() {
            HeaderType::Normal => {
                Some((self.hdr16(reg::SUBSYS_VENDOR), self.hdr16(reg::SUBSYS_ID)))
            }
            HeaderType::CardBus => Some((self.word(0x40)?, self.word(0x42)?)),
            _ => None,
        }
    }
    /// The expansion ROM register (0x30 for type 0, 0x38 for type 1).
    pub fn rom_raw(&self) -> Option<u32> {
        match self.header_type() {
            HeaderType::Normal => Some(self.hdr32(reg::ROM)),
            HeaderType::Bridge => Some(self.hdr32(reg::ROM_BRIDGE)),
            _ => None,
        }
    }
    /// Interrupt line register.
    pub fn interrupt_line(&self) -> u8 {
        self.hdr8(reg::INT_LINE)
    }
    /// Interrupt pin (0 none, 1–4 INTA–INTD).
    pub fn interrupt_pin(&self) -> u8 {
        self.hdr8(reg::INT_PIN)
    }
    /// Min_Gnt (type 0 only; other headers use this byte otherwise).
    pub fn min_gnt(&self) -> u8 {
        self.hdr8(reg::MIN_GNT)
    }
    /// Max_Lat (type 0 only).
    pub fn max_lat(&self) -> u8 {
        self.hdr8(reg::MAX_LAT)
    }
    /// Primary, secondary and subordinate bus numbers and the secondary
    /// latency timer of a type 1 header.
    pub fn bridge_buses(&self) -> (u8, u8, u8, u8) {
        (
            self.hdr8(reg::PRIMARY_BUS),
            self.hdr8(reg::SECONDARY_BUS),
            self.hdr8(reg::SUBORDINATE_BUS),
            self.hdr8(reg::SEC_LATENCY),
        )
    }

    /// Where the capability list starts, if the status register says there
    /// is one and the header type has a pointer.
    pub fn cap_pointer(&self) -> Option<u8> {
        if self.status() & status::CAP_LIST == 0 {
            return None;
        }
        match self.header_type() {
            HeaderType::Normal | HeaderType::Bridge => Some(self.hdr8(reg::CAP_PTR)),
            HeaderType::CardBus => Some(self.hdr8(reg::CB_CAP_PTR)),
            HeaderType::Unknown(_) => None,
        }
    }

    /// Walks the capability list (empty when there is none).
    pub fn caps(&self) -> CapIter<'_> {
        CapIter::new(self.as_bytes(), self.cap_pointer().unwrap_or(0))
    }

    /// Walks the extended capability list from 0x100 (empty unless the
    /// buffer holds 4096 bytes).
    pub fn ext_caps(&self) -> ExtCapIter<'_> {
        ExtCapIter::new(self.as_bytes())
    }

    /// The offset of the first capability with `id`, if the walk finds one.
    pub fn find_cap(&self, id: u8) -> Option<u8> {
        self.caps()
            .map_while(Result::ok)
            .find(|c| c.id == id)
            .map(|c| c.offset)
    }

    /// The offset of the first extended capability with `id`.
    pub fn find_ext_cap(&self, id: u16) -> Option<u16> {
        self.ext_caps()
            .map_while(Result::ok)
            .find(|c| c.id == id)
            .map(|c| c.offset)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ConfigSpace<T> {
    /// Mutable access to the bytes (for `emit`).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Writes `bytes` at `off`, failing past the end.
    pub fn write(&mut self, off: usize, bytes: &[u8]) -> Result<(), Error> {
        let len = self.len();
        let dst = off
            .checked_add(bytes.len())
            .and_then(|end| self.buffer.as_mut().get_mut(off..end))
            .ok_or(Error::Truncated {
                what: "write",
                offset: off,
                len,
            })?;
        dst.copy_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert!(ConfigSpace::new_checked(&[0u8; 64][..]).is_ok());
        assert!(ConfigSpace::new_checked(&[0u8; 256][..]).is_ok());
        assert!(ConfigSpace::new_checked(vec![0u8; 4096]).is_ok());
        assert_eq!(
            ConfigSpace::new_checked(&[0u8; 63][..]).err(),
            Some(Error::BadLength(63))
        );
        assert_eq!(
            ConfigSpace::new_checked(&[0u8; 128][..]).err(),
            Some(Error::BadLength(128))
        );
        assert_eq!(ConfigSpace::<&[u8]>::usable_len(300), Some(256));
        assert_eq!(ConfigSpace::<&[u8]>::usable_len(63), None);
    }

    #[test]
    fn header_fields() {
        let mut b = [0u8; 64];
        b[..4].copy_from_slice(&[0xf4, 0x1a, 0x41, 0x10]);
        b[0x0a] = 0x00;
        b[0x0b] = 0x02;
        b[0x0e] = 0x81;
        let c = ConfigSpace::new_checked(&b[..]).unwrap();
        assert_eq!(c.vendor_id(), 0x1af4);
        assert_eq!(c.device_id(), 0x1041);
        assert_eq!(c.class(), 0x0200);
        assert_eq!(c.header_type(), HeaderType::Bridge);
        assert!(c.multifunction());
        assert_eq!(c.subsystem(), None);
    }

    #[test]
    fn addresses() {
        let a: Address = "0000:00:1f.3".parse().unwrap();
        assert_eq!((a.bus, a.device, a.function), (0, 0x1f, 3));
        assert_eq!(a.to_string(), "0000:00:1f.3");
        let b: Address = "3:00.1".parse().unwrap();
        assert_eq!((b.domain, b.bus), (0, 3));
        assert_eq!(
            "abcd:ff:1f.7".parse::<Address>().unwrap().to_string(),
            "abcd:ff:1f.7"
        );
        // Domains past 16 bits exist (e.g. Intel VMD's 10000:…).
        let v: Address = "10000:e1:00.0".parse().unwrap();
        assert_eq!((v.domain, v.to_string()), (0x10000, "10000:e1:00.0".into()));
        for s in [
            "",
            "junk",
            "00:04",
            "00:20.0",
            "00:00.8",
            "0:0:0:0.0",
            "zz:00.0",
            "00:04.0 ",
            "../00:04.0",
            "00:+4.0",
            "100000000:00:04.0",
        ] {
            let e = s.parse::<Address>().unwrap_err();
            assert_eq!(e, AddressError(s.to_string()), "{s:?}");
        }
    }
}

//! MSI capability (ID 0x05): 32/64-bit, optional per-vector masking.

use super::regs::msi::{ENABLE, IS_64, MME_SHIFT, PVM};
use super::{check_id, field, field_mut, le16, le32};
use crate::{cap_id, Error};

/// The MSI capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MsiRepr {
    /// MSI enable.
    pub enable: bool,
    /// log2 of the vectors the function can request (0–5).
    pub multiple_message_capable: u8,
    /// log2 of the vectors software granted (0–5).
    pub multiple_message_enable: u8,
    /// The address register is 64 bits wide.
    pub is_64bit: bool,
    /// Per-vector masking: mask and pending registers exist.
    pub per_vector_masking: bool,
    /// Message address (upper half 0 for 32-bit capabilities).
    pub address: u64,
    /// Message data.
    pub data: u16,
    /// Mask bits (with per-vector masking).
    pub mask: Option<u32>,
    /// Pending bits (with per-vector masking).
    pub pending: Option<u32>,
}

impl MsiRepr {
    /// Length of the capability described by `control`.
    fn len_for(control: u16) -> usize {
        match (control & IS_64 != 0, control & PVM != 0) {
            (false, false) => 0x0a,
            (true, false) => 0x0e,
            (false, true) => 0x14,
            (true, true) => 0x18,
        }
    }

    /// Offsets of (data, mask) relative to the capability.
    fn layout(is_64bit: bool) -> (usize, usize) {
        if is_64bit {
            (0x0c, 0x10)
        } else {
            (0x08, 0x0c)
        }
    }

    /// Bytes this capability occupies (10, 14, 20 or 24).
    pub fn len(&self) -> usize {
        Self::len_for((u16::from(self.is_64bit) << 7) | (u16::from(self.per_vector_masking) << 8))
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// How many vectors the function can request.
    pub fn vectors_capable(&self) -> u32 {
        1 << self.multiple_message_capable.min(5)
    }

    /// Parses the MSI capability at `offset`.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self, Error> {
        check_id(buf, offset, cap_id::MSI)?;
        let control = le16(field(buf, offset, 4, "MSI capability")?, 2);
        let b = field(buf, offset, Self::len_for(control), "MSI capability")?;
        let is_64bit = control & IS_64 != 0;
        let per_vector_masking = control & PVM != 0;
        let (data_at, mask_at) = Self::layout(is_64bit);
        let hi = if is_64bit { le32(b, 8) } else { 0 };
        Ok(MsiRepr {
            enable: control & ENABLE != 0,
            multiple_message_capable: ((control >> 1) & 7) as u8,
            multiple_message_enable: ((control >> MME_SHIFT) & 7) as u8,
            is_64bit,
            per_vector_masking,
            address: (u64::from(hi) << 32) | u64::from(le32(b, 4)),
            data: le16(b, data_at),
            mask: per_vector_masking.then(|| le32(b, mask_at)),
            pending: per_vector_masking.then(|| le32(b, mask_at + 4)),
        })
    }

    /// Writes enable, multiple-message enable, address, data and mask. The
    /// layout (64-bit, masking) must match what the device has; the
    /// read-only pending bits are left alone.
    pub fn emit(&self, buf: &mut [u8], offset: usize) -> Result<(), Error> {
        check_id(buf, offset, cap_id::MSI)?;
        let control = le16(field(buf, offset, 4, "MSI capability")?, 2);
        if (control & IS_64 != 0) != self.is_64bit
            || (control & PVM != 0) != self.per_vector_masking
        {
            return Err(Error::Malformed {
                what: "MSI layout (64-bit/masking) differs from the device's",
                offset,
            });
        }
        if !self.is_64bit && self.address >> 32 != 0 {
            return Err(Error::Malformed {
                what: "MSI address above 4 GiB for a 32-bit capability",
                offset,
            });
        }
        let b = field_mut(buf, offset, Self::len_for(control), "MSI capability")?;
        let mut ctl = control & !(ENABLE | (7 << MME_SHIFT));
        ctl |= u16::from(self.enable);
        ctl |= u16::from(self.multiple_message_enable & 7) << MME_SHIFT;
        b[2..4].copy_from_slice(&ctl.to_le_bytes());
        b[4..8].copy_from_slice(&(self.address as u32).to_le_bytes());
        if self.is_64bit {
            b[8..12].copy_from_slice(&((self.address >> 32) as u32).to_le_bytes());
        }
        let (data_at, mask_at) = Self::layout(self.is_64bit);
        b[data_at..data_at + 2].copy_from_slice(&self.data.to_le_bytes());
        if let Some(mask) = self.mask.filter(|_| self.per_vector_masking) {
            b[mask_at..mask_at + 4].copy_from_slice(&mask.to_le_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit_64bit_masked() {
        let mut b = vec![0u8; 256];
        b[0x50] = cap_id::MSI;
        // 64-bit, per-vector masking, 8 vectors capable.
        b[0x52..0x54].copy_from_slice(&(IS_64 | PVM | (3 << 1)).to_le_bytes());
        let mut m = MsiRepr::parse(&b, 0x50).unwrap();
        assert!(m.is_64bit && m.per_vector_masking);
        assert_eq!(m.vectors_capable(), 8);
        assert_eq!(m.len(), 0x18);
        m.enable = true;
        m.multiple_message_enable = 2;
        m.address = 0x1_fee0_0000;
        m.data = 0x4041;
        m.mask = Some(0b1010);
        m.emit(&mut b, 0x50).unwrap();
        assert_eq!(MsiRepr::parse(&b, 0x50).unwrap(), m);
        assert_eq!(&b[0x5c..0x5e], &[0x41, 0x40]);
    }

    #[test]
    fn errors() {
        let mut b = vec![0u8; 256];
        b[0xf8] = cap_id::MSI;
        b[0xfa] = IS_64 as u8;
        // 14 bytes from 0xf8 run past 256.
        assert!(matches!(
            MsiRepr::parse(&b, 0xf8),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            MsiRepr::parse(&b, 0x40),
            Err(Error::WrongId { .. })
        ));
        b[0x40] = cap_id::MSI;
        let mut m = MsiRepr::parse(&b, 0x40).unwrap();
        m.address = 1 << 40;
        assert!(m.emit(&mut b, 0x40).is_err());
    }
}

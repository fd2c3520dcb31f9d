//! MSI-X capability (ID 0x11) and MSI-X table entries.

use super::regs::msix::{ENABLE, FUNCTION_MASK as MASK};
use super::{check_id, field, field_mut, le16, le32};
use crate::{cap_id, Error};

/// The MSI-X capability: where the table and PBA live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MsixRepr {
    /// MSI-X enable.
    pub enable: bool,
    /// Function mask (all vectors masked).
    pub function_mask: bool,
    /// Number of table entries (1–2048).
    pub table_size: u16,
    /// BAR holding the table.
    pub table_bir: u8,
    /// Offset of the table in that BAR (8-byte aligned).
    pub table_offset: u32,
    /// BAR holding the pending-bit array.
    pub pba_bir: u8,
    /// Offset of the PBA in that BAR.
    pub pba_offset: u32,
}

impl MsixRepr {
    /// Bytes the capability occupies.
    pub const LEN: usize = 12;

    /// Parses the MSI-X capability at `offset`.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self, Error> {
        check_id(buf, offset, cap_id::MSIX)?;
        let b = field(buf, offset, Self::LEN, "MSI-X capability")?;
        let control = le16(b, 2);
        let table = le32(b, 4);
        let pba = le32(b, 8);
        Ok(MsixRepr {
            enable: control & ENABLE != 0,
            function_mask: control & MASK != 0,
            table_size: (control & 0x7ff) + 1,
            table_bir: (table & 7) as u8,
            table_offset: table & !7,
            pba_bir: (pba & 7) as u8,
            pba_offset: pba & !7,
        })
    }

    /// Writes the enable and function-mask bits (the rest is read-only).
    pub fn emit(&self, buf: &mut [u8], offset: usize) -> Result<(), Error> {
        check_id(buf, offset, cap_id::MSIX)?;
        let b = field_mut(buf, offset, Self::LEN, "MSI-X capability")?;
        let mut control = le16(b, 2) & !(ENABLE | MASK);
        if self.enable {
            control |= ENABLE;
        }
        if self.function_mask {
            control |= MASK;
        }
        b[2..4].copy_from_slice(&control.to_le_bytes());
        Ok(())
    }

    /// Bytes of the table in its BAR.
    pub fn table_len(&self) -> usize {
        usize::from(self.table_size) * MsixEntry::LEN
    }

    /// Bytes of the PBA in its BAR (one bit per vector, in qwords).
    pub fn pba_len(&self) -> usize {
        usize::from(self.table_size).div_ceil(64) * 8
    }
}

/// One 16-byte MSI-X table entry (it lives in a BAR, not config space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct MsixEntry {
    /// Message address.
    pub address: u64,
    /// Message data.
    pub data: u32,
    /// Vector control bit 0: masked.
    pub masked: bool,
}

impl MsixEntry {
    /// Bytes per entry.
    pub const LEN: usize = 16;

    /// Parses an entry from its 16 bytes.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        let b = field(b, 0, Self::LEN, "MSI-X table entry")?;
        Ok(MsixEntry {
            address: u64::from(le32(b, 0)) | (u64::from(le32(b, 4)) << 32),
            data: le32(b, 8),
            masked: le32(b, 12) & 1 != 0,
        })
    }

    /// Writes the entry into 16 bytes (reserved vector-control bits 0).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Error> {
        let b = field_mut(b, 0, Self::LEN, "MSI-X table entry")?;
        b[0..4].copy_from_slice(&(self.address as u32).to_le_bytes());
        b[4..8].copy_from_slice(&((self.address >> 32) as u32).to_le_bytes());
        b[8..12].copy_from_slice(&self.data.to_le_bytes());
        b[12..16].copy_from_slice(&u32::from(self.masked).to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn virtio_msix() {
        // From the virtio-blk fixture: [98] MSI-X Enable+ Count=2.
        let mut b = vec![0u8; 256];
        b[0x98..0xa4].copy_from_slice(&[
            0x11, 0x84, 0x01, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 0x04, 0x00,
        ]);
        let m = MsixRepr::parse(&b, 0x98).unwrap();
        assert!(m.enable && !m.function_mask);
        assert_eq!((m.table_size, m.table_bir, m.table_offset), (2, 0, 0x8000));
        assert_eq!((m.pba_bir, m.pba_offset), (0, 0x48000));
        assert_eq!((m.table_len(), m.pba_len()), (32, 8));
        let mut off = m;
        off.enable = false;
        off.function_mask = true;
        off.emit(&mut b, 0x98).unwrap();
        assert_eq!(MsixRepr::parse(&b, 0x98).unwrap(), off);
    }

    #[test]
    fn entry_round_trip() {
        let e = MsixEntry {
            address: 0xfee0_1000,
            data: 0x4021,
            masked: true,
        };
        let mut b = [0u8; 16];
        e.emit(&mut b).unwrap();
        assert_eq!(MsixEntry::parse(&b).unwrap(), e);
        assert!(MsixEntry::parse(&b[..15]).is_err());
    }
}

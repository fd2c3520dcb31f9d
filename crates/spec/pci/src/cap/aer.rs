//! Extended capabilities: Advanced Error Reporting (0x0001) and Device
//! Serial Number (0x0003).

use super::{check_ext_id, field, le32};
use crate::{ext_cap_id, Error};

/// The AER registers every function has (root ports have three more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AerRepr {
    /// Uncorrectable error status.
    pub uncorrectable_status: u32,
    /// Uncorrectable error mask.
    pub uncorrectable_mask: u32,
    /// Uncorrectable error severity (1 = fatal).
    pub uncorrectable_severity: u32,
    /// Correctable error status.
    pub correctable_status: u32,
    /// Correctable error mask.
    pub correctable_mask: u32,
    /// Capabilities and control (first error pointer in bits 0–4).
    pub capabilities_control: u32,
    /// Header log of the first error.
    pub header_log: [u32; 4],
}

impl AerRepr {
    /// Bytes up to the end of the header log.
    pub const LEN: usize = 0x2c;

    /// Parses the AER capability at `offset`.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self, Error> {
        check_ext_id(buf, offset, ext_cap_id::AER)?;
        let b = field(buf, offset, Self::LEN, "AER capability")?;
        Ok(AerRepr {
            uncorrectable_status: le32(b, 0x04),
            uncorrectable_mask: le32(b, 0x08),
            uncorrectable_severity: le32(b, 0x0c),
            correctable_status: le32(b, 0x10),
            correctable_mask: le32(b, 0x14),
            capabilities_control: le32(b, 0x18),
            header_log: [le32(b, 0x1c), le32(b, 0x20), le32(b, 0x24), le32(b, 0x28)],
        })
    }

    /// The first error pointer (bit index in the uncorrectable status).
    pub fn first_error_pointer(&self) -> u8 {
        (self.capabilities_control & 0x1f) as u8
    }
}

/// Device Serial Number: a 64-bit EUI-64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DsnRepr {
    /// The serial number (upper dword at +8, lower at +4).
    pub serial: u64,
}

impl DsnRepr {
    /// Bytes the capability occupies.
    pub const LEN: usize = 12;

    /// Parses the DSN capability at `offset`.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self, Error> {
        check_ext_id(buf, offset, ext_cap_id::DSN)?;
        let b = field(buf, offset, Self::LEN, "DSN capability")?;
        Ok(DsnRepr {
            serial: u64::from(le32(b, 4)) | (u64::from(le32(b, 8)) << 32),
        })
    }

    /// The serial as lspci prints it: eight bytes, most significant first,
    /// joined by dashes.
    pub fn to_dashed(&self) -> String {
        let b = self.serial.to_be_bytes();
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join("-")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dsn_and_aer() {
        let mut b = vec![0u8; 4096];
        b[0x100..0x104].copy_from_slice(&(0x3u32 | (1 << 16)).to_le_bytes());
        b[0x104..0x10c].copy_from_slice(&[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]);
        let d = DsnRepr::parse(&b, 0x100).unwrap();
        assert_eq!(d.to_dashed(), "01-02-03-04-05-06-07-08");
        assert!(AerRepr::parse(&b, 0x100).is_err());
        b[0x200..0x204].copy_from_slice(&(0x1u32 | (2 << 16)).to_le_bytes());
        b[0x204] = 0x10;
        b[0x218] = 0x04;
        let a = AerRepr::parse(&b, 0x200).unwrap();
        assert_eq!(a.uncorrectable_status, 0x10);
        assert_eq!(a.first_error_pointer(), 4);
        assert!(AerRepr::parse(&b, 0xff0).is_err());
    }
}

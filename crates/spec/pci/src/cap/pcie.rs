//! PCI Express capability (ID 0x10): device and link registers.

use super::{check_id, field, le16, le32};
use crate::{cap_id, Error};

/// Device/port type (PCIe capabilities register bits 4–7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PciePortType {
    /// 0: PCI Express endpoint.
    Endpoint,
    /// 1: legacy PCI Express endpoint.
    LegacyEndpoint,
    /// 4: root port.
    RootPort,
    /// 5: upstream switch port.
    Upstream,
    /// 6: downstream switch port.
    Downstream,
    /// 7: PCI Express to PCI/PCI-X bridge.
    PcieToPci,
    /// 8: PCI/PCI-X to PCI Express bridge.
    PciToPcie,
    /// 9: root complex integrated endpoint.
    RcIntegratedEndpoint,
    /// 10: root complex event collector.
    RcEventCollector,
    /// Any other value.
    Unknown(u8),
}

impl PciePortType {
    /// Decodes the 4-bit type field.
    pub fn from_raw(raw: u8) -> Self {
        match raw & 0xf {
            0 => Self::Endpoint,
            1 => Self::LegacyEndpoint,
            4 => Self::RootPort,
            5 => Self::Upstream,
            6 => Self::Downstream,
            7 => Self::PcieToPci,
            8 => Self::PciToPcie,
            9 => Self::RcIntegratedEndpoint,
            10 => Self::RcEventCollector,
            n => Self::Unknown(n),
        }
    }

    /// Whether a link exists (root-complex-integrated functions have none).
    pub fn has_link(self) -> bool {
        !matches!(self, Self::RcIntegratedEndpoint | Self::RcEventCollector)
    }
}

/// Link capabilities, control and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PcieLink {
    /// Port number (link capabilities bits 24–31).
    pub port: u8,
    /// Max link speed code (1 = 2.5 GT/s, 2 = 5, 3 = 8, 4 = 16, 5 = 32, 6 = 64).
    pub max_speed: u8,
    /// Max link width (lanes).
    pub max_width: u8,
    /// ASPM support (bit 0 L0s, bit 1 L1).
    pub aspm_support: u8,
    /// Link control register.
    pub control: u16,
    /// Current link speed code.
    pub speed: u8,
    /// Negotiated width (lanes).
    pub width: u8,
}

/// The PCI Express capability's device and link registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PcieRepr {
    /// Capability version (1 or 2).
    pub version: u8,
    /// Device/port type.
    pub port_type: PciePortType,
    /// Slot implemented (ports only).
    pub slot: bool,
    /// Interrupt message number (bits 9–13).
    pub interrupt_message: u8,
    /// Max payload size supported, in bytes.
    pub max_payload_supported: u16,
    /// Function-level reset supported.
    pub flr: bool,
    /// Device control register.
    pub device_control: u16,
    /// Device status register.
    pub device_status: u16,
    /// Link registers (absent for root-complex-integrated functions).
    pub link: Option<PcieLink>,
}

impl PcieRepr {
    /// Bytes needed up to and including the link status register.
    pub const LEN: usize = 0x14;

    /// Parses the PCIe capability at `offset`.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self, Error> {
        check_id(buf, offset, cap_id::EXP)?;
        let b = field(buf, offset, Self::LEN, "PCI Express capability")?;
        let flags = le16(b, 2);
        let devcap = le32(b, 4);
        let port_type = PciePortType::from_raw((flags >> 4) as u8);
        let linkcap = le32(b, 0x0c);
        let linksta = le16(b, 0x12);
        Ok(PcieRepr {
            version: (flags & 0xf) as u8,
            port_type,
            slot: flags & (1 << 8) != 0,
            interrupt_message: ((flags >> 9) & 0x1f) as u8,
            max_payload_supported: 128 << (devcap & 7).min(5),
            flr: devcap & (1 << 28) != 0,
            device_control: le16(b, 8),
            device_status: le16(b, 0x0a),
            link: port_type.has_link().then(|| PcieLink {
                port: (linkcap >> 24) as u8,
                max_speed: (linkcap & 0xf) as u8,
                max_width: ((linkcap >> 4) & 0x3f) as u8,
                aspm_support: ((linkcap >> 10) & 3) as u8,
                control: le16(b, 0x10),
                speed: (linksta & 0xf) as u8,
                width: ((linksta >> 4) & 0x3f) as u8,
            }),
        })
    }

    /// Max payload size in effect (device control bits 5–7), in bytes.
    pub fn max_payload(&self) -> u16 {
        128 << ((self.device_control >> 5) & 7).min(5)
    }

    /// Max read request size (device control bits 12–14), in bytes.
    pub fn max_read_request(&self) -> u16 {
        128 << ((self.device_control >> 12) & 7).min(5)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoint() {
        let mut b = vec![0u8; 256];
        b[0x80] = cap_id::EXP;
        b[0x82..0x84].copy_from_slice(&0x0002u16.to_le_bytes()); // v2 endpoint
        b[0x84..0x88].copy_from_slice(&(1u32 | (1 << 28)).to_le_bytes());
        b[0x88..0x8a].copy_from_slice(&((1u16 << 5) | (2 << 12)).to_le_bytes());
        b[0x8c..0x90].copy_from_slice(&(0x0100_0000u32 | (4 << 4) | 3).to_le_bytes());
        b[0x92..0x94].copy_from_slice(&((4u16 << 4) | 3).to_le_bytes());
        let p = PcieRepr::parse(&b, 0x80).unwrap();
        assert_eq!(p.port_type, PciePortType::Endpoint);
        assert_eq!(p.version, 2);
        assert!(p.flr);
        assert_eq!(p.max_payload_supported, 256);
        assert_eq!((p.max_payload(), p.max_read_request()), (256, 512));
        let l = p.link.unwrap();
        assert_eq!(
            (l.port, l.max_speed, l.max_width, l.speed, l.width),
            (1, 3, 4, 3, 4)
        );
        assert!(PcieRepr::parse(&b[..0x90], 0x80).is_err());
    }
}

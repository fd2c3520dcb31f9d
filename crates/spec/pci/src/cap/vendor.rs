//! Vendor-specific capability (ID 0x09), and the virtio PCI capability
//! that virtio 1.x devices put there (virtio spec §4.1.4).

use super::{check_id, field, le32};
use crate::{cap_id, Error};

/// Which virtio structure a virtio PCI capability locates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum VirtioCfgType {
    /// 1: common configuration.
    Common,
    /// 2: notifications.
    Notify,
    /// 3: ISR status.
    Isr,
    /// 4: device-specific configuration.
    Device,
    /// 5: PCI configuration access.
    PciCfg,
    /// 8: shared memory region.
    SharedMemory,
    /// 9: vendor data.
    Vendor,
    /// Anything else.
    Unknown(u8),
}

impl VirtioCfgType {
    /// Decodes `cfg_type`.
    pub fn from_raw(raw: u8) -> Self {
        match raw {
            1 => Self::Common,
            2 => Self::Notify,
            3 => Self::Isr,
            4 => Self::Device,
            5 => Self::PciCfg,
            8 => Self::SharedMemory,
            9 => Self::Vendor,
            n => Self::Unknown(n),
        }
    }
}

/// A virtio PCI capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct VirtioCapRepr {
    /// The capability length byte.
    pub cap_len: u8,
    /// Structure type.
    pub cfg_type: VirtioCfgType,
    /// BAR the structure lives in.
    pub bar: u8,
    /// Structure ID (virtio 1.2; padding before).
    pub id: u8,
    /// Offset in the BAR.
    pub offset: u32,
    /// Length in the BAR.
    pub length: u32,
    /// Notify offset multiplier (notify capabilities of 20+ bytes).
    pub notify_off_multiplier: Option<u32>,
}

impl VirtioCapRepr {
    /// Smallest virtio capability.
    pub const MIN_LEN: usize = 16;

    /// Whether `vendor:device` is a virtio PCI device (which makes its
    /// vendor-specific capabilities virtio capabilities).
    pub fn is_virtio(vendor: u16, device: u16) -> bool {
        vendor == 0x1af4 && (0x1000..=0x107f).contains(&device)
    }

    /// Parses the vendor-specific capability at `offset` as a virtio one.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self, Error> {
        check_id(buf, offset, cap_id::VENDOR)?;
        let cap_len = field(buf, offset, 3, "vendor capability")?[2];
        if usize::from(cap_len) < Self::MIN_LEN {
            return Err(Error::Malformed {
                what: "virtio capability length",
                offset,
            });
        }
        let b = field(buf, offset, cap_len.into(), "virtio capability")?;
        let cfg_type = VirtioCfgType::from_raw(b[3]);
        Ok(VirtioCapRepr {
            cap_len,
            cfg_type,
            bar: b[4],
            id: b[5],
            offset: le32(b, 8),
            length: le32(b, 12),
            notify_off_multiplier: (cfg_type == VirtioCfgType::Notify && cap_len >= 20)
                .then(|| le32(b, 16)),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn notify_cap() {
        let mut b = vec![0u8; 256];
        b[0x70..0x84].copy_from_slice(&[
            0x09, 0x84, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x10,
            0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
        ]);
        let v = VirtioCapRepr::parse(&b, 0x70).unwrap();
        assert_eq!(v.cfg_type, VirtioCfgType::Notify);
        assert_eq!((v.bar, v.offset, v.length), (0, 0x6000, 0x1000));
        assert_eq!(v.notify_off_multiplier, Some(4));
        b[0x72] = 8;
        assert!(VirtioCapRepr::parse(&b, 0x70).is_err());
        b[0x72] = 0xff;
        assert!(matches!(
            VirtioCapRepr::parse(&b, 0x70),
            Err(Error::Truncated { .. })
        ));
    }
}

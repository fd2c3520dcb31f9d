//! DEVICE_FEATURE and MIG_DATA_READ/WRITE.

use crate::view::view;
use crate::{bound, Error, Result, MAX_DATA_XFER_SIZE};

view!(
    /// DEVICE_FEATURE request and reply: argsz, flags, then feature data.
    DeviceFeature, 8, {
        argsz / set_argsz: u32 @ 0,
        flags / set_flags: u32 @ 4,
    }
);

view!(
    /// MIG_DATA_READ/WRITE request and reply: argsz, size, then data.
    MigData, 8, {
        argsz / set_argsz: u32 @ 0,
        size / set_size: u32 @ 4,
    }
);

/// Feature index bits of DEVICE_FEATURE flags.
pub const DEVICE_FEATURE_MASK: u32 = 0xffff;
pub const DEVICE_FEATURE_GET: u32 = 1 << 16;
pub const DEVICE_FEATURE_SET: u32 = 1 << 17;
pub const DEVICE_FEATURE_PROBE: u32 = 1 << 18;

/// Feature indexes vfio-user defines (all migration-related).
pub const FEATURE_MIGRATION: u16 = 1;
pub const FEATURE_MIG_DEVICE_STATE: u16 = 2;
pub const FEATURE_DMA_LOGGING_START: u16 = 6;
pub const FEATURE_DMA_LOGGING_STOP: u16 = 7;
pub const FEATURE_DMA_LOGGING_REPORT: u16 = 8;

/// A parsed DEVICE_FEATURE request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFeatureRepr<'a> {
    pub argsz: u32,
    /// Raw flags: feature index in the low 16 bits, GET/SET/PROBE above.
    pub flags: u32,
    pub data: &'a [u8],
}

impl<'a> DeviceFeatureRepr<'a> {
    pub const LEN: usize = 8;

    /// Parse: known flag bits only; GET and SET together only with PROBE.
    pub fn parse(payload: &'a [u8]) -> Result<DeviceFeatureRepr<'a>> {
        let view = DeviceFeature::new_checked(payload)?;
        let flags = view.flags();
        let known =
            DEVICE_FEATURE_MASK | DEVICE_FEATURE_GET | DEVICE_FEATURE_SET | DEVICE_FEATURE_PROBE;
        let both = DEVICE_FEATURE_GET | DEVICE_FEATURE_SET;
        if flags & !known != 0
            || (flags & both == both && flags & DEVICE_FEATURE_PROBE == 0)
            || flags & (both | DEVICE_FEATURE_PROBE) == 0
        {
            return Err(Error::Invalid {
                field: "device_feature flags",
                value: flags.into(),
            });
        }
        let data = &payload[Self::LEN..];
        bound(
            "feature data bytes",
            data.len() as u64,
            MAX_DATA_XFER_SIZE.into(),
        )?;
        Ok(DeviceFeatureRepr {
            argsz: view.argsz(),
            flags,
            data,
        })
    }

    /// The feature index.
    pub fn feature(&self) -> u16 {
        (self.flags & DEVICE_FEATURE_MASK) as u16
    }

    pub fn buffer_len(&self) -> usize {
        Self::LEN + self.data.len()
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut DeviceFeature<T>) {
        view.set_argsz(self.argsz);
        view.set_flags(self.flags);
        view.tail_mut()[..self.data.len()].copy_from_slice(self.data);
    }
}

/// A parsed MIG_DATA_READ/WRITE message (`data` empty for a READ request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigDataRepr<'a> {
    pub argsz: u32,
    pub size: u32,
    pub data: &'a [u8],
}

impl<'a> MigDataRepr<'a> {
    pub const LEN: usize = 8;

    /// Parse; `with_data` says whether `size` bytes of data must follow.
    pub fn parse(payload: &'a [u8], with_data: bool) -> Result<MigDataRepr<'a>> {
        let view = MigData::new_checked(payload)?;
        let size = view.size();
        bound(
            "migration data bytes",
            size.into(),
            MAX_DATA_XFER_SIZE.into(),
        )?;
        let data = &payload[Self::LEN..];
        let expect = if with_data { size as usize } else { 0 };
        if data.len() != expect {
            return Err(Error::Invalid {
                field: "migration data length",
                value: data.len() as u64,
            });
        }
        Ok(MigDataRepr {
            argsz: view.argsz(),
            size,
            data,
        })
    }

    pub fn buffer_len(&self) -> usize {
        Self::LEN + self.data.len()
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut MigData<T>) {
        view.set_argsz(self.argsz);
        view.set_size(self.size);
        view.tail_mut()[..self.data.len()].copy_from_slice(self.data);
    }
}

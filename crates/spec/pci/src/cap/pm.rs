//! Power Management capability (ID 0x01), PCI PM 1.2.

use super::{check_id, field, field_mut, le16};
use crate::{cap_id, Error};

/// The PM capability: PMC (capabilities) and PMCSR (control/status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PmRepr {
    /// Spec version (PMC bits 0–2).
    pub version: u8,
    /// PME clock required.
    pub pme_clock: bool,
    /// Device-specific initialisation required.
    pub dsi: bool,
    /// Aux current encoding (PMC bits 6–8).
    pub aux_current: u8,
    /// D1 supported.
    pub d1: bool,
    /// D2 supported.
    pub d2: bool,
    /// States PME can be asserted from: bit 0 D0, 1 D1, 2 D2, 3 D3hot,
    /// 4 D3cold.
    pub pme_support: u8,
    /// Current power state (0 = D0 … 3 = D3hot).
    pub power_state: u8,
    /// No_Soft_Reset: D3hot→D0 keeps the configuration.
    pub no_soft_reset: bool,
    /// PME enable.
    pub pme_enable: bool,
    /// Data select (PMCSR bits 9–12).
    pub data_select: u8,
    /// Data scale (PMCSR bits 13–14).
    pub data_scale: u8,
    /// PME status.
    pub pme_status: bool,
}

impl PmRepr {
    /// Bytes the capability occupies.
    pub const LEN: usize = 8;

    /// Parses the PM capability at `offset`.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Self, Error> {
        check_id(buf, offset, cap_id::PM)?;
        let b = field(buf, offset, Self::LEN, "PM capability")?;
        let pmc = le16(b, 2);
        let csr = le16(b, 4);
        Ok(PmRepr {
            version: (pmc & 7) as u8,
            pme_clock: pmc & (1 << 3) != 0,
            dsi: pmc & (1 << 5) != 0,
            aux_current: ((pmc >> 6) & 7) as u8,
            d1: pmc & (1 << 9) != 0,
            d2: pmc & (1 << 10) != 0,
            pme_support: (pmc >> 11) as u8,
            power_state: (csr & 3) as u8,
            no_soft_reset: csr & (1 << 3) != 0,
            pme_enable: csr & (1 << 8) != 0,
            data_select: ((csr >> 9) & 0xf) as u8,
            data_scale: ((csr >> 13) & 3) as u8,
            pme_status: csr & (1 << 15) != 0,
        })
    }

    /// Writes PMCSR's writable fields (power state, PME enable, data
    /// select; PME status is write-one-to-clear and written as 0).
    pub fn emit(&self, buf: &mut [u8], offset: usize) -> Result<(), Error> {
        check_id(buf, offset, cap_id::PM)?;
        let b = field_mut(buf, offset, Self::LEN, "PM capability")?;
        let mut csr = le16(b, 4) & !(3 | (1 << 8) | (0xf << 9) | (1 << 15));
        csr |= u16::from(self.power_state & 3);
        csr |= u16::from(self.pme_enable) << 8;
        csr |= u16::from(self.data_select & 0xf) << 9;
        b[4..6].copy_from_slice(&csr.to_le_bytes());
        Ok(())
    }
}

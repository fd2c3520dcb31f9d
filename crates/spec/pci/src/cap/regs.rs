//! Register offsets (relative to the capability's start) and bits of the
//! capabilities this crate parses, for code that builds, filters or
//! emulates them.

/// MSI (ID 0x05). The data and mask registers move with the address width.
pub mod msi {
    /// Message control (16 bits).
    pub const CONTROL: usize = 0x02;
    /// Message address, low dword.
    pub const ADDRESS: usize = 0x04;
    /// Message address, high dword (64-bit capabilities).
    pub const ADDRESS_HI: usize = 0x08;
    /// Message data of a 32-bit capability.
    pub const DATA_32: usize = 0x08;
    /// Message data of a 64-bit capability.
    pub const DATA_64: usize = 0x0c;
    /// Mask bits of a 32-bit capability (pending bits follow at +4).
    pub const MASK_32: usize = 0x0c;
    /// Mask bits of a 64-bit capability (pending bits follow at +4).
    pub const MASK_64: usize = 0x10;
    /// Control: MSI enable.
    pub const ENABLE: u16 = 1 << 0;
    /// Control: multiple message capable (log2 of vectors), bits 1–3.
    pub const MMC_SHIFT: u16 = 1;
    /// Control: multiple message enable (log2 of vectors), bits 4–6.
    pub const MME_SHIFT: u16 = 4;
    /// Control: the multiple message enable field.
    pub const MME_MASK: u16 = 7 << MME_SHIFT;
    /// Control: 64-bit address capable.
    pub const IS_64: u16 = 1 << 7;
    /// Control: per-vector masking capable.
    pub const PVM: u16 = 1 << 8;
}

/// MSI-X (ID 0x11).
pub mod msix {
    /// Message control (16 bits).
    pub const CONTROL: usize = 0x02;
    /// Table offset and BIR (dword).
    pub const TABLE: usize = 0x04;
    /// PBA offset and BIR (dword).
    pub const PBA: usize = 0x08;
    /// Control: table size minus one, bits 0–10.
    pub const TABLE_SIZE_MASK: u16 = 0x7ff;
    /// Control: function mask.
    pub const FUNCTION_MASK: u16 = 1 << 14;
    /// Control: MSI-X enable.
    pub const ENABLE: u16 = 1 << 15;
    /// Table/PBA register: the BAR indicator, bits 0–2.
    pub const BIR_MASK: u32 = 7;
}

/// Power Management (ID 0x01).
pub mod pm {
    /// Power management capabilities (PMC, 16 bits).
    pub const PMC: usize = 0x02;
    /// Power management control/status (PMCSR, 16 bits).
    pub const PMCSR: usize = 0x04;
    /// PMC: D1 supported.
    pub const PMC_D1: u16 = 1 << 9;
    /// PMC: D2 supported.
    pub const PMC_D2: u16 = 1 << 10;
    /// PMCSR: power state, bits 0–1 (0 = D0 … 3 = D3hot).
    pub const STATE_MASK: u16 = 3;
    /// PMCSR: No_Soft_Reset.
    pub const NO_SOFT_RESET: u16 = 1 << 3;
    /// PMCSR: PME enable.
    pub const PME_ENABLE: u16 = 1 << 8;
    /// PMCSR: data select, bits 9–12.
    pub const DATA_SELECT_MASK: u16 = 0xf << 9;
    /// PMCSR: PME status (write one to clear).
    pub const PME_STATUS: u16 = 1 << 15;
}

/// PCI Express (ID 0x10).
pub mod exp {
    /// PCI Express capabilities register (16 bits).
    pub const FLAGS: usize = 0x02;
    /// Device capabilities.
    pub const DEVCAP: usize = 0x04;
    /// Device control.
    pub const DEVCTL: usize = 0x08;
    /// Device status.
    pub const DEVSTA: usize = 0x0a;
    /// Link capabilities.
    pub const LNKCAP: usize = 0x0c;
    /// Link control.
    pub const LNKCTL: usize = 0x10;
    /// Link status.
    pub const LNKSTA: usize = 0x12;
    /// Slot capabilities.
    pub const SLTCAP: usize = 0x14;
    /// Slot control.
    pub const SLTCTL: usize = 0x18;
    /// Slot status.
    pub const SLTSTA: usize = 0x1a;
    /// Root control.
    pub const RTCTL: usize = 0x1c;
    /// Root capabilities.
    pub const RTCAP: usize = 0x1e;
    /// Root status.
    pub const RTSTA: usize = 0x20;
    /// Device capabilities 2 (version 2 and later, as the rest below).
    pub const DEVCAP2: usize = 0x24;
    /// Device control 2.
    pub const DEVCTL2: usize = 0x28;
    /// Link capabilities 2.
    pub const LNKCAP2: usize = 0x2c;
    /// Link control 2.
    pub const LNKCTL2: usize = 0x30;
    /// Link status 2.
    pub const LNKSTA2: usize = 0x32;
    /// Bytes of a version 1 capability (through the root registers).
    pub const LEN_V1: usize = 0x24;
    /// Bytes of a version 2 capability (through link control/status 2 and
    /// the slot registers 2).
    pub const LEN_V2: usize = 0x3c;
    /// Device capabilities: function-level reset capable.
    pub const DEVCAP_FLR: u32 = 1 << 28;
    /// Device control: correctable, non-fatal, fatal and unsupported
    /// request reporting enables (bits 0–3).
    pub const DEVCTL_REPORTING: u16 = 0xf;
    /// Device control: enable relaxed ordering.
    pub const DEVCTL_RELAXED: u16 = 1 << 4;
    /// Device control: max payload size, bits 5–7.
    pub const DEVCTL_PAYLOAD: u16 = 7 << 5;
    /// Device control: extended tag field enable.
    pub const DEVCTL_EXT_TAG: u16 = 1 << 8;
    /// Device control: phantom functions enable.
    pub const DEVCTL_PHANTOM: u16 = 1 << 9;
    /// Device control: aux power PM enable.
    pub const DEVCTL_AUX_PM: u16 = 1 << 10;
    /// Device control: enable no snoop.
    pub const DEVCTL_NOSNOOP: u16 = 1 << 11;
    /// Device control: max read request size, bits 12–14.
    pub const DEVCTL_READRQ: u16 = 7 << 12;
    /// Device control: initiate function-level reset (reads as 0).
    pub const DEVCTL_FLR: u16 = 1 << 15;
    /// Device status: correctable, non-fatal, fatal and unsupported
    /// request detected (bits 0–3, write one to clear).
    pub const DEVSTA_ERRORS: u16 = 0xf;
    /// Link control: ASPM control, bits 0–1.
    pub const LNKCTL_ASPM: u16 = 3;
    /// Link control: link disable (ports).
    pub const LNKCTL_DISABLE: u16 = 1 << 4;
    /// Link control: retrain link (ports; reads as 0).
    pub const LNKCTL_RETRAIN: u16 = 1 << 5;
    /// Link control: common clock configuration.
    pub const LNKCTL_COMMON_CLOCK: u16 = 1 << 6;
    /// Link control: extended synch.
    pub const LNKCTL_EXT_SYNCH: u16 = 1 << 7;
    /// Link status: bandwidth management and autonomous bandwidth status
    /// (bits 14–15, write one to clear).
    pub const LNKSTA_BW_STATUS: u16 = 3 << 14;
    /// Device control 2: completion timeout value and disable, bits 0–4.
    pub const DEVCTL2_COMP_TIMEOUT: u16 = 0x1f;
    /// Device control 2: ARI forwarding enable (set by the host at probe).
    pub const DEVCTL2_ARI: u16 = 1 << 5;
}

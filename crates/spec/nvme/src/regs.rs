//! Controller registers in BAR0 (NVMe base specification, "Controller Registers").
//!
//! Each register is a small `Copy` struct around its raw value with named field accessors;
//! the driver reads the raw value through the kit and wraps it here.

use crate::bits;
use serde::Serialize;

/// Register offsets in BAR0.
pub mod offset {
    /// Controller Capabilities (64-bit).
    pub const CAP: u64 = 0x00;
    /// Version (32-bit).
    pub const VS: u64 = 0x08;
    /// Interrupt Mask Set (32-bit).
    pub const INTMS: u64 = 0x0c;
    /// Interrupt Mask Clear (32-bit).
    pub const INTMC: u64 = 0x10;
    /// Controller Configuration (32-bit).
    pub const CC: u64 = 0x14;
    /// Controller Status (32-bit).
    pub const CSTS: u64 = 0x1c;
    /// Admin Queue Attributes (32-bit).
    pub const AQA: u64 = 0x24;
    /// Admin Submission Queue base address (64-bit).
    pub const ASQ: u64 = 0x28;
    /// Admin Completion Queue base address (64-bit).
    pub const ACQ: u64 = 0x30;
    /// First doorbell register.
    pub const DOORBELL_BASE: u64 = 0x1000;
}

/// Controller Capabilities (CAP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cap(pub u64);

impl Cap {
    /// Maximum queue entries supported, as a count (the register holds it 0-based).
    pub fn max_queue_entries(self) -> u32 {
        bits(self.0, 0, 15) as u32 + 1
    }
    /// Contiguous queues required.
    pub fn contiguous_queues_required(self) -> bool {
        bits(self.0, 16, 16) != 0
    }
    /// Worst-case time for CSTS.RDY to follow CC.EN, in milliseconds (CAP.TO is in 500 ms units).
    pub fn timeout_ms(self) -> u64 {
        bits(self.0, 24, 31) * 500
    }
    /// Doorbell stride exponent (DSTRD): doorbells are `4 << dstrd` bytes apart.
    pub fn doorbell_stride(self) -> u32 {
        bits(self.0, 32, 35) as u32
    }
    /// NVM Subsystem Reset supported.
    pub fn subsystem_reset(self) -> bool {
        bits(self.0, 36, 36) != 0
    }
    /// Command sets supported (CSS bit field; bit 0 = NVM command set).
    pub fn command_sets(self) -> u8 {
        bits(self.0, 37, 44) as u8
    }
    /// Minimum memory page size, in bytes (`2 ^ (12 + MPSMIN)`).
    pub fn min_page_size(self) -> u64 {
        1u64 << (12 + bits(self.0, 48, 51))
    }
    /// Maximum memory page size, in bytes.
    pub fn max_page_size(self) -> u64 {
        1u64 << (12 + bits(self.0, 52, 55))
    }
}

/// Version (VS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Version(pub u32);

impl Version {
    /// Major version.
    pub fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// Minor version.
    pub fn minor(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// Tertiary version.
    pub fn tertiary(self) -> u8 {
        self.0 as u8
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major(), self.minor(), self.tertiary())
    }
}

/// Shutdown notification (CC.SHN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// No notification.
    None = 0,
    /// Normal shutdown.
    Normal = 1,
    /// Abrupt shutdown.
    Abrupt = 2,
}

/// Controller Configuration (CC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cc(pub u32);

impl Cc {
    /// Enable bit.
    pub fn enabled(self) -> bool {
        self.0 & 1 != 0
    }
    /// Returns a copy with EN set or cleared.
    pub fn with_enable(self, en: bool) -> Cc {
        Cc((self.0 & !1) | en as u32)
    }
    /// Returns a copy with the memory page size set to `2 ^ (12 + mps)` bytes.
    pub fn with_page_size_shift(self, mps: u32) -> Cc {
        Cc((self.0 & !(0xf << 7)) | ((mps & 0xf) << 7))
    }
    /// Returns a copy with the I/O queue entry sizes set (log2 of bytes: 6 for SQ, 4 for CQ).
    pub fn with_entry_sizes(self, iosqes: u32, iocqes: u32) -> Cc {
        let v = self.0 & !(0xff << 16);
        Cc(v | ((iosqes & 0xf) << 16) | ((iocqes & 0xf) << 20))
    }
    /// Returns a copy with the command set (CSS) field set (0 = NVM).
    pub fn with_command_set(self, css: u32) -> Cc {
        Cc((self.0 & !(0x7 << 4)) | ((css & 0x7) << 4))
    }
    /// Returns a copy with the arbitration mechanism (AMS) field set (0 = round robin).
    pub fn with_arbitration(self, ams: u32) -> Cc {
        Cc((self.0 & !(0x7 << 11)) | ((ams & 0x7) << 11))
    }
    /// Returns a copy with the shutdown notification set.
    pub fn with_shutdown(self, shn: Shutdown) -> Cc {
        Cc((self.0 & !(0x3 << 14)) | ((shn as u32) << 14))
    }
    /// Memory page size in bytes.
    pub fn page_size(self) -> u64 {
        1u64 << (12 + ((self.0 >> 7) & 0xf))
    }
}

/// Shutdown status (CSTS.SHST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownStatus {
    /// Normal operation.
    Normal,
    /// Shutdown processing in progress.
    Occurring,
    /// Shutdown processing complete.
    Complete,
    /// Reserved value.
    Reserved,
}

/// Controller Status (CSTS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csts(pub u32);

impl Csts {
    /// Ready.
    pub fn ready(self) -> bool {
        self.0 & 1 != 0
    }
    /// Controller fatal status.
    pub fn fatal(self) -> bool {
        self.0 & 2 != 0
    }
    /// Shutdown status.
    pub fn shutdown_status(self) -> ShutdownStatus {
        match (self.0 >> 2) & 3 {
            0 => ShutdownStatus::Normal,
            1 => ShutdownStatus::Occurring,
            2 => ShutdownStatus::Complete,
            _ => ShutdownStatus::Reserved,
        }
    }
    /// All-ones reads mean the device is gone (surprise removal or a dead link).
    pub fn is_all_ones(self) -> bool {
        self.0 == u32::MAX
    }
}

/// Admin Queue Attributes (AQA): both sizes are counts here, 0-based in the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aqa {
    /// Admin submission queue entries (2..=4096).
    pub sq_entries: u16,
    /// Admin completion queue entries (2..=4096).
    pub cq_entries: u16,
}

impl Aqa {
    /// The register value.
    pub fn to_raw(self) -> u32 {
        let sq = (self.sq_entries.saturating_sub(1) as u32) & 0xfff;
        let cq = (self.cq_entries.saturating_sub(1) as u32) & 0xfff;
        sq | (cq << 16)
    }
    /// Parses a register value.
    pub fn from_raw(v: u32) -> Aqa {
        Aqa {
            sq_entries: (v & 0xfff) as u16 + 1,
            cq_entries: ((v >> 16) & 0xfff) as u16 + 1,
        }
    }
}

/// Offset in BAR0 of submission queue `qid`'s tail doorbell.
pub fn sq_tail_doorbell(qid: u16, dstrd: u32) -> u64 {
    offset::DOORBELL_BASE + (2 * qid as u64) * (4u64 << dstrd)
}

/// Offset in BAR0 of completion queue `qid`'s head doorbell.
pub fn cq_head_doorbell(qid: u16, dstrd: u32) -> u64 {
    offset::DOORBELL_BASE + (2 * qid as u64 + 1) * (4u64 << dstrd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_fields_match_qemu_value() {
        // An example CAP: MQES 2047, CQR, TO 15 (7.5 s), CSS NVM (+ bit 7, admin only)
        // MPSMAX 4 (64 KiB), MPSMIN 0 (4 KiB).
        let cap = Cap(0x0040_0080_0f01_07ff | (1 << 37));
        assert_eq!(cap.max_queue_entries(), 2048);
        assert!(cap.contiguous_queues_required());
        assert_eq!(cap.timeout_ms(), 7500);
        assert_eq!(cap.doorbell_stride(), 0);
        assert_eq!(cap.min_page_size(), 4096);
        assert_eq!(cap.max_page_size(), 1 << 16);
        assert_eq!(cap.command_sets() & 1, 1);
    }

    #[test]
    fn doorbells_follow_the_stride() {
        assert_eq!(sq_tail_doorbell(0, 0), 0x1000);
        assert_eq!(cq_head_doorbell(0, 0), 0x1004);
        assert_eq!(sq_tail_doorbell(1, 0), 0x1008);
        assert_eq!(cq_head_doorbell(1, 0), 0x100c);
        // DSTRD 2: 16-byte stride.
        assert_eq!(sq_tail_doorbell(1, 2), 0x1020);
        assert_eq!(cq_head_doorbell(1, 2), 0x1030);
    }

    #[test]
    fn cc_builders_set_only_their_fields() {
        let cc = Cc::default()
            .with_entry_sizes(6, 4)
            .with_page_size_shift(0)
            .with_command_set(0)
            .with_arbitration(0)
            .with_enable(true);
        assert_eq!(cc.0, 0x0046_0001);
        assert!(cc.enabled());
        assert_eq!(cc.page_size(), 4096);
        let cc = cc.with_shutdown(Shutdown::Normal).with_enable(false);
        assert_eq!(cc.0, 0x0046_4000);
    }

    #[test]
    fn csts_and_aqa_and_version() {
        assert!(Csts(1).ready());
        assert!(Csts(3).fatal());
        assert_eq!(Csts(8).shutdown_status(), ShutdownStatus::Complete);
        assert!(Csts(u32::MAX).is_all_ones());
        let aqa = Aqa {
            sq_entries: 32,
            cq_entries: 64,
        };
        assert_eq!(aqa.to_raw(), 0x003f_001f);
        assert_eq!(Aqa::from_raw(aqa.to_raw()), aqa);
        assert_eq!(Version(0x0001_0400).to_string(), "1.4.0");
    }
}

//! Submission queue entries (64 bytes) and the commands the driver issues.

use crate::{check_len, le, Error};
use serde::Serialize;

/// Size of a submission queue entry in bytes (CC.IOSQES = 6).
pub const SQE_SIZE: usize = 64;

/// Admin command opcodes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum AdminOpcode {
    /// Delete I/O Submission Queue.
    DeleteIoSq = 0x00,
    /// Create I/O Submission Queue.
    CreateIoSq = 0x01,
    /// Get Log Page.
    GetLogPage = 0x02,
    /// Delete I/O Completion Queue.
    DeleteIoCq = 0x04,
    /// Create I/O Completion Queue.
    CreateIoCq = 0x05,
    /// Identify.
    Identify = 0x06,
    /// Abort.
    Abort = 0x08,
    /// Set Features.
    SetFeatures = 0x09,
    /// Get Features.
    GetFeatures = 0x0a,
}

/// NVM command set opcodes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum NvmOpcode {
    /// Flush.
    Flush = 0x00,
    /// Write.
    Write = 0x01,
    /// Read.
    Read = 0x02,
}

/// Identify CNS values.
pub mod cns {
    /// Identify Namespace data structure for NSID.
    pub const NAMESPACE: u8 = 0x00;
    /// Identify Controller data structure.
    pub const CONTROLLER: u8 = 0x01;
    /// Active Namespace ID list (NSIDs greater than NSID).
    pub const ACTIVE_NAMESPACES: u8 = 0x02;
}

/// Feature identifiers used here.
pub mod feature {
    /// Number of Queues.
    pub const NUMBER_OF_QUEUES: u8 = 0x07;
    /// Interrupt Coalescing.
    pub const INTERRUPT_COALESCING: u8 = 0x08;
}

/// A submission queue entry as a plain struct (the parsed/emitted representation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Command {
    /// Opcode (CDW0 bits 7:0).
    pub opcode: u8,
    /// Fused operation (CDW0 bits 9:8).
    pub fuse: u8,
    /// PRP or SGL for data transfer (CDW0 bits 15:14); 0 = PRPs.
    pub psdt: u8,
    /// Command identifier (CDW0 bits 31:16).
    pub cid: u16,
    /// Namespace identifier.
    pub nsid: u32,
    /// Command dwords 2 and 3.
    pub cdw2: u32,
    /// Command dword 3.
    pub cdw3: u32,
    /// Metadata pointer.
    pub mptr: u64,
    /// PRP entry 1.
    pub prp1: u64,
    /// PRP entry 2.
    pub prp2: u64,
    /// Command dwords 10..=15.
    pub cdw: [u32; 6],
}

impl Command {
    /// IDENTIFY with `cns` for `nsid`, data to the page at `prp1`.
    pub fn identify(cns: u8, nsid: u32, prp1: u64) -> Command {
        let mut c = Command::admin(AdminOpcode::Identify);
        c.nsid = nsid;
        c.prp1 = prp1;
        c.cdw[0] = cns as u32;
        c
    }

    /// CREATE I/O COMPLETION QUEUE `qid` of `entries` entries at `base` (physically
    /// contiguous), interrupting on MSI-X `vector` when `interrupts` is set.
    pub fn create_io_cq(
        qid: u16,
        entries: u16,
        base: u64,
        vector: u16,
        interrupts: bool,
    ) -> Command {
        let mut c = Command::admin(AdminOpcode::CreateIoCq);
        c.prp1 = base;
        c.cdw[0] = ((entries.saturating_sub(1) as u32) << 16) | qid as u32;
        c.cdw[1] = ((vector as u32) << 16) | ((interrupts as u32) << 1) | 1;
        c
    }

    /// CREATE I/O SUBMISSION QUEUE `qid` of `entries` entries at `base`, completing on `cqid`.
    pub fn create_io_sq(qid: u16, entries: u16, base: u64, cqid: u16) -> Command {
        let mut c = Command::admin(AdminOpcode::CreateIoSq);
        c.prp1 = base;
        c.cdw[0] = ((entries.saturating_sub(1) as u32) << 16) | qid as u32;
        c.cdw[1] = ((cqid as u32) << 16) | 1;
        c
    }

    /// DELETE I/O SUBMISSION QUEUE `qid`.
    pub fn delete_io_sq(qid: u16) -> Command {
        let mut c = Command::admin(AdminOpcode::DeleteIoSq);
        c.cdw[0] = qid as u32;
        c
    }

    /// DELETE I/O COMPLETION QUEUE `qid`.
    pub fn delete_io_cq(qid: u16) -> Command {
        let mut c = Command::admin(AdminOpcode::DeleteIoCq);
        c.cdw[0] = qid as u32;
        c
    }

    /// SET FEATURES Number of Queues: ask for `sq` submission and `cq` completion I/O queues
    /// (counts; the command carries them 0-based). The completion's DW0 says what was granted.
    pub fn set_number_of_queues(sq: u16, cq: u16) -> Command {
        let mut c = Command::admin(AdminOpcode::SetFeatures);
        c.cdw[0] = feature::NUMBER_OF_QUEUES as u32;
        c.cdw[1] = ((cq.saturating_sub(1) as u32) << 16) | sq.saturating_sub(1) as u32;
        c
    }

    /// READ or WRITE `blocks` logical blocks (1..=65536) at `slba` of namespace `nsid`.
    pub fn read_write(
        op: NvmOpcode,
        nsid: u32,
        slba: u64,
        blocks: u32,
        prp1: u64,
        prp2: u64,
    ) -> Command {
        let mut c = Command {
            opcode: op as u8,
            nsid,
            prp1,
            prp2,
            ..Command::default()
        };
        c.cdw[0] = slba as u32;
        c.cdw[1] = (slba >> 32) as u32;
        c.cdw[2] = blocks.saturating_sub(1) & 0xffff;
        c
    }

    /// FLUSH namespace `nsid`.
    pub fn flush(nsid: u32) -> Command {
        Command {
            opcode: NvmOpcode::Flush as u8,
            nsid,
            ..Command::default()
        }
    }

    fn admin(op: AdminOpcode) -> Command {
        Command {
            opcode: op as u8,
            ..Command::default()
        }
    }

    /// Writes the entry into `buf` (at least [`SQE_SIZE`] bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        check_len("submission entry", buf, SQE_SIZE)?;
        let cdw0 = self.opcode as u32
            | ((self.fuse as u32 & 3) << 8)
            | ((self.psdt as u32 & 3) << 14)
            | ((self.cid as u32) << 16);
        le::put_u32(buf, 0, cdw0);
        le::put_u32(buf, 4, self.nsid);
        le::put_u32(buf, 8, self.cdw2);
        le::put_u32(buf, 12, self.cdw3);
        le::put_u64(buf, 16, self.mptr);
        le::put_u64(buf, 24, self.prp1);
        le::put_u64(buf, 32, self.prp2);
        for (i, d) in self.cdw.iter().enumerate() {
            le::put_u32(buf, 40 + 4 * i, *d);
        }
        Ok(())
    }

    /// The entry as its 64 bytes.
    pub fn to_bytes(&self) -> [u8; SQE_SIZE] {
        let mut b = [0u8; SQE_SIZE];
        // Cannot fail: the array has exactly SQE_SIZE bytes.
        let _ = self.emit(&mut b);
        b
    }

    /// Parses an entry from its bytes.
    pub fn parse<T: AsRef<[u8]>>(view: &SubmissionEntry<T>) -> Command {
        let b = view.buf.as_ref();
        let cdw0 = le::u32(b, 0);
        let mut cdw = [0u32; 6];
        for (i, d) in cdw.iter_mut().enumerate() {
            *d = le::u32(b, 40 + 4 * i);
        }
        Command {
            opcode: cdw0 as u8,
            fuse: ((cdw0 >> 8) & 3) as u8,
            psdt: ((cdw0 >> 14) & 3) as u8,
            cid: (cdw0 >> 16) as u16,
            nsid: le::u32(b, 4),
            cdw2: le::u32(b, 8),
            cdw3: le::u32(b, 12),
            mptr: le::u64(b, 16),
            prp1: le::u64(b, 24),
            prp2: le::u64(b, 32),
            cdw,
        }
    }

    /// Starting LBA of a READ/WRITE (CDW10/11).
    pub fn slba(&self) -> u64 {
        self.cdw[0] as u64 | ((self.cdw[1] as u64) << 32)
    }

    /// Number of logical blocks of a READ/WRITE (CDW12 bits 15:0, stored 0-based).
    pub fn blocks(&self) -> u32 {
        (self.cdw[2] & 0xffff) + 1
    }

    /// A short human name for the opcode, given whether the command went to the admin queue.
    pub fn name(&self, admin: bool) -> &'static str {
        opcode_name(self.opcode, admin)
    }
}

/// The name of `opcode` in the admin or NVM command set.
pub fn opcode_name(opcode: u8, admin: bool) -> &'static str {
    match (admin, opcode) {
        (true, 0x00) => "DELETE I/O SQ",
        (true, 0x01) => "CREATE I/O SQ",
        (true, 0x02) => "GET LOG PAGE",
        (true, 0x04) => "DELETE I/O CQ",
        (true, 0x05) => "CREATE I/O CQ",
        (true, 0x06) => "IDENTIFY",
        (true, 0x08) => "ABORT",
        (true, 0x09) => "SET FEATURES",
        (true, 0x0a) => "GET FEATURES",
        (true, _) => "admin command",
        (false, 0x00) => "FLUSH",
        (false, 0x01) => "WRITE",
        (false, 0x02) => "READ",
        (false, _) => "I/O command",
    }
}

/// A checked view over a 64-byte submission queue entry.
#[derive(Debug, Clone, Copy)]
pub struct SubmissionEntry<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> SubmissionEntry<T> {
    /// Wraps `buf` after checking it holds a whole entry.
    pub fn new_checked(buf: T) -> Result<Self, Error> {
        check_len("submission entry", buf.as_ref(), SQE_SIZE)?;
        Ok(SubmissionEntry { buf })
    }
    /// The command identifier.
    pub fn cid(&self) -> u16 {
        le::u16(self.buf.as_ref(), 2)
    }
    /// The opcode.
    pub fn opcode(&self) -> u8 {
        self.buf.as_ref()[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn read_command_layout() {
        let c = Command {
            cid: 0x1234,
            ..Command::read_write(NvmOpcode::Read, 1, 0x1_0000_0002, 8, 0x1000, 0x2000)
        };
        let b = c.to_bytes();
        assert_eq!(&b[0..4], &[0x02, 0x00, 0x34, 0x12]);
        assert_eq!(&b[4..8], &[1, 0, 0, 0]);
        assert_eq!(&b[24..32], &0x1000u64.to_le_bytes());
        assert_eq!(&b[32..40], &0x2000u64.to_le_bytes());
        assert_eq!(&b[40..44], &[2, 0, 0, 0]);
        assert_eq!(&b[44..48], &[1, 0, 0, 0]);
        assert_eq!(&b[48..52], &[7, 0, 0, 0]);
        assert_eq!(c.slba(), 0x1_0000_0002);
        assert_eq!(c.blocks(), 8);
    }

    #[test]
    fn queue_creation_layout() {
        let c = Command::create_io_cq(1, 256, 0xdead_0000, 3, true);
        assert_eq!(c.opcode, 0x05);
        assert_eq!(c.cdw[0], 0x00ff_0001);
        assert_eq!(c.cdw[1], 0x0003_0003);
        let s = Command::create_io_sq(2, 64, 0xbeef_0000, 1);
        assert_eq!(s.cdw[0], 0x003f_0002);
        assert_eq!(s.cdw[1], 0x0001_0001);
        let q = Command::set_number_of_queues(2, 2);
        assert_eq!((q.opcode, q.cdw[0], q.cdw[1]), (0x09, 7, 0x0001_0001));
        assert_eq!(Command::identify(cns::CONTROLLER, 0, 0x3000).cdw[0], 1);
    }

    #[test]
    fn short_buffers_are_rejected() {
        assert!(SubmissionEntry::new_checked(&[0u8; 63][..]).is_err());
        assert!(Command::default().emit(&mut [0u8; 10]).is_err());
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(bytes in proptest::collection::vec(any::<u8>(), SQE_SIZE)) {
            // Every 64-byte pattern whose reserved CDW0 bits (13:10) are clear round-trips.
            let mut bytes = bytes;
            bytes[1] &= 0xc3;
            let view = SubmissionEntry::new_checked(&bytes[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let c = Command::parse(&view);
            prop_assert_eq!(c.to_bytes().to_vec(), bytes.clone());
            prop_assert_eq!(view.cid(), c.cid);
        }
    }
}

//! DOS/MBR partition tables: four primary slots in LBA 0, and logical partitions in a chain of
//! extended boot records (EBRs) inside the extended partition.

use crate::{read, BlockSource, Error};
use serde::Serialize;

/// Offset of the 32-bit disk identifier.
const DISK_ID: usize = 440;
/// Offset of the first of four 16-byte partition entries.
const ENTRIES: usize = 446;
/// Most logical partitions followed before the chain is declared a loop.
pub const MAX_LOGICAL: usize = 128;

/// Partition types that mark an extended partition (CHS, LBA, Linux extended).
pub fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85)
}

/// One 16-byte partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RawEntry {
    /// Boot indicator (0x80 = active).
    pub boot: u8,
    /// Partition type.
    pub kind: u8,
    /// First LBA, relative to the table's base.
    pub start: u32,
    /// Number of sectors.
    pub sectors: u32,
}

/// A checked view over a 512-byte sector holding an MBR or EBR.
#[derive(Debug, Clone, Copy)]
pub struct MbrSector<'a> {
    buf: &'a [u8],
}

impl<'a> MbrSector<'a> {
    /// Checks the length and the 0x55 0xAA signature.
    pub fn new_checked(buf: &'a [u8]) -> Result<MbrSector<'a>, String> {
        if buf.len() < 512 {
            return Err(format!("sector of {} bytes is too short", buf.len()));
        }
        if buf[510] != 0x55 || buf[511] != 0xaa {
            return Err(format!(
                "no 55 AA signature (found {:02x} {:02x})",
                buf[510], buf[511]
            ));
        }
        Ok(MbrSector { buf })
    }
    /// The disk identifier.
    pub fn disk_id(&self) -> u32 {
        le_field::u32(self.buf, DISK_ID)
    }
    /// Entry `i` (0..4).
    pub fn entry(&self, i: usize) -> RawEntry {
        let e = &self.buf[ENTRIES + 16 * i..ENTRIES + 16 * i + 16];
        RawEntry {
            boot: e[0],
            kind: e[4],
            start: le_field::u32(e, 8),
            sectors: le_field::u32(e, 12),
        }
    }
    /// Whether an entry has type 0xEE (a GPT protective or hybrid MBR).
    pub fn is_protective(&self) -> bool {
        (0..4).any(|i| self.entry(i).kind == 0xee)
    }
    /// Whether all 16 bytes of entry `i` are zero (sfdisk lists every other entry, whatever
    /// its type or size).
    pub fn is_cleared(&self, i: usize) -> bool {
        self.buf[ENTRIES + 16 * i..ENTRIES + 16 * i + 16]
            .iter()
            .all(|&b| b == 0)
    }
}

/// What LBA 0 holds, as far as a GPT is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MbrKind {
    /// An MBR whose only used type is 0xEE.
    Protective,
    /// An MBR with a 0xEE entry and other typed entries (a hybrid MBR).
    Hybrid,
    /// An MBR (55 AA signature) without a 0xEE entry.
    Dos,
    /// No 55 AA signature: no MBR at all.
    Missing,
}

/// Classifies LBA 0 (the way util-linux's libfdisk tells protective from hybrid: any type
/// other than 0x00 and 0xEE next to a 0xEE entry makes it hybrid).
pub fn kind(lba0: &[u8]) -> MbrKind {
    let Ok(sector) = MbrSector::new_checked(lba0) else {
        return MbrKind::Missing;
    };
    if !sector.is_protective() {
        return MbrKind::Dos;
    }
    if (0..4).any(|i| !matches!(sector.entry(i).kind, 0x00 | 0xee)) {
        MbrKind::Hybrid
    } else {
        MbrKind::Protective
    }
}

/// A partition with absolute LBAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MbrPartition {
    /// Partition number: 1–4 primary (by slot), 5… logical (in chain order).
    pub number: u32,
    /// First LBA.
    pub start: u64,
    /// Number of sectors.
    pub sectors: u64,
    /// Partition type.
    pub kind: u8,
    /// Boot indicator set.
    pub bootable: bool,
}

/// A DOS partition table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mbr {
    /// Disk identifier.
    pub disk_id: u32,
    /// Primary partitions then logical ones.
    pub partitions: Vec<MbrPartition>,
    /// Logical block size.
    pub block_size: u32,
    /// Number of blocks of the disk.
    pub num_blocks: u64,
    /// LBA 1 holds a GPT header that verifies, ignored because LBA 0 has no 0xEE entry (as
    /// sfdisk ignores it; sgdisk refuses such a disk).
    pub gpt_ignored: bool,
}

/// Reads the MBR and follows the EBR chain of its extended partition.
pub fn read_mbr(src: &mut dyn BlockSource) -> Result<Mbr, Error> {
    let (block_size, num_blocks) = (src.block_size(), src.num_blocks());
    let lba0 = read(src, 0, 1)?;
    let sector = MbrSector::new_checked(&lba0).map_err(|e| Error::Invalid(format!("MBR: {e}")))?;
    let mut partitions = Vec::new();
    let mut extended = None;
    for i in 0..4 {
        let e = sector.entry(i);
        if sector.is_cleared(i) {
            continue;
        }
        if e.boot & 0x7f != 0 {
            return Err(Error::Invalid(format!(
                "MBR entry {}: boot indicator {:#04x}",
                i + 1,
                e.boot
            )));
        }
        partitions.push(MbrPartition {
            number: i as u32 + 1,
            start: e.start as u64,
            sectors: e.sectors as u64,
            kind: e.kind,
            bootable: e.boot == 0x80,
        });
        if is_extended(e.kind) && extended.is_none() {
            extended = Some(e.start as u64);
        }
    }
    if let Some(base) = extended {
        read_logical(src, base, num_blocks, &mut partitions)?;
    }
    let gpt_ignored =
        num_blocks > 1 && crate::gpt::HeaderView::new_checked(&read(src, 1, 1)?).is_ok();
    Ok(Mbr {
        disk_id: sector.disk_id(),
        partitions,
        block_size,
        num_blocks,
        gpt_ignored,
    })
}

/// Follows the EBR chain starting at the extended partition's first LBA `base`.
fn read_logical(
    src: &mut dyn BlockSource,
    base: u64,
    num_blocks: u64,
    out: &mut Vec<MbrPartition>,
) -> Result<(), Error> {
    let mut ebr_lba = base;
    let mut seen = Vec::new();
    let mut number = 5;
    loop {
        if ebr_lba == 0 || ebr_lba >= num_blocks {
            return Err(Error::Invalid(format!(
                "EBR at LBA {ebr_lba} is outside the disk"
            )));
        }
        if seen.contains(&ebr_lba) || seen.len() >= MAX_LOGICAL {
            return Err(Error::Invalid(format!("EBR chain loops at LBA {ebr_lba}")));
        }
        seen.push(ebr_lba);
        let block = read(src, ebr_lba, 1)?;
        let ebr = MbrSector::new_checked(&block)
            .map_err(|e| Error::Invalid(format!("EBR at LBA {ebr_lba}: {e}")))?;
        let (logical, next) = (ebr.entry(0), ebr.entry(1));
        if logical.kind != 0 && logical.sectors != 0 {
            out.push(MbrPartition {
                number,
                start: ebr_lba + logical.start as u64,
                sectors: logical.sectors as u64,
                kind: logical.kind,
                bootable: logical.boot == 0x80,
            });
            number += 1;
        }
        if !is_extended(next.kind) || next.start == 0 {
            return Ok(());
        }
        ebr_lba = base + next.start as u64;
    }
}

/// Writes a 16-byte entry (CHS fields left zero: every reader here uses the LBA fields).
pub fn emit_entry(sector: &mut [u8], slot: usize, e: RawEntry) {
    let b = &mut sector[ENTRIES + 16 * slot..ENTRIES + 16 * slot + 16];
    b.fill(0);
    b[0] = e.boot;
    b[4] = e.kind;
    b[8..12].copy_from_slice(&e.start.to_le_bytes());
    b[12..16].copy_from_slice(&e.sectors.to_le_bytes());
}

/// Writes the signature and disk id of an MBR/EBR sector.
pub fn emit_signature(sector: &mut [u8], disk_id: u32) {
    sector[DISK_ID..DISK_ID + 4].copy_from_slice(&disk_id.to_le_bytes());
    sector[510] = 0x55;
    sector[511] = 0xaa;
}

/// Writes a protective MBR covering a disk of `num_blocks` blocks.
pub fn emit_protective(sector: &mut [u8], num_blocks: u64) {
    let sectors = u32::try_from(num_blocks - 1).unwrap_or(u32::MAX);
    emit_entry(
        sector,
        0,
        RawEntry {
            boot: 0,
            kind: 0xee,
            start: 1,
            sectors,
        },
    );
    emit_signature(sector, 0);
}

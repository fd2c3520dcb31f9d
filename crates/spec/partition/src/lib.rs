//! GPT and MBR partition tables as a spec crate: no I/O of its own, no `unsafe`.
//!
//! Tables are read from any [`BlockSource`] (the NVMe driver's block API, a byte slice in
//! tests and fuzzing). Every on-disk structure goes through a checked view; both GPT CRC32s
//! are verified on both copies, the backup is used when the primary is damaged, and
//! [`Table::warnings`] says what was damaged. [`sfdisk`] and [`sgdisk`] format a table the
//! way `sfdisk --dump` and `sgdisk -p` print it — also for damaged tables, where the two
//! tools show different headers — and parse their output so tests can compare with the real
//! tools (`tests/recovery.rs`).
#![forbid(unsafe_code)]

pub mod crc32;
pub mod fuzzing;
pub mod gpt;
pub mod guid;
pub mod mbr;
pub mod sfdisk;
pub mod sgdisk;

pub use gpt::{Gpt, GptEntry, GptHeader, HeaderSource};
pub use guid::Guid;
pub use mbr::{Mbr, MbrKind, MbrPartition};

use serde::Serialize;

/// Something that reads whole logical blocks.
pub trait BlockSource {
    /// Logical block size in bytes (512 or 4096 in practice).
    fn block_size(&self) -> u32;
    /// Number of logical blocks.
    fn num_blocks(&self) -> u64;
    /// Reads `buf.len() / block_size` blocks starting at `lba` into `buf`.
    fn read_blocks(
        &mut self,
        lba: u64,
        buf: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// A disk image held in memory.
#[derive(Debug, Clone, Copy)]
pub struct SliceSource<'a> {
    data: &'a [u8],
    block_size: u32,
}

impl<'a> SliceSource<'a> {
    /// An image of `data` with `block_size`-byte blocks (a trailing partial block is ignored).
    pub fn new(data: &'a [u8], block_size: u32) -> Self {
        SliceSource {
            data,
            block_size: block_size.max(1),
        }
    }
}

impl BlockSource for SliceSource<'_> {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn num_blocks(&self) -> u64 {
        self.data.len() as u64 / self.block_size as u64
    }
    fn read_blocks(
        &mut self,
        lba: u64,
        buf: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let start = lba
            .checked_mul(self.block_size as u64)
            .and_then(|s| usize::try_from(s).ok());
        let end = start.and_then(|s| s.checked_add(buf.len()));
        match (start, end) {
            (Some(s), Some(e)) if e <= self.num_blocks() as usize * self.block_size as usize => {
                buf.copy_from_slice(&self.data[s..e]);
                Ok(())
            }
            _ => Err(format!("read of {} bytes at LBA {lba} is past the end", buf.len()).into()),
        }
    }
}

/// Errors reading a partition table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The block source failed.
    #[error("reading LBA {lba}")]
    Read {
        /// The first block of the failed read.
        lba: u64,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The device's block size cannot hold a table.
    #[error("unsupported block size {0}")]
    BlockSize(u32),
    /// Neither a GPT nor an MBR signature was found.
    #[error("no partition table (no MBR signature, no GPT header)")]
    NoTable,
    /// A structure is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Both GPT headers (or their entry arrays) are damaged.
    #[error("GPT unusable: primary: {primary}; backup: {backup}")]
    GptDamaged {
        /// Why the primary was rejected.
        primary: String,
        /// Why the backup was rejected.
        backup: String,
    },
}

/// A partition table of either kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "label", rename_all = "lowercase")]
pub enum Table {
    /// GUID partition table.
    Gpt(Gpt),
    /// DOS/MBR partition table (label "dos").
    #[serde(rename = "dos")]
    Mbr(Mbr),
}

/// Reads block `lba` (or `count` blocks) into a new buffer.
pub(crate) fn read(src: &mut dyn BlockSource, lba: u64, count: u64) -> Result<Vec<u8>, Error> {
    let bs = src.block_size() as u64;
    let len = count
        .checked_mul(bs)
        .filter(|&l| l <= 64 << 20)
        .ok_or_else(|| Error::Invalid(format!("read of {count} blocks is too large")))?;
    let mut buf = vec![0u8; len as usize];
    src.read_blocks(lba, &mut buf)
        .map_err(|source| Error::Read { lba, source })?;
    Ok(buf)
}

/// Reads the partition table: GPT when LBA 0 holds a protective or hybrid MBR (a 0xEE entry),
/// or no MBR at all but a GPT; the MBR otherwise (also when a GPT header sits behind an MBR
/// without a 0xEE entry, as sfdisk does: `Mbr::gpt_ignored` says so).
pub fn read_table(src: &mut dyn BlockSource) -> Result<Table, Error> {
    let bs = src.block_size();
    if !(512..=65536).contains(&bs) || !bs.is_power_of_two() {
        return Err(Error::BlockSize(bs));
    }
    if src.num_blocks() < 1 {
        return Err(Error::NoTable);
    }
    match mbr::kind(&read(src, 0, 1)?) {
        MbrKind::Protective | MbrKind::Hybrid => gpt::read_gpt(src).map(Table::Gpt),
        MbrKind::Missing => gpt::read_gpt(src)
            .map(Table::Gpt)
            .map_err(|_| Error::NoTable),
        MbrKind::Dos => mbr::read_mbr(src).map(Table::Mbr),
    }
}

impl Table {
    /// What a reader should be told besides the table: damage recovered from, and tables
    /// read or ignored against the letter of the specification. One sentence each.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        match self {
            Table::Gpt(g) => {
                match (&g.primary_problem, g.source) {
                    (Some(p), HeaderSource::Backup) => {
                        w.push(format!("primary GPT damaged ({p}); used the backup"))
                    }
                    (Some(p), HeaderSource::Primary) => w.push(format!(
                        "primary GPT damaged ({p}); used its header with the backup's copy \
                         of the entry array at LBA {}",
                        g.array_lba
                    )),
                    (None, _) => {}
                }
                if let Some(p) = &g.backup_problem {
                    let used = if g.primary_problem.is_none() {
                        "; used the primary"
                    } else {
                        ""
                    };
                    w.push(format!("backup GPT damaged ({p}){used}"));
                }
                if g.mbr == MbrKind::Missing {
                    w.push(
                        "no MBR in LBA 0 (no 55 AA signature); read the GPT without a \
                         protective MBR"
                            .into(),
                    );
                }
            }
            Table::Mbr(m) => {
                if m.gpt_ignored {
                    w.push(
                        "LBA 1 holds a GPT header, ignored: the MBR in LBA 0 has no \
                         protective (0xEE) entry"
                            .into(),
                    );
                }
            }
        }
        w
    }
}

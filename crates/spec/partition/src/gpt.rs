//! GUID Partition Table (UEFI specification, chapter 5.3): header and entry array, both CRC32s
//! checked, and the backup header at the end of the disk used when the primary is damaged.

use crate::crc32::crc32;
use crate::guid::Guid;
use crate::mbr::MbrKind;
use crate::{read, BlockSource, Error};
use serde::Serialize;

/// "EFI PART".
pub const SIGNATURE: [u8; 8] = *b"EFI PART";
/// Size of the header fields defined by the specification.
pub const HEADER_SIZE: usize = 92;
/// The entry size every tool writes.
pub const ENTRY_SIZE: usize = 128;
/// Largest entry array accepted (bytes): far above the 16 KiB tools write, far below memory.
pub const MAX_ARRAY_BYTES: u64 = 4 << 20;

/// A parsed GPT header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptHeader {
    /// Revision (0x0001_0000 for 1.0).
    pub revision: u32,
    /// Header size in bytes (92 .. block size).
    pub header_size: u32,
    /// LBA of this header.
    pub my_lba: u64,
    /// LBA of the other header.
    pub alternate_lba: u64,
    /// First LBA usable by partitions.
    pub first_usable: u64,
    /// Last LBA usable by partitions.
    pub last_usable: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// First LBA of the entry array.
    pub entries_lba: u64,
    /// Number of entries in the array.
    pub num_entries: u32,
    /// Size of one entry (128 × 2ⁿ).
    pub entry_size: u32,
    /// CRC32 of the entry array.
    pub entries_crc: u32,
}

/// A checked view over a GPT header block.
#[derive(Debug, Clone, Copy)]
pub struct HeaderView<'a> {
    buf: &'a [u8],
}

use le_field::{u32 as u32_at, u64 as u64_at};

fn guid_at(b: &[u8], at: usize) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    Guid(g)
}

impl<'a> HeaderView<'a> {
    /// Checks the signature, the header size and the header CRC32.
    pub fn new_checked(buf: &'a [u8]) -> Result<HeaderView<'a>, String> {
        if buf.len() < HEADER_SIZE {
            return Err(format!("header block of {} bytes is too short", buf.len()));
        }
        if buf[0..8] != SIGNATURE {
            return Err("no \"EFI PART\" signature".into());
        }
        let size = u32_at(buf, 12) as usize;
        if size < HEADER_SIZE || size > buf.len() {
            return Err(format!("header size {size} out of range"));
        }
        let stored = u32_at(buf, 16);
        let mut copy = buf[..size].to_vec();
        copy[16..20].fill(0);
        let computed = crc32(&copy);
        if stored != computed {
            return Err(format!(
                "header CRC32 mismatch (stored {stored:08x}, computed {computed:08x})"
            ));
        }
        Ok(HeaderView { buf })
    }

    /// Parses the fields.
    pub fn parse(&self) -> GptHeader {
        let b = self.buf;
        GptHeader {
            revision: u32_at(b, 8),
            header_size: u32_at(b, 12),
            my_lba: u64_at(b, 24),
            alternate_lba: u64_at(b, 32),
            first_usable: u64_at(b, 40),
            last_usable: u64_at(b, 48),
            disk_guid: guid_at(b, 56),
            entries_lba: u64_at(b, 72),
            num_entries: u32_at(b, 80),
            entry_size: u32_at(b, 84),
            entries_crc: u32_at(b, 88),
        }
    }
}

impl GptHeader {
    /// Writes the header (92 bytes, CRC computed) at the start of `buf`, zeroing the rest.
    pub fn emit(&self, buf: &mut [u8]) {
        buf.fill(0);
        buf[0..8].copy_from_slice(&SIGNATURE);
        buf[8..12].copy_from_slice(&self.revision.to_le_bytes());
        buf[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        buf[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        buf[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        buf[40..48].copy_from_slice(&self.first_usable.to_le_bytes());
        buf[48..56].copy_from_slice(&self.last_usable.to_le_bytes());
        buf[56..72].copy_from_slice(&self.disk_guid.0);
        buf[72..80].copy_from_slice(&self.entries_lba.to_le_bytes());
        buf[80..84].copy_from_slice(&self.num_entries.to_le_bytes());
        buf[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        buf[88..92].copy_from_slice(&self.entries_crc.to_le_bytes());
        let crc = crc32(&buf[..HEADER_SIZE]);
        buf[16..20].copy_from_slice(&crc.to_le_bytes());
    }

    /// Bytes of the entry array.
    pub fn array_bytes(&self) -> u64 {
        self.num_entries as u64 * self.entry_size as u64
    }

    /// Blocks of the entry array.
    pub fn array_blocks(&self, block_size: u32) -> u64 {
        self.array_bytes().div_ceil(block_size as u64)
    }

    /// Checks the header's LBAs against the disk and where it was found.
    fn check(&self, at: u64, num_blocks: u64, block_size: u32) -> Result<(), String> {
        if self.my_lba != at {
            return Err(format!(
                "header at LBA {at} says it is at LBA {}",
                self.my_lba
            ));
        }
        // 128 × 2ⁿ is exactly a power of two of at least 128.
        if self.entry_size < ENTRY_SIZE as u32 || !self.entry_size.is_power_of_two() {
            return Err(format!("entry size {} is not 128 × 2ⁿ", self.entry_size));
        }
        if self.array_bytes() > MAX_ARRAY_BYTES {
            return Err(format!(
                "entry array of {} bytes is too large",
                self.array_bytes()
            ));
        }
        let array_end = self.entries_lba.checked_add(self.array_blocks(block_size));
        if self.entries_lba < 2 || array_end.is_none_or(|e| e > num_blocks) {
            return Err(format!(
                "entry array at LBA {} is outside the disk",
                self.entries_lba
            ));
        }
        if self.last_usable >= num_blocks || self.first_usable > self.last_usable.saturating_add(1)
        {
            return Err(format!(
                "usable range {}..={} does not fit a disk of {num_blocks} blocks",
                self.first_usable, self.last_usable
            ));
        }
        Ok(())
    }
}

/// One used entry of the array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptEntry {
    /// 1-based position in the array (the partition number).
    pub number: u32,
    /// Partition type GUID.
    pub type_guid: Guid,
    /// Unique partition GUID.
    pub unique_guid: Guid,
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Attribute bits.
    pub attributes: u64,
    /// Name (UTF-16LE on disk, up to 36 code units).
    pub name: String,
}

impl GptEntry {
    /// Parses one `entry_size`-byte entry (at least 128 bytes).
    pub fn parse(number: u32, b: &[u8]) -> Option<GptEntry> {
        if b.len() < ENTRY_SIZE {
            return None;
        }
        let type_guid = guid_at(b, 0);
        if type_guid.is_zero() {
            return None;
        }
        let units: Vec<u16> = b[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        Some(GptEntry {
            number,
            type_guid,
            unique_guid: guid_at(b, 16),
            first_lba: u64_at(b, 32),
            last_lba: u64_at(b, 40),
            attributes: u64_at(b, 48),
            name: String::from_utf16_lossy(&units),
        })
    }

    /// Writes the entry into the first 128 bytes of `b`.
    pub fn emit(&self, b: &mut [u8]) {
        b[..ENTRY_SIZE].fill(0);
        b[0..16].copy_from_slice(&self.type_guid.0);
        b[16..32].copy_from_slice(&self.unique_guid.0);
        b[32..40].copy_from_slice(&self.first_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        for (i, u) in self.name.encode_utf16().take(36).enumerate() {
            b[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
    }

    /// Number of blocks.
    pub fn blocks(&self) -> u64 {
        self.last_lba
            .saturating_sub(self.first_lba)
            .saturating_add(1)
    }
}

/// Which header a table was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderSource {
    /// The primary header at LBA 1.
    Primary,
    /// The backup header (normally the last LBA).
    Backup,
}

/// A GPT as read from a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpt {
    /// The header used: the table's fields.
    pub header: GptHeader,
    /// The used entries, in array order.
    pub entries: Vec<GptEntry>,
    /// Where they were read: `header.entries_lba`, except when the primary header was sound
    /// but its array and the backup header were not — then the backup's copy of the array,
    /// found where sgdisk looks for it (`header.last_usable + 1`) and checked against the
    /// primary's entry-array CRC32.
    pub array_lba: u64,
    /// Which header was used.
    pub source: HeaderSource,
    /// Why the primary (its header or its entry array) was rejected.
    pub primary_problem: Option<String>,
    /// The primary header when it was sound itself and only its entry array was not (the
    /// backup's entries were used); `sgdisk -p` shows this header.
    pub primary_header: Option<Box<GptHeader>>,
    /// Why the backup was rejected, when the primary was used and its backup checked.
    pub backup_problem: Option<String>,
    /// What LBA 0 holds (protective, hybrid, or no MBR at all).
    pub mbr: MbrKind,
    /// Logical block size of the disk.
    pub block_size: u32,
    /// Number of blocks of the disk.
    pub num_blocks: u64,
}

/// Why the header and array at one LBA were rejected.
struct Rejected {
    problem: String,
    /// The header, when its block verified (signature, size, CRC32).
    header: Option<GptHeader>,
    /// Whether only the entry array failed (the header's fields were sound).
    array_only: bool,
}

/// Reads and checks the header at `lba` and its entry array.
fn read_at(
    src: &mut dyn BlockSource,
    lba: u64,
) -> Result<Result<(GptHeader, Vec<GptEntry>), Rejected>, Error> {
    let (bs, n) = (src.block_size(), src.num_blocks());
    let block = read(src, lba, 1)?;
    let header = match HeaderView::new_checked(&block) {
        Ok(v) => v.parse(),
        Err(problem) => {
            return Ok(Err(Rejected {
                problem,
                header: None,
                array_only: false,
            }))
        }
    };
    if let Err(problem) = header.check(lba, n, bs) {
        return Ok(Err(Rejected {
            problem,
            header: Some(header),
            array_only: false,
        }));
    }
    match read_array(src, &header, header.entries_lba)? {
        Ok(entries) => Ok(Ok((header, entries))),
        Err(problem) => Ok(Err(Rejected {
            problem,
            header: Some(header),
            array_only: true,
        })),
    }
}

/// Reads the entry array `header` describes from `lba` and checks it against the header's
/// CRC32.
fn read_array(
    src: &mut dyn BlockSource,
    header: &GptHeader,
    lba: u64,
) -> Result<Result<Vec<GptEntry>, String>, Error> {
    let blocks = header.array_blocks(src.block_size());
    let mut array = read(src, lba, blocks)?;
    array.truncate(header.array_bytes() as usize);
    let computed = crc32(&array);
    if computed != header.entries_crc {
        return Ok(Err(format!(
            "entry array CRC32 mismatch (stored {:08x}, computed {computed:08x})",
            header.entries_crc
        )));
    }
    Ok(Ok(array
        .chunks_exact(header.entry_size as usize)
        .enumerate()
        .filter_map(|(i, e)| GptEntry::parse(i as u32 + 1, e))
        .collect()))
}

/// Checks the backup that a sound primary `header` names; `None` when it is sound too.
fn check_backup(src: &mut dyn BlockSource, header: &GptHeader) -> Option<String> {
    let lba = header.alternate_lba;
    if lba <= 1 || lba >= src.num_blocks() {
        return Some(format!(
            "the primary puts it at LBA {lba}, which cannot hold it"
        ));
    }
    match read_at(src, lba) {
        Ok(Ok(_)) => None,
        Ok(Err(r)) => Some(format!("at LBA {lba}: {}", r.problem)),
        Err(e) => Some(e.to_string()),
    }
}

/// Reads the GPT: the primary at LBA 1, else the backup (at the primary's alternate LBA when
/// the primary header itself was sound, else at the last LBA). When the primary is used, the
/// backup it names is checked too (`Gpt::backup_problem`). When both are damaged but the
/// primary header is sound, the backup's copy of the entry array is used if it matches the
/// primary's CRC32 (sgdisk does the same; see `Gpt::array_lba`).
pub fn read_gpt(src: &mut dyn BlockSource) -> Result<Gpt, Error> {
    let (block_size, num_blocks) = (src.block_size(), src.num_blocks());
    if num_blocks < 3 {
        return Err(Error::Invalid(format!(
            "disk of {num_blocks} blocks cannot hold a GPT"
        )));
    }
    let mbr = crate::mbr::kind(&read(src, 0, 1)?);
    let gpt = |header: GptHeader, entries, array_lba, source| Gpt {
        header,
        entries,
        array_lba,
        source,
        primary_problem: None,
        primary_header: None,
        backup_problem: None,
        mbr,
        block_size,
        num_blocks,
    };
    let primary = match read_at(src, 1)? {
        Ok((header, entries)) => {
            let backup_problem = check_backup(src, &header);
            let lba = header.entries_lba;
            return Ok(Gpt {
                backup_problem,
                ..gpt(header, entries, lba, HeaderSource::Primary)
            });
        }
        Err(rejected) => rejected,
    };
    // Where the primary header, if its own CRC was fine, says the backup is.
    let hinted = primary
        .header
        .as_ref()
        .map(|h| h.alternate_lba)
        .filter(|&l| l > 1 && l < num_blocks);
    let backup_lba = hinted.unwrap_or(num_blocks - 1);
    let backup = match read_at(src, backup_lba)? {
        Ok((header, entries)) => {
            let lba = header.entries_lba;
            return Ok(Gpt {
                primary_header: primary.header.filter(|_| primary.array_only).map(Box::new),
                primary_problem: Some(primary.problem),
                ..gpt(header, entries, lba, HeaderSource::Backup)
            });
        }
        Err(rejected) => format!("at LBA {backup_lba}: {}", rejected.problem),
    };
    if let Some(header) = primary.header.filter(|_| primary.array_only) {
        let copy = header.last_usable.saturating_add(1);
        let fits = copy
            .checked_add(header.array_blocks(block_size))
            .is_some_and(|end| end <= num_blocks);
        if fits {
            if let Ok(entries) = read_array(src, &header, copy)? {
                return Ok(Gpt {
                    primary_problem: Some(primary.problem),
                    backup_problem: Some(backup),
                    ..gpt(header, entries, copy, HeaderSource::Primary)
                });
            }
        }
    }
    Err(Error::GptDamaged {
        primary: primary.problem,
        backup,
    })
}

/// Builds a whole GPT disk image in memory (primary and backup), for tests and fuzz seeds.
pub fn build_image(
    num_blocks: u64,
    block_size: u32,
    disk_guid: Guid,
    num_entries: u32,
    entries: &[GptEntry],
) -> Vec<u8> {
    let bs = block_size as usize;
    let mut img = vec![0u8; num_blocks as usize * bs];
    let array_blocks = (num_entries as u64 * ENTRY_SIZE as u64).div_ceil(block_size as u64);
    let mut array = vec![0u8; array_blocks as usize * bs];
    for e in entries {
        let at = (e.number as usize - 1) * ENTRY_SIZE;
        e.emit(&mut array[at..at + ENTRY_SIZE]);
    }
    let crc = crc32(&array[..num_entries as usize * ENTRY_SIZE]);
    let last = num_blocks - 1;
    let mut header = GptHeader {
        revision: 0x0001_0000,
        header_size: HEADER_SIZE as u32,
        my_lba: 1,
        alternate_lba: last,
        first_usable: 2 + array_blocks,
        last_usable: last - 1 - array_blocks,
        disk_guid,
        entries_lba: 2,
        num_entries,
        entry_size: ENTRY_SIZE as u32,
        entries_crc: crc,
    };
    // Protective MBR.
    crate::mbr::emit_protective(&mut img[..512], num_blocks);
    header.emit(&mut img[bs..2 * bs]);
    img[2 * bs..(2 + array_blocks as usize) * bs].copy_from_slice(&array);
    let backup_array = (last - array_blocks) as usize * bs;
    img[backup_array..backup_array + array.len()].copy_from_slice(&array);
    header.my_lba = last;
    header.alternate_lba = 1;
    header.entries_lba = last - array_blocks;
    header.emit(&mut img[last as usize * bs..]);
    img
}

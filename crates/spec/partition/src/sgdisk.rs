//! The text `sgdisk -p` (GPT fdisk 1.0.x) prints for a GPT, minus the alignment line (a
//! heuristic of sgdisk's, not a property of the table).
//!
//! sgdisk prints its *main* header, which is not always the header whose entries it shows:
//! when only the primary entry array is damaged it shows the primary header with the backup's
//! entries, and when the primary header is damaged it regenerates one from the backup
//! ([`main_header`]).

use crate::gpt::{Gpt, GptEntry, GptHeader, HeaderSource};
use crate::guid::Guid;
use std::fmt::Write;

/// sgdisk's two-byte type code for a type GUID (the common ones; `FFFF` when unknown).
pub fn type_code(g: &Guid) -> u16 {
    const CODES: &[(&str, u16)] = &[
        ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", 0x8300),
        ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", 0x8200),
        ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", 0xef00),
        ("21686148-6449-6E6F-744E-656564454649", 0xef02),
        ("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", 0x0700),
        ("E6D6D379-F507-44C2-A23C-238F2A3DF928", 0x8e00),
        ("A19D880F-05FC-4D3B-A006-743F0F84911E", 0xfd00),
        ("933AC7E1-2EB4-4F13-B844-0E14E2AEF915", 0x8302),
    ];
    let text = g.to_string();
    CODES
        .iter()
        .find(|(t, _)| *t == text)
        .map_or(0xffff, |(_, c)| *c)
}

/// Bytes in sgdisk's IEEE-prefix form: one decimal, the unit raised while the value is above
/// 1024 (so exactly 1 MiB prints as `1024.0 KiB`).
pub fn ieee_size(bytes: u64) -> String {
    if bytes <= 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64;
    let mut unit = 0;
    let units = ["", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    while v > 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", units[unit])
}

/// Sectors inside `h`'s usable range not covered by a partition.
pub fn free_sectors(h: &GptHeader, entries: &[GptEntry]) -> u64 {
    let usable = (h.last_usable + 1).saturating_sub(h.first_usable);
    let used: u64 = entries
        .iter()
        .map(|e| {
            let lo = e.first_lba.max(h.first_usable);
            let hi = e.last_lba.min(h.last_usable);
            (hi + 1).saturating_sub(lo)
        })
        .sum();
    usable.saturating_sub(used)
}

/// The main header as sgdisk holds it after loading `g`: the primary when it verified (also
/// when its entry array did not and the backup's entries were loaded), else one regenerated
/// from the backup. A regenerated header keeps the backup's fields but puts the entry array
/// right below the first usable LBA — LBA 2 on sgdisk's own layout (first usable 34), LBA
/// 2016 on sfdisk's (first usable 2048) — whatever the damaged primary said.
pub fn main_header(g: &Gpt) -> GptHeader {
    let h = &g.header;
    match (g.source, &g.primary_header) {
        (HeaderSource::Primary, _) => h.clone(),
        (HeaderSource::Backup, Some(primary)) => (**primary).clone(),
        (HeaderSource::Backup, None) => GptHeader {
            my_lba: h.alternate_lba,
            alternate_lba: h.my_lba,
            // sgdisk's unsigned arithmetic, wrap included (only a forged header gets there).
            entries_lba: h.first_usable.wrapping_sub(h.array_blocks(g.block_size)),
            ..h.clone()
        },
    }
}

/// `sgdisk -p` text of `g` on `device`, without the "Partitions will be aligned" line.
pub fn print(g: &Gpt, device: &str) -> String {
    let h = main_header(g);
    let bs = g.block_size as u64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Disk {device}: {} sectors, {}",
        g.num_blocks,
        ieee_size(g.num_blocks * bs)
    );
    let _ = writeln!(s, "Sector size (logical): {bs} bytes");
    let _ = writeln!(s, "Disk identifier (GUID): {}", h.disk_guid);
    let _ = writeln!(s, "Partition table holds up to {} entries", h.num_entries);
    let _ = writeln!(
        s,
        "Main partition table begins at sector {} and ends at sector {}",
        h.entries_lba,
        h.entries_lba
            .wrapping_add(h.array_blocks(g.block_size))
            .wrapping_sub(1)
    );
    let _ = writeln!(
        s,
        "First usable sector is {}, last usable sector is {}",
        h.first_usable, h.last_usable
    );
    let free = free_sectors(&h, &g.entries);
    let _ = writeln!(
        s,
        "Total free space is {free} sectors ({})",
        ieee_size(free * bs)
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Number  Start (sector)    End (sector)  Size       Code  Name"
    );
    for e in &g.entries {
        let size = ieee_size(e.blocks() * bs);
        let _ = writeln!(
            s,
            "{:>4}  {:>14}  {:>14}   {size:<10}  {:04X}  {}",
            e.number,
            e.first_lba,
            e.last_lba,
            type_code(&e.type_guid),
            e.name
        );
    }
    s
}

/// sgdisk's output with the alignment line, warnings and banners removed, ready to compare
/// with [`print`]: from the `Disk` line to the last partition row (what follows — sgdisk's
/// stderr when both streams were captured together — is dropped).
pub fn normalize(sgdisk_output: &str) -> String {
    let mut s = String::new();
    let (mut started, mut rows) = (false, false);
    for line in sgdisk_output.lines() {
        started |= line.starts_with("Disk ");
        if !started || line.starts_with("Partitions will be aligned") {
            continue;
        }
        if rows && !is_row(line) {
            break;
        }
        rows |= line.starts_with("Number  Start (sector)");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// A partition row: the number right-aligned in the first four columns.
fn is_row(line: &str) -> bool {
    line.get(..4).is_some_and(|n| {
        let n = n.trim_start();
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

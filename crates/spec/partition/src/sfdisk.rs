//! The text `sfdisk --dump` (util-linux 2.38) prints for a table, so a table read by our parser
//! can be compared line by line with what the real tool computes for the same image.

use crate::gpt::Gpt;
use crate::mbr::Mbr;
use crate::Table;
use std::fmt::Write;

/// The partition node name sfdisk prints: the device name, `p` when it ends in a digit, the
/// partition number.
pub fn node(device: &str, number: u32) -> String {
    if device.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{device}p{number}")
    } else {
        format!("{device}{number}")
    }
}

/// GPT attribute bits as sfdisk names them.
pub fn gpt_attributes(attrs: u64) -> String {
    let mut words = Vec::new();
    for (bit, name) in [
        (0, "RequiredPartition"),
        (1, "NoBlockIOProtocol"),
        (2, "LegacyBIOSBootable"),
    ] {
        if attrs & (1 << bit) != 0 {
            words.push(name.to_string());
        }
    }
    let guid_bits: Vec<String> = (48..64)
        .filter(|b| attrs & (1u64 << b) != 0)
        .map(|b| b.to_string())
        .collect();
    if !guid_bits.is_empty() {
        words.push(format!("GUID:{}", guid_bits.join(",")));
    }
    words.join(" ")
}

/// `sfdisk --dump` text of `table` on `device`.
pub fn dump(table: &Table, device: &str) -> String {
    match table {
        Table::Gpt(g) => dump_gpt(g, device),
        Table::Mbr(m) => dump_mbr(m, device),
    }
}

fn dump_gpt(g: &Gpt, device: &str) -> String {
    let h = &g.header;
    let mut s = String::new();
    let _ = writeln!(s, "label: gpt");
    let _ = writeln!(s, "label-id: {}", h.disk_guid);
    let _ = writeln!(s, "device: {device}");
    let _ = writeln!(s, "unit: sectors");
    let _ = writeln!(s, "first-lba: {}", h.first_usable);
    let _ = writeln!(s, "last-lba: {}", h.last_usable);
    if h.num_entries != 128 {
        let _ = writeln!(s, "table-length: {}", h.num_entries);
    }
    let _ = writeln!(s, "sector-size: {}", g.block_size);
    let _ = writeln!(s);
    for e in &g.entries {
        let _ = write!(
            s,
            "{} : start={:>12}, size={:>12}, type={}, uuid={}",
            node(device, e.number),
            e.first_lba,
            e.blocks(),
            e.type_guid,
            e.unique_guid
        );
        if !e.name.is_empty() {
            let _ = write!(s, ", name=\"{}\"", e.name);
        }
        if e.attributes != 0 {
            let _ = write!(s, ", attrs=\"{}\"", gpt_attributes(e.attributes));
        }
        let _ = writeln!(s);
    }
    s
}

fn dump_mbr(m: &Mbr, device: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "label: dos");
    let _ = writeln!(s, "label-id: {:#010x}", m.disk_id);
    let _ = writeln!(s, "device: {device}");
    let _ = writeln!(s, "unit: sectors");
    let _ = writeln!(s, "sector-size: {}", m.block_size);
    let _ = writeln!(s);
    for p in &m.partitions {
        let _ = write!(
            s,
            "{} : start={:>12}, size={:>12}, type={:x}",
            node(device, p.number),
            p.start,
            p.sectors,
            p.kind
        );
        if p.bootable {
            let _ = write!(s, ", bootable");
        }
        let _ = writeln!(s);
    }
    s
}

/// The `device:` line of a dump, so ours can be printed with the same name.
pub fn device_of(dump: &str) -> Option<&str> {
    dump.lines().find_map(|l| l.strip_prefix("device: "))
}

/// Compares two dumps line by line; the error names the first difference.
pub fn compare(ours: &str, theirs: &str) -> Result<(), String> {
    let a: Vec<&str> = ours.lines().collect();
    let b: Vec<&str> = theirs.lines().collect();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            return Err(format!("line {}: ours {x:?}, theirs {y:?}", i + 1));
        }
    }
    if a.len() != b.len() {
        return Err(format!("ours has {} lines, theirs {}", a.len(), b.len()));
    }
    Ok(())
}

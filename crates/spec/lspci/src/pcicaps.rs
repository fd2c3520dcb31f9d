//! `-vv` detail lines under older standard-list capabilities: AGP, PCI-X
//! (device and bridge), PCI Advanced Features and the SATA HBA's register
//! location, in pciutils 3.9's words. As elsewhere, nothing is printed when
//! the registers lie past the readable bytes.

use super::regs::Regs;
use super::verbose::{bits, flag32};
use pci::{ConfigSpace, HeaderType};
use std::fmt::Write;

type Cs = ConfigSpace<Vec<u8>>;

/// AGP rates `x1,x2,x4` (or `x4,x8` for AGP3), `<none>` if no bit is set.
fn agp_rate(rate: u32, agp3: bool) -> String {
    let shift = if agp3 { 2 } else { 0 };
    let rates: Vec<String> = (0..3)
        .filter(|i| rate & (1 << i) != 0)
        .map(|i| format!("x{}", 1 << (i + shift)))
        .collect();
    if rates.is_empty() {
        "<none>".into()
    } else {
        rates.join(",")
    }
}

/// AGP status and command (`word` is the capability's version word).
pub(super) fn agp(out: &mut String, c: &Cs, at: usize, word: u16) {
    let r = Regs { c, at };
    if !r.has(4, 8) {
        return;
    }
    let t = r.d(4);
    let agp3 = (word >> 4) & 0xf >= 3 && t & 8 != 0;
    let _ = writeln!(
        out,
        "\t\tStatus: RQ={} Iso{} ArqSz={} Cal={} {} AGP3{} Rate={}",
        (t >> 24) + 1,
        flag32(t, 0x10000),
        (t >> 13) & 7,
        (t >> 10) & 7,
        bits(
            t,
            &[
                ("SBA", 0x200),
                ("ITACoh", 0x100),
                ("GART64", 0x80),
                ("HTrans", 0x40),
                ("64bit", 0x20),
                ("FW", 0x10),
            ]
        ),
        flag32(t, 8),
        agp_rate(t & 7, agp3)
    );
    let t = r.d(8);
    let _ = writeln!(
        out,
        "\t\tCommand: RQ={} ArqSz={} Cal={} {} Rate={}",
        (t >> 24) + 1,
        (t >> 13) & 7,
        (t >> 10) & 7,
        bits(
            t,
            &[
                ("SBA", 0x200),
                ("AGP", 0x100),
                ("GART64", 0x80),
                ("64bit", 0x20),
                ("FW", 0x10),
            ]
        ),
        agp_rate(t & 7, agp3)
    );
}

const MAX_OUTSTANDING: [u32; 8] = [1, 2, 3, 4, 8, 12, 16, 32];

/// The requester ID a PCI-X status register reports.
fn pcix_dev(s: u32) -> String {
    format!(
        "Dev={:02x}:{:02x}.{}",
        (s >> 8) & 0xff,
        (s >> 3) & 0x1f,
        s & 7
    )
}

/// PCI-X command/status (devices) or secondary status, status and split
/// transaction control (bridges); `word` is the capability's second word.
pub(super) fn pcix(out: &mut String, c: &Cs, at: usize, word: u16) {
    let r = Regs { c, at };
    let w = u32::from(word);
    match c.header_type() {
        HeaderType::Normal => {
            if !r.has(4, 4) {
                return;
            }
            let s = r.d(4);
            let _ = writeln!(
                out,
                "\t\tCommand: DPERE{} ERO{} RBC={} OST={}",
                flag32(w, 1),
                flag32(w, 2),
                1u32 << (9 + ((w >> 2) & 3)),
                MAX_OUTSTANDING[((w >> 4) & 7) as usize]
            );
            let _ = writeln!(
                out,
                "\t\tStatus: {} {} DC={} DMMRBC={} DMOST={} DMCRS={} {}",
                pcix_dev(s),
                bits(
                    s,
                    &[
                        ("64bit", 1 << 16),
                        ("133MHz", 1 << 17),
                        ("SCD", 1 << 18),
                        ("USC", 1 << 19)
                    ]
                ),
                if s & (1 << 20) != 0 {
                    "bridge"
                } else {
                    "simple"
                },
                1u32 << (9 + ((s >> 21) & 3)),
                MAX_OUTSTANDING[((s >> 23) & 7) as usize],
                1u32 << (3 + ((s >> 26) & 7)),
                bits(
                    s,
                    &[("RSCEM", 1 << 29), ("266MHz", 1 << 30), ("533MHz", 1 << 31)]
                ),
            );
        }
        HeaderType::Bridge => {
            if !r.has(4, 12) {
                return;
            }
            const SPLIT: &[(&str, u32)] = &[
                ("64bit", 1),
                ("133MHz", 2),
                ("SCD", 4),
                ("USC", 8),
                ("SCO", 0x10),
                ("SRD", 0x20),
            ];
            let freq = ["conv", "66MHz", "100MHz", "133MHz", "?4", "?5", "?6", "?7"];
            let _ = writeln!(
                out,
                "\t\tSecondary Status: {} Freq={}",
                bits(w, SPLIT),
                freq[((w >> 6) & 7) as usize]
            );
            let s = r.d(4);
            let _ = writeln!(out, "\t\tStatus: {} {}", pcix_dev(s), bits(s >> 16, SPLIT));
            for (name, off) in [("Upstream", 8), ("Downstream", 12)] {
                let v = r.d(off);
                let _ = writeln!(
                    out,
                    "\t\t{name}: Capacity={} CommitmentLimit={}",
                    v & 0xffff,
                    v >> 16
                );
            }
        }
        _ => {}
    }
}

/// PCI Advanced Features: capabilities, control and status bytes.
pub(super) fn af(out: &mut String, c: &Cs, at: usize) {
    let r = Regs { c, at };
    if !r.has(3, 3) {
        return;
    }
    let _ = writeln!(
        out,
        "\t\tAFCap: {}\n\t\tAFCtrl: FLR{}\n\t\tAFStatus: TP{}",
        bits(r.b(3), &[("TP", 1), ("FLR", 2)]),
        flag32(r.b(4), 1),
        flag32(r.b(5), 1)
    );
}

/// The rest of a SATA HBA title line with `-vv`: where its registers are.
pub(super) fn sata_regs(out: &mut String, c: &Cs, at: usize) {
    let r = Regs { c, at };
    if !r.has(4, 4) {
        return;
    }
    let bars = r.d(4);
    match bars & 0xf {
        bar @ 4..=9 => {
            let _ = write!(out, " BAR{} Offset={:08x}", bar - 4, (bars >> 4) & 0xfffff);
        }
        15 => out.push_str(" InCfgSpace"),
        bar => {
            let _ = write!(out, " BAR??{bar}");
        }
    }
}

/// The words for an Enhanced Allocation entry's properties.
fn ea_property(p: u32, secondary: bool) -> Option<&'static str> {
    Some(match p {
        0x00 => "memory space, non-prefetchable",
        0x01 => "memory space, prefetchable",
        0x02 => "I/O space",
        0x03 => "VF memory space, prefetchable",
        0x04 => "VF memory space, non-prefetchable",
        0x05 => "allocation behind bridge, non-prefetchable memory",
        0x06 => "allocation behind bridge, prefetchable memory",
        0x07 => "allocation behind bridge, I/O space",
        0xfd => "memory space resource unavailable for use",
        0xfe => "I/O space resource unavailable for use",
        0xff if secondary => "entry unavailable for use, PrimaryProperties should be used",
        0xff => "entry unavailable for use",
        _ => return None,
    })
}

/// Enhanced Allocation: the title line (with a bridge's fixed bus
/// numbers) and, if `details`, every entry.
pub(super) fn ea(out: &mut String, c: &Cs, at: usize, word: u16, details: bool) {
    let count = u32::from(word & 0x3f);
    let _ = write!(out, "Enhanced Allocation (EA): NumEntries={count}");
    let mut entry = at + 4;
    if c.header_type() == HeaderType::Bridge {
        entry += 4;
        match (c.byte(at + 4), c.byte(at + 5)) {
            (Some(sec), Some(sub)) => {
                let _ = write!(out, ", secondary={sec}, subordinate={sub}");
            }
            _ => {
                out.push('\n');
                return;
            }
        }
    }
    out.push('\n');
    if !details {
        return;
    }
    // Entries are addressed from the start of the space.
    let r = Regs { c, at: 0 };
    for i in 0..count {
        if !r.has(entry, 4) {
            return;
        }
        let hdr = r.d(entry);
        let size = (hdr & 7) as usize;
        if size > 0 && !r.has(entry + 4, 4 * size) {
            return;
        }
        let _ = writeln!(
            out,
            "\t\tEntry {i}: Enable{} Writable{} EntrySize={size}",
            flag32(hdr, 1 << 31),
            flag32(hdr, 1 << 30)
        );
        out.push_str("\t\t\t BAR Equivalent Indicator: ");
        match (hdr >> 4) & 0xf {
            bei @ 0..=5 => {
                let _ = write!(out, "BAR {bei}");
            }
            6 => out.push_str("resource behind function"),
            7 => out.push_str("not indicated"),
            8 => out.push_str("expansion ROM"),
            bei @ 9..=14 => {
                let _ = write!(out, "VF-BAR {}", bei - 9);
            }
            _ => out.push_str("reserved"),
        }
        out.push('\n');
        for (name, p, secondary) in [
            ("Primary", (hdr >> 8) & 0xff, false),
            ("Secondary", (hdr >> 16) & 0xff, true),
        ] {
            let _ = match ea_property(p, secondary) {
                Some(text) => writeln!(out, "\t\t\t {name}Properties: {text}"),
                None => writeln!(out, "\t\t\t {name}Properties: [{p:02x}]"),
            };
        }
        let base = r.d(entry + 4);
        let max = r.d(entry + 8);
        let mut high = entry + 12;
        out.push_str("\t\t\t Base: ");
        if base & 2 != 0 {
            let _ = write!(out, "{:x}", r.d(high));
            high += 4;
        }
        let _ = writeln!(out, "{:08x}", base & !3);
        out.push_str("\t\t\t MaxOffset: ");
        if max & 2 != 0 {
            let _ = write!(out, "{:x}", r.d(high));
        }
        let _ = writeln!(out, "{:08x}", max | 3);
        entry += 4 + 4 * size;
    }
}

//! HyperTransport capabilities: the title (by the command register's type
//! bits) and, with `-vv`, the slave/primary and host/secondary interface
//! registers and the MSI mapping address, in pciutils 3.9's words.

use super::regs::Regs;
use super::verbose::{bits, flag32};
use pci::ConfigSpace;
use std::fmt::Write;

type Cs = ConfigSpace<Vec<u8>>;

/// Prints the title line of the HyperTransport capability at `at` (command
/// register `cmd`) and, if `details`, its registers.
pub(super) fn show(out: &mut String, c: &Cs, at: usize, cmd: u16, details: bool) {
    out.push_str("HyperTransport: ");
    let r = Regs { c, at };
    match cmd & 0xe000 {
        0x0000 => {
            out.push_str("Slave or Primary Interface\n");
            if details {
                primary(out, r, cmd.into());
            }
            return;
        }
        0x2000 => {
            out.push_str("Host or Secondary Interface\n");
            if details {
                secondary(out, r, cmd.into());
            }
            return;
        }
        _ => {}
    }
    let name = match cmd & 0xf800 {
        0x4000 => "Switch",
        0x8000 => "Interrupt Discovery and Configuration",
        0x8800 => {
            let _ = writeln!(out, "Revision ID: {}", revision(cmd.into()));
            return;
        }
        0x9000 => "UnitID Clumping",
        0x9800 => "Extended Configuration Space Access",
        0xa000 => "Address Mapping",
        0xa800 => {
            let _ = writeln!(
                out,
                "MSI Mapping Enable{} Fixed{}",
                flag32(cmd.into(), 1),
                flag32(cmd.into(), 2)
            );
            if details && cmd & 2 == 0 && r.has(4, 8) {
                let base = (u64::from(r.d(8)) << 32) | u64::from(r.d(4) & !0xfffff);
                let _ = writeln!(out, "\t\tMapping Address Base: {base:016x}");
            }
            return;
        }
        0xb000 => "DirectRoute",
        0xb800 => "VCSet",
        0xc000 => "Retry Mode",
        0xc800 => "X86 (reserved)",
        // lspci 3.9 names no later types (Gen3 and up).
        t => {
            let _ = writeln!(out, "#{:02x}", t >> 11);
            return;
        }
    };
    out.push_str(name);
    out.push('\n');
}

/// `major.minor` of a revision ID byte.
fn revision(rid: u32) -> String {
    format!("{}.{:02}", (rid >> 5) & 7, rid & 0x1f)
}

const WIDTH: [&str; 8] = [
    "8bit", "16bit", "[2]", "32bit", "2bit", "4bit", "[6]", "N/C",
];
const FREQ: [&str; 16] = [
    "200MHz", "300MHz", "400MHz", "500MHz", "600MHz", "800MHz", "1.0GHz", "1.2GHz", "1.4GHz",
    "1.6GHz", "[a]", "[b]", "[c]", "[d]", "[e]", "Vend",
];

/// A link control register; revision 2.2 and later add four flags.
fn link_control(out: &mut String, name: &str, l: u32, new: bool) {
    let b = [
        ("CFlE", 2),
        ("CST", 4),
        ("CFE", 8),
        ("<LkFail", 0x10),
        ("Init", 0x20),
        ("EOC", 0x40),
        ("TXO", 0x80),
    ];
    let _ = write!(
        out,
        "\t\t{name}: {} <CRCErr={:x}",
        bits(l, &b),
        (l >> 8) & 0xf
    );
    if new {
        let b = [
            ("IsocEn", 0x1000),
            ("LSEn", 0x2000),
            ("ExtCTL", 0x4000),
            ("64b", 0x8000),
        ];
        let _ = write!(out, " {}", bits(l, &b));
    }
    out.push('\n');
}

/// A link configuration register: widths, and from revision 2.2 the
/// doubleword flow control flags.
fn link_config(out: &mut String, name: &str, l: u32, new: bool) {
    let w = |shift: u32| WIDTH[((l >> shift) & 7) as usize];
    if new {
        let _ = writeln!(
            out,
            "\t\t{name}: MLWI={} DwFcIn{} MLWO={} DwFcOut{} LWI={} DwFcInEn{} LWO={} DwFcOutEn{}",
            w(0),
            flag32(l, 8),
            w(4),
            flag32(l, 0x80),
            w(8),
            flag32(l, 0x800),
            w(12),
            flag32(l, 0x8000)
        );
    } else {
        let _ = writeln!(
            out,
            "\t\t{name}: MLWI={} MLWO={} LWI={} LWO={}",
            w(0),
            w(4),
            w(8),
            w(12)
        );
    }
}

/// Link frequency/error and frequency capability (a byte, as lspci reads
/// it: the 1.4 GHz, 1.6 GHz and vendor bits never show).
fn link_freq(out: &mut String, suffix: &str, lfrer: u32, lfcap: u32) {
    let _ = writeln!(
        out,
        "\t\tLink Frequency{suffix}: {}\n\t\tLink Error{suffix}: {}",
        FREQ[(lfrer & 0xf) as usize],
        bits(
            lfrer,
            &[
                ("<Prot", 0x10),
                ("<Ovfl", 0x20),
                ("<EOC", 0x40),
                ("CTLTm", 0x80)
            ]
        )
    );
    let caps = [
        ("200MHz", 1),
        ("300MHz", 2),
        ("400MHz", 4),
        ("500MHz", 8),
        ("600MHz", 0x10),
        ("800MHz", 0x20),
        ("1.0GHz", 0x40),
        ("1.2GHz", 0x80),
        ("1.4GHz", 0x100),
        ("1.6GHz", 0x200),
        ("Vend", 0x8000),
    ];
    let _ = writeln!(
        out,
        "\t\tLink Frequency Capability{suffix}: {}",
        bits(lfcap, &caps)
    );
}

const FEATURES: &[(&str, u32)] = &[
    ("IsocFC", 1),
    ("LDTSTOP", 2),
    ("CRCTM", 4),
    ("ECTLT", 8),
    ("64bA", 0x10),
    ("UIDRD", 0x20),
];

fn error_handling(out: &mut String, eh: u32) {
    let names = [
        "PFlE", "OFlE", "PFE", "OFE", "EOCFE", "RFE", "CRCFE", "SERRFE", "CF", "RE", "PNFE",
        "ONFE", "EOCNFE", "RNFE", "CRCNFE", "SERRNFE",
    ];
    let b: Vec<(&str, u32)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, 1 << i))
        .collect();
    let _ = writeln!(out, "\t\tError Handling: {}", bits(eh, &b));
}

fn incomplete(out: &mut String, rid: u32) {
    if rid < 0x22 && rid > 0x11 {
        out.push_str("\t\t!!! Possibly incomplete decoding\n");
    }
}

fn primary(out: &mut String, r: Regs<'_>, cmd: u32) {
    if !r.has(4, 24) {
        return;
    }
    let rid = r.b(12);
    let new = rid >= 0x22;
    incomplete(out, rid);
    let _ = write!(
        out,
        "\t\tCommand: BaseUnitID={} UnitCnt={} MastHost{} DefDir{}",
        cmd & 0x1f,
        (cmd >> 5) & 0x1f,
        flag32(cmd, 0x400),
        flag32(cmd, 0x800)
    );
    if new {
        let _ = write!(out, " DUL{}", flag32(cmd, 0x1000));
    }
    out.push('\n');
    link_control(out, "Link Control 0", r.w(4), new);
    link_config(out, "Link Config 0", r.w(6), new);
    link_control(out, "Link Control 1", r.w(8), new);
    link_config(out, "Link Config 1", r.w(10), new);
    let _ = writeln!(out, "\t\tRevision ID: {}", revision(rid));
    if !new {
        return;
    }
    link_freq(out, " 0", r.b(13), r.b(14));
    let _ = writeln!(out, "\t\tFeature Capability: {}", bits(r.b(16), FEATURES));
    link_freq(out, " 1", r.b(17), r.b(18));
    error_handling(out, r.w(22));
    let _ = writeln!(
        out,
        "\t\tPrefetchable memory behind bridge Upper: {:02x}-{:02x}\n\t\tBus Number: {:02x}",
        r.b(24),
        r.b(25),
        r.b(26)
    );
}

fn secondary(out: &mut String, r: Regs<'_>, cmd: u32) {
    if !r.has(4, 20) {
        return;
    }
    let rid = r.b(8);
    let new = rid >= 0x22;
    incomplete(out, rid);
    let _ = write!(
        out,
        "\t\tCommand: WarmRst{} DblEnd{}",
        flag32(cmd, 1),
        flag32(cmd, 2)
    );
    if new {
        let _ = write!(
            out,
            " DevNum={} ChainSide{} HostHide{} Slave{} <EOCErr{} DUL{}",
            (cmd & 0x7c) >> 2,
            flag32(cmd, 0x80),
            flag32(cmd, 0x100),
            flag32(cmd, 0x400),
            flag32(cmd, 0x800),
            flag32(cmd, 0x1000)
        );
    }
    out.push('\n');
    link_control(out, "Link Control", r.w(4), new);
    link_config(out, "Link Config", r.w(6), new);
    let _ = writeln!(out, "\t\tRevision ID: {}", revision(rid));
    if !new {
        return;
    }
    link_freq(out, "", r.b(9), r.b(10));
    let ftr = r.w(12);
    let _ = writeln!(
        out,
        "\t\tFeature Capability: {} ExtRS{} UCnfE{}",
        bits(ftr, FEATURES),
        flag32(ftr, 0x100),
        flag32(ftr, 0x200)
    );
    if ftr & 0x100 != 0 {
        error_handling(out, r.w(18));
        let _ = writeln!(
            out,
            "\t\tPrefetchable memory behind bridge Upper: {:02x}-{:02x}",
            r.b(20),
            r.b(21)
        );
    }
}

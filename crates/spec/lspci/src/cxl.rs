//! `-vv` detail lines under CXL's Designated Vendor-Specific capabilities
//! (vendor 1e98): device (ID 0), port extensions (3), GPF for ports (4)
//! and devices (5) and the register locator (8), in pciutils 3.9's words;
//! lspci's `Unknown ID` line for IDs it has no decoder for. The function
//! map (2) and Flex Bus port (7) DVSECs are not decoded.

use super::ecaps::table;
use super::regs::Regs;
use super::verbose::{bits, flag32};
use pci::ConfigSpace;
use std::fmt::Write;

type Cs = ConfigSpace<Vec<u8>>;

/// A CXL DVSEC (`id`, revision `rev`, `len` bytes): the device DVSEC
/// (ID 0) and the port extensions (ID 3). lspci 3.9's decoders of the other
/// IDs misread or abort on many register values, so these are not decoded.
pub(super) fn details(out: &mut String, c: &Cs, at: usize, id: u16, rev: u32, len: u32) {
    let e = Regs { c, at };
    match id {
        0 => {
            if rev >= 1 && len >= 0x38 && e.has(0, 0x38) {
                cxl_device(out, e);
            }
        }
        3 => {
            if len >= 0x28 && e.has(0, 0x14) {
                cxl_port(out, e);
            }
        }
        4 => {
            if e.has(0, 0x10) {
                gpf_port(out, e);
            }
        }
        5 => {
            if e.has(0, 0x10) {
                gpf_device(out, e);
            }
        }
        8 => register_locator(out, e, len as usize),
        // Function map (2) and Flex Bus port (7) are not decoded; lspci 3.9
        // reads bytes it never fetched there and aborts. MLD (9) prints
        // nothing.
        2 | 7 | 9 => {}
        _ => {
            let _ = writeln!(out, "\t\tUnknown ID {id:04x}");
        }
    }
}

fn cxl_device(out: &mut String, e: Regs<'_>) {
    let w = e.w(0xa);
    let _ = writeln!(
        out,
        "\t\tCXLCap:\t{} HDMCount {} Viral{}",
        bits(
            w,
            &[("Cache", 1), ("IO", 2), ("Mem", 4), ("Mem HW Init", 8)]
        ),
        (w >> 4) & 3,
        flag32(w, 0x4000)
    );
    let w = e.w(0xc);
    let _ = writeln!(
        out,
        "\t\tCXLCtl:\t{} Cache SF Cov {} Cache SF Gran {} Cache Clean{} Viral{}",
        bits(w, &[("Cache", 1), ("IO", 2), ("Mem", 4)]),
        (w >> 3) & 0x1f,
        (w >> 8) & 7,
        flag32(w, 0x800),
        flag32(w, 0x4000)
    );
    let _ = writeln!(out, "\t\tCXLSta:\tViral{}", flag32(e.w(0xe), 0x4000));
    let b = [
        ("ResetComplete", 2),
        ("ResetError", 4),
        ("PMComplete", 0x8000),
    ];
    let _ = writeln!(out, "\t\tCXLSta2:\t{}", bits(e.w(0x12), &b));
    let w = e.w(0x16);
    let (unit, size) = (w & 0xf, (w >> 8) & 0xff);
    let _ = match unit {
        0 => writeln!(out, "\t\tCache Size Not Reported"),
        1 => writeln!(out, "\t\tCache Size: {:08x}", size * (64 << 10)),
        2 => writeln!(out, "\t\tCache Size: {:08x}", size << 20),
        _ => writeln!(out, "\t\tCache Size: {size} of unknown unit size ({unit})"),
    };
    for (n, off) in [(1, 0x18), (2, 0x28)] {
        let size = (u64::from(e.d(off)) << 32) | u64::from(e.d(off + 4));
        let base = (u64::from(e.d(off + 8)) << 32) | u64::from(e.d(off + 12));
        cxl_range(out, n, base, size);
    }
}

/// One CXL memory range (`size`'s low word holds its flags; the size
/// counts in 256 MB units). Type, class and interleave codes past lspci's
/// tables make lspci read beyond them; pcibox prints `??n` or 0 there.
fn cxl_range(out: &mut String, n: u32, base: u64, size: u64) {
    const INTERLEAVE: [u32; 8] = [0, 256, 4096, 512, 1024, 2048, 8192, 16384];
    let w = size as u32 & 0xffff;
    let _ = writeln!(
        out,
        "\t\tRange{n}: {base:016x}-{:016x}\n\t\t\tValid{} Active{} Type={} Class={} interleave={} timeout={}s",
        base.wrapping_add(size & !0x0fff_ffff).wrapping_sub(1),
        flag32(w, 1),
        flag32(w, 2),
        table(&["Volatile", "Non-volatile", "CDAT"], (w >> 2) & 7),
        table(&["DRAM", "Storage", "CDAT"], (w >> 5) & 7),
        INTERLEAVE
            .get(((w >> 8) & 0x1f) as usize)
            .copied()
            .unwrap_or(0),
        1u32.wrapping_shl(((w >> 13) & 7) * 2)
    );
}

fn cxl_port(out: &mut String, e: Regs<'_>) {
    // lspci tests the status register against its own offset (0x0a).
    let _ = writeln!(out, "\t\tCXLPortSta:\tPMComplete{}", flag32(e.w(0xa), 0xa));
    let b = [
        ("UnmaskSBR", 1),
        ("UnmaskLinkDisable", 2),
        ("AltMem", 4),
        ("AltBME", 8),
        ("ViralEnable", 0x4000),
    ];
    let _ = writeln!(out, "\t\tCXLPortCtl:\t{}", bits(e.w(0xc), &b));
    let _ = writeln!(out, "\t\tAlternateBus:\t{:02x}-{:02x}", e.b(0xe), e.b(0xf));
    let _ = writeln!(
        out,
        "\t\tAlternateBus:\t{:04x}-{:04x}",
        e.w(0x10),
        e.w(0x12)
    );
}

/// A GPF time: `base` in the unit `scale` picks (1, 10 or 100 µs, ms or
/// s); lspci names reserved scales first.
fn gpf_time(out: &mut String, name: &str, w: u32) {
    let (base, scale) = (w & 0xf, (w >> 8) & 0xf);
    let value = match scale {
        2 | 5 => base * 100,
        1 | 4 | 7 => base * 10,
        0 | 3 | 6 => base,
        _ => {
            let _ = writeln!(out, "\t\tReserved time scale encoding {scale:x}");
            base
        }
    };
    // lspci 3.9 gives 10 s its factor but no unit.
    let unit = match scale {
        0..=2 => "us",
        3..=5 => "ms",
        6 => "s",
        _ => "<?>",
    };
    let _ = writeln!(out, "\t\t{name}: {value}{unit}");
}

fn gpf_port(out: &mut String, e: Regs<'_>) {
    gpf_time(out, "GPF Phase 1 Timeout", e.w(0xc));
    gpf_time(out, "GPF Phase 2 Timeout", e.w(0xe));
}

fn gpf_device(out: &mut String, e: Regs<'_>) {
    gpf_time(out, "GPF Phase 2 Duration", e.w(0xa));
    let _ = writeln!(out, "\t\tGPF Phase 2 Power: {}mW", e.d(0xc));
}

/// The register blocks a CXL register locator lists (those with an ID).
fn register_locator(out: &mut String, e: Regs<'_>, len: usize) {
    let names = [
        "empty",
        "component registers",
        "BAR virtualization",
        "CXL device registers",
    ];
    for i in 0.. {
        let pos = 0xc + 8 * i;
        if pos + 7 >= len {
            break;
        }
        let (lo, hi) = (e.d(pos), e.d(pos + 4));
        let id = (lo >> 8) & 0xff;
        if id == 0 {
            continue;
        }
        let name = match names.get(id as usize) {
            Some(n) => n,
            None if id == 0xff => "vendor-specific",
            None => "<?>",
        };
        let base = (u64::from(hi) << 32) | u64::from(lo & 0xffff_0000);
        let _ = writeln!(
            out,
            "\t\tBlock{}: BIR: bar{}, ID: {name}, offset: {base:016x}",
            i + 1,
            lo & 7
        );
    }
}

//! `-vv` detail lines under a capability title, for the capabilities
//! drivers and the broker use: PM, MSI, MSI-X and virtio. (PCI Express and
//! AER details are not rendered; their titles are.)

use super::verbose::flag;
use crate::config::ConfigSpace;
use std::fmt::Write;

type Cs = ConfigSpace<Vec<u8>>;

/// PM: `Flags:` from PMC, `Status:` from PMCSR, `Bridge:` if PMCSR_BSE.
pub(super) fn pm(out: &mut String, c: &Cs, at: usize, cap: u16) {
    const AUX_MA: [u32; 8] = [0, 55, 100, 160, 220, 270, 320, 375];
    let _ = writeln!(
        out,
        "\t\tFlags: PMEClk{} DSI{} D1{} D2{} AuxCurrent={}mA PME(D0{},D1{},D2{},D3hot{},D3cold{})",
        flag(cap, 1 << 3),
        flag(cap, 1 << 5),
        flag(cap, 1 << 9),
        flag(cap, 1 << 10),
        AUX_MA[usize::from((cap >> 6) & 7)],
        flag(cap, 1 << 11),
        flag(cap, 1 << 12),
        flag(cap, 1 << 13),
        flag(cap, 1 << 14),
        flag(cap, 1 << 15),
    );
    let (Some(t), Some(b)) = (c.word(at + 4), c.byte(at + 6)) else {
        return;
    };
    if c.byte(at + 7).is_none() {
        return;
    }
    let _ = writeln!(
        out,
        "\t\tStatus: D{} NoSoftRst{} PME-Enable{} DSel={} DScale={} PME{}",
        t & 3,
        flag(t, 1 << 3),
        flag(t, 1 << 8),
        (t >> 9) & 0xf,
        (t >> 13) & 3,
        flag(t, 1 << 15),
    );
    if b != 0 {
        let b = u16::from(b);
        let _ = writeln!(out, "\t\tBridge: PM{} B3{}", flag(b, 0x80), flag(!b, 0x40));
    }
}

/// MSI: `Address:`/`Data:`, then `Masking:`/`Pending:` with per-vector
/// masking.
pub(super) fn msi(out: &mut String, c: &Cs, at: usize, cap: u16) {
    let is64 = cap & (1 << 7) != 0;
    let data_at = if is64 { 12 } else { 8 };
    // lspci needs the address through the data word readable.
    if c.byte(at + data_at + 1).is_none() {
        return;
    }
    let lo = c.dword(at + 4).unwrap_or(0);
    let data = c.word(at + data_at).unwrap_or(0);
    out.push_str("\t\tAddress: ");
    if is64 {
        let _ = write!(out, "{:08x}", c.dword(at + 8).unwrap_or(0));
    }
    let _ = writeln!(out, "{lo:08x}  Data: {data:04x}");
    if cap & (1 << 8) != 0 {
        let mask_at = at + if is64 { 16 } else { 12 };
        if let (Some(mask), Some(pending)) = (c.dword(mask_at), c.dword(mask_at + 4)) {
            let _ = writeln!(out, "\t\tMasking: {mask:08x}  Pending: {pending:08x}");
        }
    }
}

/// MSI-X: where the vector table and the PBA live.
pub(super) fn msix(out: &mut String, c: &Cs, at: usize) {
    let (Some(table), Some(pba)) = (c.dword(at + 4), c.dword(at + 8)) else {
        return;
    };
    let _ = writeln!(
        out,
        "\t\tVector table: BAR={} offset={:08x}",
        table & 7,
        table & !7
    );
    let _ = writeln!(out, "\t\tPBA: BAR={} offset={:08x}", pba & 7, pba & !7);
}

/// Virtio: the BAR window of the structure (and the notify multiplier).
pub(super) fn virtio(out: &mut String, c: &Cs, at: usize, cap: u16) {
    let len = cap & 0xff;
    let _ = write!(
        out,
        "\t\tBAR={} offset={:08x} size={:08x}",
        c.byte(at + 4).unwrap_or(0),
        c.dword(at + 8).unwrap_or(0),
        c.dword(at + 12).unwrap_or(0)
    );
    if cap >> 8 == 2 && len >= 20 {
        let _ = write!(out, " multiplier={:08x}", c.dword(at + 16).unwrap_or(0));
    }
    out.push('\n');
}

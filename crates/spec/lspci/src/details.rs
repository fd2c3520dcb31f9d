//! `-vv` detail lines under a capability title, for the capabilities
//! drivers and the broker use: PM, MSI, MSI-X, virtio and AER (PCI Express
//! details are in `pcie`).

use super::verbose::{flag, flag32 as f};
use pci::ConfigSpace;
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

/// AER: error status/mask/severity flags, capabilities and the header log;
/// root ports and event collectors add the root error registers.
pub(super) fn aer(out: &mut String, c: &Cs, at: usize, pcie_type: Option<u8>) {
    if c.byte(at + 4 + 40 - 1).is_none() {
        return;
    }
    let d = |o: usize| c.dword(at + o).unwrap_or(0);
    for (name, v) in [("UESta", d(4)), ("UEMsk", d(8)), ("UESvrt", d(12))] {
        let _ = writeln!(
            out,
            "\t\t{name}:\tDLP{} SDES{} TLP{} FCP{} CmpltTO{} CmpltAbrt{} UnxCmplt{} RxOF{} MalfTLP{} ECRC{} UnsupReq{} ACSViol{}",
            f(v, 1 << 4),
            f(v, 1 << 5),
            f(v, 1 << 12),
            f(v, 1 << 13),
            f(v, 1 << 14),
            f(v, 1 << 15),
            f(v, 1 << 16),
            f(v, 1 << 17),
            f(v, 1 << 18),
            f(v, 1 << 19),
            f(v, 1 << 20),
            f(v, 1 << 21),
        );
    }
    for (name, v) in [("CESta", d(16)), ("CEMsk", d(20))] {
        let _ = writeln!(
            out,
            "\t\t{name}:\tRxErr{} BadTLP{} BadDLLP{} Rollover{} Timeout{} AdvNonFatalErr{}",
            f(v, 1),
            f(v, 1 << 6),
            f(v, 1 << 7),
            f(v, 1 << 8),
            f(v, 1 << 12),
            f(v, 1 << 13),
        );
    }
    let l = d(24);
    let _ = writeln!(
        out,
        "\t\tAERCap:\tFirst Error Pointer: {:02x}, ECRCGenCap{} ECRCGenEn{} ECRCChkCap{} ECRCChkEn{}\n\t\t\tMultHdrRecCap{} MultHdrRecEn{} TLPPfxPres{} HdrLogCap{}",
        l & 0x1f,
        f(l, 1 << 5),
        f(l, 1 << 6),
        f(l, 1 << 7),
        f(l, 1 << 8),
        f(l, 1 << 9),
        f(l, 1 << 10),
        f(l, 1 << 11),
        f(l, 1 << 12),
    );
    let _ = writeln!(
        out,
        "\t\tHeaderLog: {:08x} {:08x} {:08x} {:08x}",
        d(28),
        d(32),
        d(36),
        d(40)
    );
    // Root port (4) or root complex event collector (10).
    if matches!(pcie_type, Some(4) | Some(10)) {
        if c.byte(at + 0x2c + 12 - 1).is_none() {
            return;
        }
        let cmd = d(0x2c);
        let _ = writeln!(
            out,
            "\t\tRootCmd: CERptEn{} NFERptEn{} FERptEn{}",
            f(cmd, 1),
            f(cmd, 2),
            f(cmd, 4)
        );
        let s = d(0x30);
        let _ = writeln!(
            out,
            "\t\tRootSta: CERcvd{} MultCERcvd{} UERcvd{} MultUERcvd{}\n\t\t\t FirstFatal{} NonFatalMsg{} FatalMsg{} IntMsg {}",
            f(s, 1),
            f(s, 2),
            f(s, 4),
            f(s, 8),
            f(s, 0x10),
            f(s, 0x20),
            f(s, 0x40),
            (s >> 27) & 0x1f
        );
        let _ = writeln!(
            out,
            "\t\tErrorSrc: ERR_COR: {:04x} ERR_FATAL/NONFATAL: {:04x}",
            c.word(at + 0x34).unwrap_or(0),
            c.word(at + 0x36).unwrap_or(0)
        );
    }
}

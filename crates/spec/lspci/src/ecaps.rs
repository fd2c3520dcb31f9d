//! `-vv` detail lines under extended capabilities (besides AER, in
//! `details`): TPH, LTR, Secondary PCIe, DPC, ACS, ARI, ATS, PRI, PASID,
//! SR-IOV, Multicast, Virtual Channel, Root Complex Link, RCEC endpoint
//! association, Resizable BARs, DOE, L1 PM Substates and PTM, in pciutils
//! 3.9's words. A capability whose registers lie past the readable
//! bytes prints no details (or `<unreadable>` where lspci does).

use super::regs::Regs;
use super::verbose::{bits, flag32};
use pci::ConfigSpace;
use std::fmt::Write;

type Cs = ConfigSpace<Vec<u8>>;

/// Prints the detail lines of extended capability `id` at `at`, if it is
/// one decoded here; `pcie_type` is the PCI Express device/port type.
pub(super) fn details(
    out: &mut String,
    c: &Cs,
    at: usize,
    id: u16,
    pcie_type: Option<u8>,
    verbose: u8,
) {
    let e = Regs { c, at };
    match id {
        0x02 | 0x09 => vc(out, e),
        0x05 => rclink(out, e),
        0x07 => rcec(out, e, verbose > 2),
        0x15 | 0x24 => rebar(out, e),
        0x2e => doe(out, e),
        0x0d => acs(out, e),
        0x0e => ari(out, e),
        0x0f => ats(out, e),
        0x10 => sriov(out, e),
        0x12 => multicast(out, e, pcie_type),
        0x13 => pri(out, e),
        0x17 => tph(out, e),
        0x18 => ltr(out, e),
        0x19 => secondary(out, e),
        0x1b => pasid(out, e),
        0x1d => dpc(out, e),
        0x1e => l1pm(out, e),
        0x1f => ptm(out, e),
        _ => {}
    }
}

fn tph(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 4) {
        return;
    }
    let t = e.d(4);
    for (bit, line) in [
        (2, "Interrupt vector mode supported"),
        (4, "Device specific mode supported"),
        (0x100, "Extended requester support"),
    ] {
        if t & bit != 0 {
            let _ = writeln!(out, "\t\t{line}");
        }
    }
    let loc = match (t >> 9) & 3 {
        0 => "No steering table available",
        1 => "Steering table in TPH capability structure",
        2 => "Steering table in MSI-X table",
        _ => "Reserved steering table location",
    };
    let _ = writeln!(out, "\t\t{loc}");
}

/// An LTR latency scale: 32 to the power `scale`, as a C `1 << (5 *
/// scale)` on 32 bits (the shift count taken modulo 32, as x86 does).
fn ltr_scale(scale: u32) -> u64 {
    u64::from(1u32.wrapping_shl(scale * 5))
}

fn ltr(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 4) {
        return;
    }
    for (name, v) in [("snoop", e.w(4)), ("no snoop", e.w(6))] {
        let ns = u64::from(v & 0x3ff) * ltr_scale((v >> 10) & 7);
        let _ = writeln!(out, "\t\tMax {name} latency: {ns}ns");
    }
}

fn secondary(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 12) {
        return;
    }
    let ctl = e.w(4);
    let _ = writeln!(
        out,
        "\t\tLnkCtl3: LnkEquIntrruptEn{} PerformEqu{}",
        flag32(ctl, 2),
        flag32(ctl, 1)
    );
    let lanes = e.w(8);
    out.push_str("\t\tLaneErrStat: ");
    if lanes == 0 {
        out.push('0');
    } else {
        out.push_str("LaneErr at lane:");
        for lane in 0..16 {
            if lanes & (1 << lane) != 0 {
                let _ = write!(out, " {lane}");
            }
        }
    }
    out.push('\n');
}

fn dpc(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 8) {
        return;
    }
    let l = e.w(4);
    let _ = writeln!(
        out,
        "\t\tDpcCap:\tINT Msg #{}, RPExt{} PoisonedTLP{} SwTrigger{} RP PIO Log {}, DL_ActiveErr{}",
        l & 0x1f,
        flag32(l, 0x20),
        flag32(l, 0x40),
        flag32(l, 0x80),
        (l >> 8) & 0xf,
        flag32(l, 0x1000)
    );
    let l = e.w(6);
    let b = [
        ("Cmpl", 4),
        ("INT", 8),
        ("ErrCor", 0x10),
        ("PoisonedTLP", 0x20),
        ("SwTrigger", 0x40),
        ("DL_ActiveErr", 0x80),
    ];
    let _ = writeln!(out, "\t\tDpcCtl:\tTrigger:{:x} {}", l & 3, bits(l, &b));
    let l = e.w(8);
    let _ = writeln!(
        out,
        "\t\tDpcSta:\tTrigger{} Reason:{:02x} INT{} RPBusy{} TriggerExt:{:02x} RP PIO ErrPtr:{:02x}",
        flag32(l, 1),
        (l >> 1) & 3,
        flag32(l, 8),
        flag32(l, 0x10),
        (l >> 5) & 3,
        (l >> 8) & 0x1f
    );
    let _ = writeln!(out, "\t\tSource:\t{:04x}", e.w(0xa));
}

fn acs(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 4) {
        return;
    }
    const ACS: &[(&str, u32)] = &[
        ("SrcValid", 1),
        ("TransBlk", 2),
        ("ReqRedir", 4),
        ("CmpltRedir", 8),
        ("UpstreamFwd", 0x10),
        ("EgressCtrl", 0x20),
        ("DirectTrans", 0x40),
    ];
    let _ = writeln!(out, "\t\tACSCap:\t{}", bits(e.w(4), ACS));
    let _ = writeln!(out, "\t\tACSCtl:\t{}", bits(e.w(6), ACS));
}

fn ari(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 4) {
        return;
    }
    let groups = [("MFVC", 1), ("ACS", 2)];
    let (cap, ctl) = (e.w(4), e.w(6));
    let _ = writeln!(
        out,
        "\t\tARICap:\t{}, Next Function: {}\n\t\tARICtl:\t{}, Function Group: {}",
        bits(cap, &groups),
        (cap >> 8) & 0xff,
        bits(ctl, &groups),
        (ctl >> 4) & 7
    );
}

fn ats(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 4) {
        return;
    }
    let (cap, ctl) = (e.w(4), e.w(6));
    let _ = writeln!(
        out,
        "\t\tATSCap:\tInvalidate Queue Depth: {:02x}\n\t\tATSCtl:\tEnable{}, Smallest Translation Unit: {:02x}",
        cap & 0x1f,
        flag32(ctl, 0x8000),
        ctl & 0x1f
    );
}

fn pri(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 0xc) {
        return;
    }
    let (ctl, sta) = (e.w(4), e.w(6));
    let _ = writeln!(
        out,
        "\t\tPRICtl: Enable{} Reset{}\n\t\tPRISta: RF{} UPRGI{} Stopped{}\n\t\tPage Request Capacity: {:08x}, Page Request Allocation: {:08x}",
        flag32(ctl, 1),
        flag32(ctl, 2),
        flag32(sta, 1),
        flag32(sta, 2),
        flag32(sta, 0x100),
        e.d(8),
        e.d(0xc)
    );
}

fn pasid(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 4) {
        return;
    }
    let (cap, ctl) = (e.w(4), e.w(6));
    let _ = writeln!(
        out,
        "\t\tPASIDCap: Exec{} Priv{}, Max PASID Width: {:02x}\n\t\tPASIDCtl: Enable{} Exec{} Priv{}",
        flag32(cap, 2),
        flag32(cap, 4),
        (cap >> 8) & 0x1f,
        flag32(ctl, 1),
        flag32(ctl, 2),
        flag32(ctl, 4)
    );
}

fn sriov(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 0x3c) {
        return;
    }
    let cap = e.d(4);
    let _ = writeln!(
        out,
        "\t\tIOVCap:\tMigration{} 10BitTagReq{} Interrupt Message Number: {:03x}",
        flag32(cap, 1),
        flag32(cap, 4),
        cap >> 21
    );
    let b = [
        ("Enable", 1),
        ("Migration", 2),
        ("Interrupt", 4),
        ("MSE", 8),
        ("ARIHierarchy", 0x10),
        ("10BitTagReq", 0x20),
    ];
    let _ = writeln!(out, "\t\tIOVCtl:\t{}", bits(e.w(8), &b));
    let _ = writeln!(out, "\t\tIOVSta:\tMigration{}", flag32(e.w(0xa), 1));
    let _ = writeln!(
        out,
        "\t\tInitial VFs: {}, Total VFs: {}, Number of VFs: {}, Function Dependency Link: {:02x}",
        e.w(0xc),
        e.w(0xe),
        e.w(0x10),
        e.b(0x12)
    );
    let _ = writeln!(
        out,
        "\t\tVF offset: {}, stride: {}, Device ID: {:04x}",
        e.w(0x14),
        e.w(0x16),
        e.w(0x1a)
    );
    let _ = writeln!(
        out,
        "\t\tSupported Page Size: {:08x}, System Page Size: {:08x}",
        e.d(0x1c),
        e.d(0x20)
    );
    let mut i = 0;
    while i < 6 {
        let l = e.d(0x24 + 4 * i);
        if l != 0 && l != u32::MAX {
            let _ = write!(out, "\t\tRegion {i}: Memory at ");
            let is64 = l & 6 == 4;
            if is64 {
                // lspci moves on to the upper half before naming the region
                // (and reads it even past the sixth BAR).
                i += 1;
                let _ = write!(out, "{:08x}", e.d(0x24 + 4 * i));
            }
            let _ = writeln!(
                out,
                "{:08x} ({}-bit, {}prefetchable)",
                l & !0xf,
                if l & 6 == 0 { "32" } else { "64" },
                if l & 8 != 0 { "" } else { "non-" }
            );
        }
        i += 1;
    }
    let m = e.d(0x3c);
    let _ = writeln!(
        out,
        "\t\tVF Migration: offset: {:08x}, BIR: {:x}",
        m & !7,
        m & 7
    );
}

fn multicast(out: &mut String, e: Regs<'_>, pcie_type: Option<u8>) {
    if !e.has(4, 0x30) {
        return;
    }
    let ep = matches!(pcie_type, Some(0) | Some(9));
    let w = e.w(4);
    let _ = write!(out, "\t\tMcastCap: MaxGroups {}", (w & 0x3f) + 1);
    if ep {
        let sz = (w >> 8) & 0x3f;
        let _ = write!(out, ", WindowSz {sz} ({} bytes)", 1i32.wrapping_shl(sz));
    }
    if matches!(pcie_type, Some(4) | Some(5) | Some(6)) {
        // Other types get no line break here, as in lspci.
        let _ = writeln!(out, ", ECRCRegen{}", flag32(w, 0x8000));
    }
    let w = e.w(6);
    let _ = writeln!(
        out,
        "\t\tMcastCtl: NumGroups {}, Enable{}",
        (w & 0x3f) + 1,
        flag32(w, 0x8000)
    );
    let q = |off: usize| u64::from(e.d(off)) | (u64::from(e.d(off + 4)) << 32);
    let bar = q(8);
    let _ = writeln!(
        out,
        "\t\tMcastBAR: IndexPos {}, BaseAddr {:016x}",
        bar & 0x3f,
        bar & !0xfff
    );
    let _ = writeln!(out, "\t\tMcastReceiveVec:      {:016x}", q(0x10));
    let _ = writeln!(out, "\t\tMcastBlockAllVec:     {:016x}", q(0x18));
    let _ = writeln!(out, "\t\tMcastBlockUntransVec: {:016x}", q(0x20));
    if ep {
        return;
    }
    let bar = q(0x28);
    let size = (bar & 0x3f) as u32;
    let _ = write!(out, "\t\tMcastOverlayBAR: OverlaySize {size} ");
    if size >= 6 {
        let _ = write!(out, "({} bytes)", 1i32.wrapping_shl(size));
    } else {
        out.push_str("(disabled)");
    }
    let _ = writeln!(out, ", BaseAddr {:016x}", bar & !0x3f);
}

/// `tab[i]`, or `??i` past the table (lspci's `TABLE`).
pub(super) fn table(tab: &[&str], i: u32) -> String {
    tab.get(i as usize)
        .map_or_else(|| format!("??{i}"), |s| (*s).to_string())
}

fn vc(out: &mut String, e: Regs<'_>) {
    const ARB: [&str; 8] = [
        "Fixed", "WRR32", "WRR64", "WRR128", "??4", "??5", "??6", "??7",
    ];
    const VC_ARB: [&str; 8] = [
        "Fixed", "WRR32", "WRR64", "WRR128", "TWRR128", "WRR256", "??6", "??7",
    ];
    if !e.has(4, 0x18) {
        return;
    }
    let (cr1, cr2, ctrl, status) = (e.d(4), e.d(8), e.w(0xc), e.w(0xe));
    let _ = writeln!(
        out,
        "\t\tCaps:\tLPEVC={} RefClk={} PATEntryBits={}",
        (cr1 >> 4) & 7,
        table(&["100ns"], (cr1 >> 8) & 3),
        1 << ((cr1 >> 10) & 3)
    );
    let arbs = |out: &mut String, names: &[&str; 8], v: u32| {
        for (i, name) in names.iter().enumerate() {
            if !name.starts_with('?') || v & (1 << i) != 0 {
                let sep = if i == 0 { '\t' } else { ' ' };
                let _ = write!(out, "{sep}{name}{}", flag32(v, 1 << i));
            }
        }
    };
    out.push_str("\t\tArb:");
    arbs(out, &ARB, cr2);
    let _ = writeln!(
        out,
        "\n\t\tCtrl:\tArbSelect={}\n\t\tStatus:\tInProgress{}",
        ARB[((ctrl >> 1) & 7) as usize],
        flag32(status, 1)
    );
    let pat = (cr2 >> 24) & 0xff;
    if pat != 0 {
        let _ = writeln!(
            out,
            "\t\tPort Arbitration Table [{:x}] <?>",
            e.at + 16 * pat as usize
        );
    }
    for i in 0..=(cr1 & 7) as usize {
        let _ = write!(out, "\t\tVC{i}:\t");
        let pos = 0x10 + 12 * i;
        if !e.has(pos, 12) {
            out.push_str("<unreadable>\n");
            continue;
        }
        let (rcap, rctrl, rstatus) = (e.d(pos), e.d(pos + 4), e.w(pos + 10));
        let pat = (rcap >> 24) & 0xff;
        let _ = write!(
            out,
            "Caps:\tPATOffset={pat:02x} MaxTimeSlots={} RejSnoopTrans{}\n\t\t\tArb:",
            ((rcap >> 16) & 0x7f) + 1,
            flag32(rcap, 1 << 15)
        );
        arbs(out, &VC_ARB, rcap);
        let _ = writeln!(
            out,
            "\n\t\t\tCtrl:\tEnable{} ID={} ArbSelect={} TC/VC={:02x}\n\t\t\tStatus:\tNegoPending{} InProgress{}",
            flag32(rctrl, 1 << 31),
            (rctrl >> 24) & 7,
            VC_ARB[((rctrl >> 17) & 7) as usize],
            rctrl & 0xff,
            flag32(rstatus, 2),
            flag32(rstatus, 1)
        );
        if pat != 0 {
            out.push_str("\t\t\tPort Arbitration Table <?>\n");
        }
    }
}

/// An L1 PM power-on time: `value` in units of 2, 10 or 100 µs.
fn power_on(out: &mut String, name: &str, scale: u32, value: u32) {
    match scale {
        0..=2 => {
            let _ = write!(out, "{name}={}us", [2, 10, 100][scale as usize] * value);
        }
        _ => {
            let _ = write!(out, "{name}=<error>");
        }
    }
}

fn l1pm(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 12) {
        out.push_str("\t\t<unreadable>\n");
        return;
    }
    const L12: &[(&str, u32)] = &[
        ("PCI-PM_L1.2", 1),
        ("PCI-PM_L1.1", 2),
        ("ASPM_L1.2", 4),
        ("ASPM_L1.1", 8),
    ];
    let cap = e.d(4);
    let _ = writeln!(
        out,
        "\t\tL1SubCap: {} L1_PM_Substates{}",
        bits(cap, L12),
        flag32(cap, 0x10)
    );
    let l12 = cap & 5 != 0;
    if l12 {
        let _ = write!(
            out,
            "\t\t\t  PortCommonModeRestoreTime={}us ",
            (cap >> 8) & 0xff
        );
        power_on(out, "PortTPowerOnTime", (cap >> 16) & 3, (cap >> 19) & 0x1f);
        out.push('\n');
    }
    let ctl = e.d(8);
    let _ = writeln!(out, "\t\tL1SubCtl1: {}", bits(ctl, L12));
    if l12 {
        let _ = write!(out, "\t\t\t   T_CommonMode={}us", (ctl >> 8) & 0xff);
        if cap & 4 != 0 {
            let scale = (ctl >> 29) & 7;
            if scale > 5 {
                out.push_str(" LTR1.2_Threshold=<error>");
            } else {
                let ns = u64::from((ctl >> 16) & 0x3ff) * ltr_scale(scale);
                let _ = write!(out, " LTR1.2_Threshold={ns}ns");
            }
        }
        out.push('\n');
    }
    out.push_str("\t\tL1SubCtl2:");
    if l12 {
        let ctl2 = e.d(0xc);
        out.push(' ');
        power_on(out, "T_PwrOn", ctl2 & 3, (ctl2 >> 3) & 0x1f);
    }
    out.push('\n');
}

/// A PTM clock granularity.
fn granularity(v: u32, zero: &str) -> String {
    match v {
        0 => zero.to_string(),
        0xff => "Greater than 254ns".to_string(),
        n => format!("{n}ns"),
    }
}

fn ptm(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 8) {
        out.push_str("\t\t<unreadable>\n");
        return;
    }
    let (cap, ctl) = (e.d(4), e.d(8));
    let _ = writeln!(
        out,
        "\t\tPTMCap: Requester:{} Responder:{} Root:{}\n\t\tPTMClockGranularity: {}\n\t\tPTMControl: Enabled:{} RootSelected:{}\n\t\tPTMEffectiveGranularity: {}",
        flag32(cap, 1),
        flag32(cap, 2),
        flag32(cap, 4),
        granularity((cap >> 8) & 0xff, "Unimplemented"),
        flag32(ctl, 1),
        flag32(ctl, 2),
        granularity((ctl >> 8) & 0xff, "Unknown")
    );
}

fn rclink(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 12) {
        return;
    }
    let esd = e.d(4);
    let _ = writeln!(
        out,
        "\t\tDesc:\tPortNumber={:02x} ComponentID={:02x} EltType={}",
        esd >> 24,
        (esd >> 16) & 0xff,
        table(&["Config", "Egress", "Internal"], esd & 0xff)
    );
    for i in 0..((esd >> 8) & 0xff) as usize {
        let pos = 0x10 + 16 * i;
        let _ = write!(out, "\t\tLink{i}:\t");
        if !e.has(pos, 16) {
            out.push_str("<unreadable>\n");
            return;
        }
        let (desc, lo, hi) = (e.d(pos), e.d(pos + 8), e.d(pos + 12));
        let config = desc & 2 != 0;
        let _ = writeln!(
            out,
            "Desc:\tTargetPort={:02x} TargetComponent={:02x} AssocRCRB{} LinkType={} LinkValid{}",
            desc >> 24,
            (desc >> 16) & 0xff,
            flag32(desc, 4),
            if config { "Config" } else { "MemMapped" },
            flag32(desc, 1)
        );
        if config {
            // The bus number has 1 to 8 bits, as the low bits say.
            let n = match lo & 7 {
                0 => 8,
                n => n,
            };
            let _ = writeln!(
                out,
                "\t\t\tAddr:\t{:02x}:{:02x}.{}  CfgSpace={hi:08x}{lo:08x}",
                (lo >> 20) & ((1 << n) - 1),
                (lo >> 15) & 0x1f,
                (lo >> 12) & 7
            );
        } else {
            let _ = writeln!(out, "\t\t\tAddr:\t{hi:08x}{lo:08x}");
        }
    }
}

fn rcec(out: &mut String, e: Regs<'_>, vvv: bool) {
    if !e.has(0, 12) {
        return;
    }
    let map = e.d(4);
    out.push_str("\t\tRCiEPBitmap: ");
    if map == 0 {
        out.push_str(if vvv { "00000000 [none]" } else { "[none]" });
    } else {
        // Runs of devices as `a-b`; lspci closes a run only at a clear bit,
        // so one reaching device 31 shows just its start.
        out.push_str("RCiEP at Device(s):");
        let (mut run, mut first) = (0, true);
        for dev in 0..32 {
            if map & (1 << dev) != 0 {
                if run == 0 {
                    let _ = write!(out, "{} {dev}", if first { "" } else { "," });
                }
                run += 1;
                first = false;
            } else {
                if run > 1 {
                    let _ = write!(out, "-{}", dev - 1);
                }
                run = 0;
            }
        }
    }
    out.push('\n');
    if (e.d(0) >> 16) & 0xf < 2 {
        return;
    }
    let busn = e.d(8);
    let (next, last) = ((busn >> 8) & 0xff, (busn >> 16) & 0xff);
    out.push_str("\t\tAssociatedBusNumbers: ");
    if last == 0 && next == 0xff {
        out.push_str(if vvv { "ff-00 [none]\n" } else { "[none]\n" });
    } else {
        let _ = writeln!(out, "{next:02x}-{last:02x}");
    }
}

/// A resizable BAR size: 1 MB shifted left by `ld2`.
fn rebar_size(out: &mut String, ld2: u32) {
    let unit = ["MB", "GB", "TB", "PB", "EB"];
    if ld2 < 44 {
        let _ = write!(out, " {}{}", 1u32 << (ld2 % 10), unit[(ld2 / 10) as usize]);
    } else {
        out.push_str(" <unknown>");
    }
}

fn rebar(out: &mut String, e: Regs<'_>) {
    let mut count = 1;
    let mut i = 0;
    while i < count {
        let pos = 4 + 8 * i;
        if !e.has(pos, 8) {
            out.push_str("\t\t<unreadable>\n");
            return;
        }
        let (sizes, ctrl) = (e.d(pos) >> 4, e.d(pos + 4));
        let ext = ctrl >> 16;
        if i == 0 {
            count = ((ctrl >> 5) & 7) as usize;
            if !(1..=6).contains(&count) {
                let _ = writeln!(
                    out,
                    "\t\t<error in resizable BAR: num_bars={count} is out of specification>"
                );
                return;
            }
        }
        let _ = write!(out, "\t\tBAR {}: current size:", ctrl & 7);
        rebar_size(out, (ctrl >> 8) & 0x3f);
        if sizes != 0 || ext != 0 {
            out.push_str(", supported:");
            for n in (0..28).filter(|n| sizes & (1 << n) != 0) {
                rebar_size(out, n);
            }
            for n in (0..16).filter(|n| ext & (1 << n) != 0) {
                rebar_size(out, n + 28);
            }
        }
        out.push('\n');
        i += 1;
    }
}

fn doe(out: &mut String, e: Regs<'_>) {
    if !e.has(4, 0x14) {
        out.push_str("\t\t<unreadable>\n");
        return;
    }
    let cap = e.d(4);
    let _ = writeln!(out, "\t\tDOECap: IntSup{}", flag32(cap, 1));
    if cap & 1 != 0 {
        let _ = writeln!(
            out,
            "\t\t\tInterrupt Message Number {:03x}",
            (cap >> 1) & 0x7ff
        );
    }
    let _ = writeln!(out, "\t\tDOECtl: IntEn{}", flag32(e.d(8), 2));
    // lspci 3.9 shows Error+ when bit 0 or 1 is set (not bit 2).
    let sta = [
        ("Busy", 1),
        ("IntSta", 2),
        ("Error", 3),
        ("ObjectReady", 1 << 31),
    ];
    let _ = writeln!(out, "\t\tDOESta: {}", bits(e.d(0xc), &sta));
}

//! `-vv` detail lines under the PCI Express capability (ID 0x10): device,
//! link, slot and root registers, and for version 2 and later the `*2`
//! registers. Which lines and fields appear depends on the device/port
//! type, the slot-implemented flag, the capability version, the function's
//! address and whether it has a memory BAR, as in pciutils 3.9.
//!
//! Nothing is printed when the registers a block needs lie past the bytes
//! that could be read (a 256-byte space with the capability near its end).

use super::regs::Regs;
use super::verbose::{bits, flag, flag32, has_memory_bar};
use super::Device;
use pci::cap_reg::exp as reg;
use pci::PciePortType::{self as Ty, *};
use std::fmt::Write;

/// Prints the detail lines for the capability at `at` whose capabilities
/// register is `flags`.
pub(super) fn express(out: &mut String, dev: &Device, at: usize, flags: u16) {
    let r = Regs { c: &dev.config, at };
    let ty = Ty::from_raw(((flags >> 4) & 0xf) as u8);
    let slot = matches!(ty, RootPort | Downstream | PciToPcie) && flags & 0x100 != 0;
    let root = matches!(ty, RootPort | RcEventCollector);
    let link = ty.has_link();
    let size = if root {
        32
    } else if slot {
        24
    } else {
        16
    };
    if !r.has(reg::DEVCAP, size) {
        return;
    }
    device(out, r, ty);
    if link {
        link1(out, r, ty);
    }
    if slot {
        slot_regs(out, r);
    }
    if root {
        root_regs(out, r);
    }
    if flags & 0xf < 2 || !r.has(reg::DEVCAP2, if slot { 24 } else { 16 }) {
        return;
    }
    device2(out, r, ty, has_memory_bar(dev));
    if link {
        // Link capabilities 2 was reserved before PCIe 3.0; lspci reads it
        // only on function 0 of an endpoint.
        let ep = matches!(ty, Endpoint | LegacyEndpoint);
        let f0 = dev.addr.device == 0 && dev.addr.function == 0;
        link2(out, r, ty, !ep || f0);
    }
}

const L0S: [&str; 8] = [
    "<64ns",
    "<128ns",
    "<256ns",
    "<512ns",
    "<1us",
    "<2us",
    "<4us",
    "unlimited",
];
const L1: [&str; 8] = [
    "<1us",
    "<2us",
    "<4us",
    "<8us",
    "<16us",
    "<32us",
    "<64us",
    "unlimited",
];

/// A slot power limit: `value` scaled by 1, 0.1, 0.01 or 0.001 watts
/// (computed in single precision, shown like C's `%g`), with the encodings
/// for 250–600 W and above.
fn power_limit(out: &mut String, value: u32, scale: u32) {
    const SCALES: [f32; 4] = [1.0, 0.1, 0.01, 0.001];
    let mut value = value & 0xff;
    let scale = (scale & 3) as usize;
    if scale == 0 && value == 0xff {
        out.push_str(">600W");
        return;
    }
    if scale == 0 && (0xf0..=0xfe).contains(&value) {
        value = 250 + 25 * (value - 0xf0);
    }
    let v = f64::from(value as f32 * SCALES[scale]);
    out.push_str(&g_format(v));
    out.push('W');
}

/// C's `%g` (six significant digits) for the non-negative values a power
/// limit can take.
fn g_format(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // The exponent after rounding to six significant digits.
    let sci = format!("{v:.5e}");
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if !(-4..6).contains(&exp) {
        return sci;
    }
    let prec = (5 - exp).max(0) as usize;
    let s = format!("{v:.prec$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Device control's error reporting enables, device status's detected
/// errors.
const ERRORS: &[(&str, u32)] = &[
    ("CorrErr", 1),
    ("NonFatalErr", 2),
    ("FatalErr", 4),
    ("UnsupReq", 8),
];

fn device(out: &mut String, r: Regs<'_>, ty: Ty) {
    let t = r.d(reg::DEVCAP);
    let ep = matches!(ty, Endpoint | LegacyEndpoint);
    let flr = matches!(ty, Endpoint | LegacyEndpoint | RcIntegratedEndpoint);
    let _ = write!(
        out,
        "\t\tDevCap:\tMaxPayload {} bytes, PhantFunc {}",
        128u32 << (t & 7),
        (1u32 << ((t >> 3) & 3)) - 1
    );
    if ep {
        let _ = write!(
            out,
            ", Latency L0s {}, L1 {}",
            L0S[((t >> 6) & 7) as usize],
            L1[((t >> 9) & 7) as usize]
        );
    }
    let _ = write!(out, "\n\t\t\tExtTag{}", flag32(t, 0x20));
    if matches!(ty, Endpoint | LegacyEndpoint | Upstream | PcieToPci) {
        let b = [("AttnBtn", 0x1000), ("AttnInd", 0x2000), ("PwrInd", 0x4000)];
        let _ = write!(out, " {}", bits(t, &b));
    }
    let _ = write!(out, " RBE{}", flag32(t, 0x8000));
    if flr {
        let _ = write!(out, " FLReset{}", flag32(t, 1 << 28));
    }
    if matches!(ty, Endpoint | Upstream | PcieToPci) {
        out.push_str(" SlotPowerLimit ");
        power_limit(out, t >> 18, t >> 26);
    }
    out.push('\n');

    let w = r.w16(reg::DEVCTL);
    let _ = write!(
        out,
        "\t\tDevCtl:\t{}\n\t\t\t{}",
        bits(w.into(), ERRORS),
        bits(
            w.into(),
            &[
                ("RlxdOrd", 0x10),
                ("ExtTag", 0x100),
                ("PhantFunc", 0x200),
                ("AuxPwr", 0x400),
                ("NoSnoop", 0x800),
            ]
        ),
    );
    if ty == PcieToPci {
        let _ = write!(out, " BrConfRtry{}", flag(w, 0x8000));
    }
    if flr && t & (1 << 28) != 0 {
        let _ = write!(out, " FLReset{}", flag(w, 0x8000));
    }
    let _ = writeln!(
        out,
        "\n\t\t\tMaxPayload {} bytes, MaxReadReq {} bytes",
        128u32 << ((w >> 5) & 7),
        128u32 << ((w >> 12) & 7)
    );

    let w = r.w16(reg::DEVSTA);
    let _ = writeln!(
        out,
        "\t\tDevSta:\t{} {}",
        bits(w.into(), ERRORS),
        bits(w.into(), &[("AuxPwr", 0x10), ("TransPend", 0x20)]),
    );
}

fn link_speed(speed: u32) -> &'static str {
    match speed {
        1 => "2.5GT/s",
        2 => "5GT/s",
        3 => "8GT/s",
        4 => "16GT/s",
        5 => "32GT/s",
        6 => "64GT/s",
        _ => "unknown",
    }
}

/// Ports facing downstream: a narrower or slower link is no surprise there.
fn downstream_port(ty: Ty) -> bool {
    matches!(ty, RootPort | Downstream | PciToPcie)
}

/// How the negotiated value compares with the capability.
fn link_compare(ty: Ty, sta: u32, cap: u32) -> &'static str {
    if sta > cap {
        " (overdriven)"
    } else if sta == cap || downstream_port(ty) {
        ""
    } else {
        " (downgraded)"
    }
}

fn link1(out: &mut String, r: Regs<'_>, ty: Ty) {
    let t = r.d(reg::LNKCAP);
    let aspm = (t >> 10) & 3;
    let (cap_speed, cap_width) = (t & 0xf, (t >> 4) & 0x3f);
    let _ = write!(
        out,
        "\t\tLnkCap:\tPort #{}, Speed {}, Width x{cap_width}, ASPM {}",
        t >> 24,
        link_speed(cap_speed),
        ["not supported", "L0s", "L1", "L0s L1"][aspm as usize]
    );
    if aspm != 0 {
        out.push_str(", Exit Latency ");
        if aspm & 1 != 0 {
            let _ = write!(out, "L0s {}", L0S[((t >> 12) & 7) as usize]);
        }
        if aspm & 2 != 0 {
            let sep = if aspm & 1 != 0 { ", " } else { "" };
            let _ = write!(out, "{sep}L1 {}", L1[((t >> 15) & 7) as usize]);
        }
    }
    let b = [
        ("ClockPM", 1 << 18),
        ("Surprise", 1 << 19),
        ("LLActRep", 1 << 20),
        ("BwNot", 1 << 21),
        ("ASPMOptComp", 1 << 22),
    ];
    let _ = writeln!(out, "\n\t\t\t{}", bits(t, &b));

    let w = r.w16(reg::LNKCTL);
    let _ = write!(
        out,
        "\t\tLnkCtl:\tASPM {};",
        ["Disabled", "L0s Enabled", "L1 Enabled", "L0s L1 Enabled"][usize::from(w & 3)]
    );
    if matches!(ty, RootPort | Endpoint | LegacyEndpoint | PcieToPci) {
        let _ = write!(out, " RCB {} bytes,", if w & 8 != 0 { 128 } else { 64 });
    }
    let b = [
        ("ExtSynch", 0x80),
        ("ClockPM", 0x100),
        ("AutWidDis", 0x200),
        ("BWInt", 0x400),
        ("AutBWInt", 0x800),
    ];
    let _ = writeln!(
        out,
        " Disabled{} CommClk{}\n\t\t\t{}",
        flag(w, 0x10),
        flag(w, 0x40),
        bits(w.into(), &b)
    );

    let w = r.w16(reg::LNKSTA);
    let (speed, width) = (u32::from(w & 0xf), u32::from((w >> 4) & 0x3f));
    let b = [
        ("TrErr", 0x400),
        ("Train", 0x800),
        ("SlotClk", 0x1000),
        ("DLActive", 0x2000),
        ("BWMgmt", 0x4000),
        ("ABWMgmt", 0x8000),
    ];
    let _ = writeln!(
        out,
        "\t\tLnkSta:\tSpeed {}{}, Width x{width}{}\n\t\t\t{}",
        link_speed(speed),
        link_compare(ty, speed, cap_speed),
        link_compare(ty, width, cap_width),
        bits(w.into(), &b)
    );
}

const INDICATOR: [&str; 4] = ["Unknown", "On", "Blink", "Off"];

fn slot_regs(out: &mut String, r: Regs<'_>) {
    let t = r.d(reg::SLTCAP);
    let b = [
        ("AttnBtn", 1),
        ("PwrCtrl", 2),
        ("MRL", 4),
        ("AttnInd", 8),
        ("PwrInd", 0x10),
        ("HotPlug", 0x40),
        ("Surprise", 0x20),
    ];
    let _ = write!(
        out,
        "\t\tSltCap:\t{}\n\t\t\tSlot #{}, PowerLimit ",
        bits(t, &b),
        t >> 19
    );
    power_limit(out, t >> 7, t >> 15);
    let b = [("Interlock", 1 << 17), ("NoCompl", 1 << 18)];
    let _ = writeln!(out, "; {}", bits(t, &b));

    let w = r.w16(reg::SLTCTL);
    let b = [
        ("AttnBtn", 1),
        ("PwrFlt", 2),
        ("MRL", 4),
        ("PresDet", 8),
        ("CmdCplt", 0x10),
        ("HPIrq", 0x20),
        ("LinkChg", 0x1000),
    ];
    let _ = writeln!(
        out,
        "\t\tSltCtl:\tEnable: {}\n\t\t\tControl: AttnInd {}, PwrInd {}, Power{} Interlock{}",
        bits(w.into(), &b),
        INDICATOR[usize::from((w >> 6) & 3)],
        INDICATOR[usize::from((w >> 8) & 3)],
        flag(w, 0x400),
        flag(w, 0x800),
    );

    let w = r.w16(reg::SLTSTA);
    let status = [
        ("AttnBtn", 1),
        ("PowerFlt", 2),
        ("MRL", 0x20),
        ("CmdCplt", 0x10),
        ("PresDet", 0x40),
        ("Interlock", 0x80),
    ];
    let changed = [("MRL", 4), ("PresDet", 8), ("LinkState", 0x100)];
    let _ = writeln!(
        out,
        "\t\tSltSta:\tStatus: {}\n\t\t\tChanged: {}",
        bits(w.into(), &status),
        bits(w.into(), &changed)
    );
}

fn root_regs(out: &mut String, r: Regs<'_>) {
    let _ = writeln!(out, "\t\tRootCap: CRSVisible{}", flag(r.w16(reg::RTCAP), 1));
    let b = [
        ("ErrCorrectable", 1),
        ("ErrNon-Fatal", 2),
        ("ErrFatal", 4),
        ("PMEIntEna", 8),
        ("CRSVisible", 0x10),
    ];
    let _ = writeln!(out, "\t\tRootCtl: {}", bits(r.w16(reg::RTCTL).into(), &b));
    let s = r.d(reg::RTSTA);
    let _ = writeln!(
        out,
        "\t\tRootSta: PME ReqID {:04x}, PMEStatus{} PMEPending{}",
        s & 0xffff,
        flag32(s, 1 << 16),
        flag32(s, 1 << 17),
    );
}

fn timeout_ranges(v: u32) -> &'static str {
    match v {
        0 => "Not Supported",
        1 => "Range A",
        2 => "Range B",
        3 => "Range AB",
        6 => "Range BC",
        7 => "Range ABC",
        14 => "Range BCD",
        15 => "Range ABCD",
        _ => "Unknown",
    }
}

fn timeout_value(v: u16) -> &'static str {
    match v {
        0 => "50us to 50ms",
        1 => "50us to 100us",
        2 => "1ms to 10ms",
        5 => "16ms to 55ms",
        6 => "65ms to 210ms",
        9 => "260ms to 900ms",
        10 => "1s to 3.5s",
        13 => "4s to 13s",
        14 => "17s to 64s",
        _ => "Unknown",
    }
}

fn device2(out: &mut String, r: Regs<'_>, ty: Ty, mem_bar: bool) {
    let l = r.d(reg::DEVCAP2);
    let _ = write!(
        out,
        "\t\tDevCap2: Completion Timeout: {}, TimeoutDis{} NROPrPrP{} LTR{}\n\t\t\t 10BitTagComp{} 10BitTagReq{} OBFF {}, ExtFmt{} EETLPPrefix{}",
        timeout_ranges(l & 0xf),
        flag32(l, 0x10),
        flag32(l, 0x400),
        flag32(l, 0x800),
        flag32(l, 1 << 16),
        flag32(l, 1 << 17),
        ["Not Supported", "Via message", "Via WAKE#", "Via message/WAKE#"][((l >> 18) & 3) as usize],
        flag32(l, 1 << 20),
        flag32(l, 1 << 21),
    );
    if l & (1 << 21) != 0 {
        let n = (l >> 22) & 3;
        let _ = write!(out, ", MaxEETLPPrefixes {}", if n != 0 { n } else { 4 });
    }
    let _ = write!(
        out,
        "\n\t\t\t EmergencyPowerReduction {}, EmergencyPowerReductionInit{}\n\t\t\t FRS{}",
        [
            "Not Supported",
            "Dev Specific",
            "Form Factor Dev Specific",
            "Reserved"
        ][((l >> 24) & 3) as usize],
        flag32(l, 1 << 26),
        flag32(l, 1 << 31),
    );
    if ty == RootPort {
        let _ = write!(
            out,
            " LN System CLS {},",
            [
                "Not Supported",
                "64byte cachelines",
                "128byte cachelines",
                "Reserved"
            ][((l >> 14) & 3) as usize]
        );
    }
    if matches!(ty, RootPort | Endpoint) {
        let _ = write!(
            out,
            " {}",
            [
                "TPHComp- ExtTPHComp-",
                "TPHComp+ ExtTPHComp-",
                "",
                "TPHComp+ ExtTPHComp+"
            ][((l >> 12) & 3) as usize]
        );
    }
    let ari = matches!(ty, RootPort | Downstream);
    if ari {
        let _ = write!(out, " ARIFwd{}", flag32(l, 0x20));
    }
    out.push('\n');
    let routing = matches!(ty, RootPort | Upstream | Downstream);
    if routing || mem_bar {
        out.push_str("\t\t\t AtomicOpsCap:");
        if routing {
            let _ = write!(out, " Routing{}", flag32(l, 0x40));
        }
        if ty == RootPort || mem_bar {
            let _ = write!(
                out,
                " 32bit{} 64bit{} 128bitCAS{}",
                flag32(l, 0x80),
                flag32(l, 0x100),
                flag32(l, 0x200)
            );
        }
        out.push('\n');
    }

    let w = r.w16(reg::DEVCTL2);
    let _ = write!(
        out,
        "\t\tDevCtl2: Completion Timeout: {}, TimeoutDis{} LTR{} 10BitTagReq{} OBFF {},",
        timeout_value(w & 0xf),
        flag(w, 0x10),
        flag(w, 0x400),
        flag(w, 0x1000),
        ["Disabled", "Via message A", "Via message B", "Via WAKE#"][usize::from((w >> 13) & 3)],
    );
    if ari {
        let _ = write!(out, " ARIFwd{}", flag(w, 0x20));
    }
    out.push('\n');
    let requester = matches!(
        ty,
        RootPort | Endpoint | RcIntegratedEndpoint | LegacyEndpoint
    );
    if requester || routing {
        out.push_str("\t\t\t AtomicOpsCtl:");
        if requester {
            let _ = write!(out, " ReqEn{}", flag(w, 0x40));
        }
        if routing {
            let _ = write!(out, " EgressBlck{}", flag(w, 0x80));
        }
        out.push('\n');
    }
}

fn speeds_supported(vector: u32) -> &'static str {
    if vector & 0x60 != 0 {
        "RsvdP"
    } else if vector & 0x10 != 0 {
        "2.5-32GT/s"
    } else if vector & 0x08 != 0 {
        "2.5-16GT/s"
    } else if vector & 0x04 != 0 {
        "2.5-8GT/s"
    } else if vector & 0x02 != 0 {
        "2.5-5GT/s"
    } else if vector & 0x01 != 0 {
        "2.5GT/s"
    } else {
        "Unknown"
    }
}

fn target_speed(v: u16) -> &'static str {
    match v {
        // Hardwired to 0: only 2.5 GT/s.
        0 | 1 => "2.5GT/s",
        2 => "5GT/s",
        3 => "8GT/s",
        4 => "16GT/s",
        5 => "32GT/s",
        6 => "64GT/s",
        _ => "Unknown",
    }
}

fn deemphasis(v: u16) -> &'static str {
    if v & 1 == 0 {
        "-6dB"
    } else {
        "-3.5dB"
    }
}

fn compliance_preset(v: u16) -> &'static str {
    match v {
        0 => "-6dB de-emphasis, 0dB preshoot",
        1 => "-3.5dB de-emphasis, 0dB preshoot",
        2 => "-4.4dB de-emphasis, 0dB preshoot",
        3 => "-2.5dB de-emphasis, 0dB preshoot",
        4 => "0dB de-emphasis, 0dB preshoot",
        5 => "0dB de-emphasis, 1.9dB preshoot",
        6 => "0dB de-emphasis, 2.5dB preshoot",
        7 => "-6.0dB de-emphasis, 3.5dB preshoot",
        8 => "-3.5dB de-emphasis, 3.5dB preshoot",
        9 => "0dB de-emphasis, 3.5dB preshoot",
        _ => "Unknown",
    }
}

fn transmit_margin(v: u16) -> &'static str {
    match v {
        0 => "Normal Operating Range",
        1 => "800-1200mV(full-swing)/400-700mV(half-swing)",
        2..=5 => "200-400mV(full-swing)/100-200mV(half-swing)",
        _ => "Unknown",
    }
}

fn downstream_component(v: u16) -> &'static str {
    match v {
        0 => "Link Down - Not Determined",
        1 => "Link Down - Not Present",
        2 => "Link Down - Present",
        4 => "Link Up - Present",
        5 => "Link Up - Present and DRS Received",
        _ => "Reserved",
    }
}

/// Link capabilities/control 2 (when `cap2` says they are meaningful) and
/// link status 2.
fn link2(out: &mut String, r: Regs<'_>, ty: Ty, cap2: bool) {
    let mut l = 0;
    if cap2 {
        l = r.d(reg::LNKCAP2);
        if l != 0 {
            let _ = writeln!(
                out,
                "\t\tLnkCap2: Supported Link Speeds: {}, Crosslink{} Retimer{} 2Retimers{} DRS{}",
                speeds_supported((l >> 1) & 0x7f),
                flag32(l, 0x100),
                flag32(l, 1 << 23),
                flag32(l, 1 << 24),
                flag32(l, 1 << 31),
            );
        }
        let w = r.w16(reg::LNKCTL2);
        let _ = write!(
            out,
            "\t\tLnkCtl2: Target Link Speed: {}, EnterCompliance{} SpeedDis{}",
            target_speed(w & 0xf),
            flag(w, 0x10),
            flag(w, 0x20),
        );
        if ty == Downstream {
            let _ = write!(out, ", Selectable De-emphasis: {}", deemphasis(w >> 6));
        }
        let _ = writeln!(
            out,
            "\n\t\t\t Transmit Margin: {}, EnterModifiedCompliance{} ComplianceSOS{}\n\t\t\t Compliance Preset/De-emphasis: {}",
            transmit_margin((w >> 7) & 7),
            flag(w, 0x400),
            flag(w, 0x800),
            compliance_preset((w >> 12) & 0xf),
        );
    }
    let w = r.w16(reg::LNKSTA2);
    let eq1 = [("EqualizationComplete", 2), ("EqualizationPhase1", 4)];
    let eq2 = [
        ("EqualizationPhase2", 8),
        ("EqualizationPhase3", 0x10),
        ("LinkEqualizationRequest", 0x20),
    ];
    let retimers = [("Retimer", 0x40), ("2Retimers", 0x80)];
    let _ = write!(
        out,
        "\t\tLnkSta2: Current De-emphasis Level: {}, {}\n\t\t\t {}\n\t\t\t {} CrosslinkRes: {}",
        deemphasis(w),
        bits(w.into(), &eq1),
        bits(w.into(), &eq2),
        bits(w.into(), &retimers),
        [
            "unsupported",
            "Upstream Port",
            "Downstream Port",
            "incomplete"
        ][usize::from((w >> 8) & 3)],
    );
    if downstream_port(ty) && l & (1 << 31) != 0 {
        let _ = write!(
            out,
            ", DRS{}\n\t\t\t DownstreamComp: {}",
            flag(w, 0x8000),
            downstream_component((w >> 12) & 7)
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::g_format;

    #[test]
    fn power_limits_print_like_printf_g() {
        let p = |v: u32, s: u32| {
            let mut o = String::new();
            super::power_limit(&mut o, v, s);
            o
        };
        assert_eq!(p(0, 0), "0W");
        assert_eq!(p(25, 0), "25W");
        assert_eq!(p(239, 1), "23.9W");
        assert_eq!(p(75, 2), "0.75W");
        assert_eq!(p(1, 3), "0.001W");
        assert_eq!(p(0xf0, 0), "250W");
        assert_eq!(p(0xfe, 0), "600W");
        assert_eq!(p(0xff, 0), ">600W");
        assert_eq!(p(0xff, 1), "25.5W");
        assert_eq!(g_format(123.456_789), "123.457");
    }
}

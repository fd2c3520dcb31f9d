//! `-v`: the verbose listing (header, regions, bridge windows, then the
//! capability titles from `caps`).

use super::{caps, show_terse, Device, Options};
use crate::ids::Names;
use pci::{command as cmd, reg, status as st, HeaderType};
use std::fmt::Write;

pub(super) fn flag(v: u16, bit: u16) -> char {
    if v & bit != 0 {
        '+'
    } else {
        '-'
    }
}

/// `+`/`-` for a bit of a 32-bit register.
pub(super) fn flag32(v: u32, bit: u32) -> char {
    if v & bit != 0 {
        '+'
    } else {
        '-'
    }
}

/// `Name+`/`Name-` for each `(name, bit)` of `v`, separated by spaces.
pub(super) fn bits(v: u32, names: &[(&str, u32)]) -> String {
    let mut s = String::new();
    for (i, (name, bit)) in names.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(name);
        s.push(flag32(v, *bit));
    }
    s
}

fn devsel(status: u16) -> &'static str {
    match (status & st::DEVSEL_MASK) >> 9 {
        0 => "fast",
        1 => "medium",
        2 => "slow",
        _ => "??",
    }
}

pub(super) fn show_verbose(out: &mut String, dev: &Device, opts: &Options, names: &Names<'_>) {
    let c = &dev.config;
    let status = c.status();
    let command = c.command();
    let class = c.class();
    let htype = c.header_type_raw() & 0x7f;
    show_terse(out, dev, opts, names);
    let unknown = matches!(c.header_type(), HeaderType::Unknown(_));
    let (min_gnt, max_lat) = match c.header_type() {
        HeaderType::Normal => {
            if class == 0x0604 {
                let _ = writeln!(
                    out,
                    "\t!!! Invalid class {class:04x} for header type {htype:02x}"
                );
            }
            (c.min_gnt(), c.max_lat())
        }
        HeaderType::Bridge | HeaderType::CardBus => {
            if class >> 8 != 0x06 {
                let _ = writeln!(
                    out,
                    "\t!!! Invalid class {class:04x} for header type {htype:02x}"
                );
            }
            (0, 0)
        }
        HeaderType::Unknown(_) => {
            let _ = writeln!(out, "\t!!! Unknown header type {htype:02x}");
            (0, 0)
        }
    };
    if let Some(slot) = &dev.os.phy_slot {
        let _ = writeln!(out, "\tPhysical Slot: {slot}");
    }
    if let Some(node) = &dev.os.dt_node {
        let _ = writeln!(out, "\tDevice tree node: {node}");
    }
    let irq = dev.irq();
    let latency = c.latency_timer();
    let numa = dev.os.numa_node.filter(|&n| n != -1);
    if opts.verbose > 1 {
        if !unknown {
            show_control_status(out, command, status);
        }
        if !unknown && command & cmd::MASTER != 0 {
            let _ = write!(out, "\tLatency: {latency}");
            if min_gnt != 0 || max_lat != 0 {
                out.push_str(" (");
                if min_gnt != 0 {
                    let _ = write!(out, "{}ns min", u32::from(min_gnt) * 250);
                }
                if min_gnt != 0 && max_lat != 0 {
                    out.push_str(", ");
                }
                if max_lat != 0 {
                    let _ = write!(out, "{}ns max", u32::from(max_lat) * 250);
                }
                out.push(')');
            }
            let cls = c.cache_line_size();
            if cls != 0 {
                let _ = write!(out, ", Cache Line Size: {} bytes", u32::from(cls) * 4);
            }
            out.push('\n');
        }
        let pin = if unknown { 0 } else { c.interrupt_pin() };
        if pin != 0 || irq != 0 {
            let p = if pin != 0 {
                char::from(b'A'.wrapping_add(pin - 1))
            } else {
                '?'
            };
            let _ = writeln!(out, "\tInterrupt: pin {p} routed to IRQ {irq}");
        }
        if let Some(n) = numa {
            let _ = writeln!(out, "\tNUMA node: {n}");
        }
        if let Some(g) = &dev.os.iommu_group {
            let _ = writeln!(out, "\tIOMMU group: {g}");
        }
    } else if !unknown {
        out.push_str("\tFlags: ");
        let words: [(bool, &str); 6] = [
            (command & cmd::MASTER != 0, "bus master, "),
            (command & cmd::VGA_PALETTE != 0, "VGA palette snoop, "),
            (command & cmd::WAIT != 0, "stepping, "),
            (command & cmd::FAST_BACK != 0, "fast Back2Back, "),
            (status & st::MHZ66 != 0, "66MHz, "),
            (status & st::UDF != 0, "user-definable features, "),
        ];
        for (on, w) in words {
            if on {
                out.push_str(w);
            }
        }
        let _ = write!(out, "{} devsel", devsel(status));
        if command & cmd::MASTER != 0 {
            let _ = write!(out, ", latency {latency}");
        }
        if irq != 0 {
            let _ = write!(out, ", IRQ {irq}");
        }
        if let Some(n) = numa {
            let _ = write!(out, ", NUMA node {n}");
        }
        if let Some(g) = &dev.os.iommu_group {
            let _ = write!(out, ", IOMMU group {g}");
        }
        out.push('\n');
    }
    let bist = if unknown { 0 } else { c.bist() };
    if bist & 0x80 != 0 {
        if bist & 0x40 != 0 {
            out.push_str("\tBIST is running\n");
        } else {
            let _ = writeln!(out, "\tBIST result: {:02x}", bist & 0x0f);
        }
    }
    match c.header_type() {
        HeaderType::Normal => {
            show_bases(out, dev, opts, 6);
            show_rom(out, dev, reg::ROM, 6);
            caps::show_caps(out, dev, opts, names);
        }
        HeaderType::Bridge => {
            show_bases(out, dev, opts, 2);
            show_bridge(out, dev, opts);
            caps::show_caps(out, dev, opts, names);
        }
        HeaderType::CardBus => {
            show_bases(out, dev, opts, 1);
            show_cardbus(out, dev, opts);
            if dev.cached() >= 128 {
                caps::show_caps(out, dev, opts, names);
            }
        }
        HeaderType::Unknown(_) => {}
    }
}

fn show_control_status(out: &mut String, command: u16, status: u16) {
    let _ = writeln!(
        out,
        "\tControl: I/O{} Mem{} BusMaster{} SpecCycle{} MemWINV{} VGASnoop{} ParErr{} Stepping{} SERR{} FastB2B{} DisINTx{}",
        flag(command, cmd::IO),
        flag(command, cmd::MEMORY),
        flag(command, cmd::MASTER),
        flag(command, cmd::SPECIAL),
        flag(command, cmd::INVALIDATE),
        flag(command, cmd::VGA_PALETTE),
        flag(command, cmd::PARITY),
        flag(command, cmd::WAIT),
        flag(command, cmd::SERR),
        flag(command, cmd::FAST_BACK),
        flag(command, cmd::INTX_DISABLE),
    );
    let _ = writeln!(
        out,
        "\tStatus: Cap{} 66MHz{} UDF{} FastB2B{} ParErr{} DEVSEL={} >TAbort{} <TAbort{} <MAbort{} >SERR{} <PERR{} INTx{}",
        flag(status, st::CAP_LIST),
        flag(status, st::MHZ66),
        flag(status, st::UDF),
        flag(status, st::FAST_BACK),
        flag(status, st::PARITY),
        devsel(status),
        flag(status, st::SIG_TARGET_ABORT),
        flag(status, st::REC_TARGET_ABORT),
        flag(status, st::REC_MASTER_ABORT),
        flag(status, st::SIG_SYSTEM_ERROR),
        flag(status, st::DETECTED_PARITY),
        flag(status, st::INTX),
    );
}

/// What lspci knows of one region: base (with the low flag bits), size,
/// and the OS's resource flags (sysfs only).
#[derive(Clone, Copy, Default)]
struct Region {
    pos: u64,
    len: u64,
    ioflg: Option<u64>,
}

/// The regions lspci works from: the OS's resources when known (start |
/// low flag bits), else decoded from the BARs as libpci does for dumps.
/// Returns the `cnt` BAR regions and the ROM.
fn regions(dev: &Device, cnt: usize) -> ([Region; 6], Region) {
    let c = &dev.config;
    let mut r = [Region::default(); 6];
    if let Some(res) = &dev.os.resources {
        for i in 0..cnt {
            r[i] = Region {
                pos: res[i].start | (res[i].flags & 0xf),
                len: res[i].size(),
                ioflg: Some(res[i].flags),
            };
        }
        let rom = Region {
            pos: res[6].start | (res[6].flags & 0xf),
            len: res[6].size(),
            ioflg: Some(res[6].flags),
        };
        return (r, rom);
    }
    let mut i = 0;
    while i < cnt {
        let x = c.bar_raw(i);
        if x != 0 && x != u32::MAX {
            if x & 1 != 0 || (x >> 1) & 3 != 2 {
                r[i].pos = x.into();
            } else if i + 1 < cnt {
                i += 1;
                r[i - 1].pos = u64::from(x) | (u64::from(c.bar_raw(i)) << 32);
            }
        }
        i += 1;
    }
    let rom = c.rom_raw().filter(|&r| r != u32::MAX).unwrap_or(0);
    (
        r,
        Region {
            pos: rom.into(),
            ..Region::default()
        },
    )
}

/// Whether any BAR maps memory (lspci's test for the AtomicOps completer
/// fields): a base or a size, without the I/O space bit.
pub(super) fn has_memory_bar(dev: &Device) -> bool {
    let cnt = match dev.config.header_type() {
        HeaderType::Normal => 6,
        HeaderType::Bridge => 2,
        HeaderType::CardBus => 1,
        HeaderType::Unknown(_) => 0,
    };
    let (regs, _) = regions(dev, cnt);
    regs[..cnt]
        .iter()
        .any(|r| (r.pos != 0 || r.len != 0) && r.pos & 1 == 0)
}

/// Linux resource flags as lspci reads them.
const IORESOURCE_IO: u64 = 0x100;
const IORESOURCE_MEM: u64 = 0x200;
const IORESOURCE_TYPE_BITS: u64 = 0x1f00;
const IORESOURCE_PREFETCH: u64 = 0x2000;
const IORESOURCE_MEM_64: u64 = 0x0010_0000;
const IORESOURCE_PCI_EA_BEI: u64 = 1 << 5;

/// The BAR flag bits equivalent to Linux resource flags.
fn ioflg_to_pciflg(ioflg: u64) -> u32 {
    if ioflg & IORESOURCE_IO != 0 {
        1
    } else if ioflg & IORESOURCE_MEM == 0 {
        0
    } else {
        let mut f = if ioflg & IORESOURCE_MEM_64 != 0 { 4 } else { 0 };
        if ioflg & IORESOURCE_PREFETCH != 0 {
            f |= 8;
        }
        f
    }
}

fn size_suffix(mut x: u64) -> String {
    if x == 0 {
        return String::new();
    }
    let suffix = ["", "K", "M", "G", "T"];
    let mut i = 0;
    while i < suffix.len() - 1 && x.is_multiple_of(1024) {
        x /= 1024;
        i += 1;
    }
    format!(" [size={}{}]", x as u32, suffix[i])
}

fn show_bases(out: &mut String, dev: &Device, opts: &Options, cnt: usize) {
    let c = &dev.config;
    let command = c.command();
    let (regs, _) = regions(dev, cnt);
    for (i, r) in regs.iter().enumerate().take(cnt) {
        let (pos, len) = (r.pos, r.len);
        let ioflg = r.ioflg.unwrap_or(0);
        let mut flg = match r.ioflg {
            Some(f) => ioflg_to_pciflg(f),
            None => c.bar_raw(i),
        };
        if flg == u32::MAX {
            flg = 0;
        }
        if pos == 0 && flg == 0 && len == 0 {
            continue;
        }
        if opts.verbose > 1 {
            let _ = write!(out, "\tRegion {i}: ");
        } else {
            out.push('\t');
        }
        let mut hw_lower = 0u32;
        let mut hw_upper = 0u32;
        let mut broken = false;
        let mut virt = false;
        if r.ioflg.is_some() {
            // Compare with the address the device itself decodes.
            hw_lower = c.bar_raw(i);
            if hw_lower & 1 == ioflg_to_pciflg(ioflg) & 1 {
                if ioflg & IORESOURCE_TYPE_BITS == IORESOURCE_MEM && (hw_lower >> 1) & 3 == 2 {
                    if i >= cnt - 1 {
                        broken = true;
                    } else {
                        // pciutils reads the upper half one byte in (sic).
                        hw_upper = c.dword(0x10 + 4 * i + 1).unwrap_or(0);
                    }
                }
                if pos != 0 && hw_lower == 0 && hw_upper == 0 && ioflg & IORESOURCE_PCI_EA_BEI == 0
                {
                    virt = true;
                }
            }
        }
        if flg & 1 != 0 {
            let a = pos & !3;
            out.push_str("I/O ports at ");
            if a != 0 || command & cmd::IO != 0 {
                let _ = write!(out, "{a:04x}");
            } else if hw_lower != 0 {
                out.push_str("<ignored>");
            } else {
                out.push_str("<unassigned>");
            }
            if virt {
                out.push_str(" [virtual]");
            } else if command & cmd::IO == 0 {
                out.push_str(" [disabled]");
            }
        } else {
            let a = pos & !0xf;
            out.push_str("Memory at ");
            if broken {
                out.push_str("<broken-64-bit-slot>");
            } else if a != 0 {
                let _ = write!(out, "{a:08x}");
            } else if hw_lower != 0 || hw_upper != 0 {
                out.push_str("<ignored>");
            } else {
                out.push_str("<unassigned>");
            }
            let _ = write!(
                out,
                " ({}, {}prefetchable)",
                match (flg >> 1) & 3 {
                    0 => "32-bit",
                    2 => "64-bit",
                    1 => "low-1M",
                    _ => "type 3",
                },
                if flg & 8 != 0 { "" } else { "non-" }
            );
            if virt {
                out.push_str(" [virtual]");
            } else if command & cmd::MEMORY == 0 {
                out.push_str(" [disabled]");
            }
        }
        if ioflg & IORESOURCE_PCI_EA_BEI != 0 {
            out.push_str(" [enhanced]");
        }
        out.push_str(&size_suffix(len));
        out.push('\n');
    }
}

fn show_rom(out: &mut String, dev: &Device, reg_at: usize, cnt: usize) {
    let c = &dev.config;
    let (_, r) = regions(dev, cnt);
    let (rom, len) = (r.pos, r.len);
    let ioflg = r.ioflg.unwrap_or(0);
    let mut flg = u64::from(c.dword(reg_at).unwrap_or(0));
    let command = c.command();
    const MASK: u64 = !0x7ff;
    if rom == 0 && flg == 0 && len == 0 {
        return;
    }
    let mut virt = false;
    if rom & MASK != 0 && flg & MASK == 0 && ioflg & IORESOURCE_PCI_EA_BEI == 0 {
        flg = rom;
        virt = true;
    }
    out.push_str("\tExpansion ROM at ");
    if rom & MASK != 0 {
        let _ = write!(out, "{:08x}", rom & MASK);
    } else if flg & MASK != 0 {
        out.push_str("<ignored>");
    } else {
        out.push_str("<unassigned>");
    }
    if virt {
        out.push_str(" [virtual]");
    }
    if flg & 1 == 0 {
        out.push_str(" [disabled]");
    } else if !virt && command & cmd::MEMORY == 0 {
        out.push_str(" [disabled by cmd]");
    }
    if ioflg & IORESOURCE_PCI_EA_BEI != 0 {
        out.push_str(" [enhanced]");
    }
    out.push_str(&size_suffix(len));
    out.push('\n');
}

/// A bridge window line (`I/O behind bridge: …`).
fn show_range(out: &mut String, opts: &Options, prefix: &str, base: u64, limit: u64, bits: u32) {
    let _ = write!(out, "{prefix}:");
    let w = bits.div_ceil(4) as usize;
    if base <= limit || opts.verbose > 2 {
        let _ = write!(out, " {base:0w$x}-{limit:0w$x}");
    }
    if base <= limit {
        out.push_str(&size_suffix(limit - base + 1));
    } else {
        out.push_str(" [disabled]");
    }
    if bits != 0 {
        let _ = write!(out, " [{bits}-bit]");
    }
    out.push('\n');
}

fn show_bridge(out: &mut String, dev: &Device, opts: &Options) {
    let c = &dev.config;
    let b8 = |o| u32::from(c.byte(o).unwrap_or(0));
    let w16 = |o| u32::from(c.word(o).unwrap_or(0));
    let (pri, sec, sub, lat) = c.bridge_buses();
    let _ = writeln!(
        out,
        "\tBus: primary={pri:02x}, secondary={sec:02x}, subordinate={sub:02x}, sec-latency={lat}"
    );
    let (io_base, io_limit) = (b8(reg::IO_BASE), b8(reg::IO_LIMIT));
    let io_type = io_base & 0xf;
    if io_type != io_limit & 0xf || (io_type != 0 && io_type != 1) {
        let _ = writeln!(
            out,
            "\t!!! Unknown I/O range types {io_base:x}/{io_limit:x}"
        );
    } else {
        let mut base = (io_base & 0xf0) << 8;
        let mut limit = (io_limit & 0xf0) << 8;
        if io_type == 1 {
            base |= w16(reg::IO_BASE_UPPER) << 16;
            limit |= w16(reg::IO_LIMIT_UPPER) << 16;
        }
        let bits = if io_type == 1 { 32 } else { 16 };
        show_range(
            out,
            opts,
            "\tI/O behind bridge",
            base.into(),
            u64::from(limit.wrapping_add(0xfff)),
            bits,
        );
    }
    let (mem_base, mem_limit) = (w16(reg::MEM_BASE), w16(reg::MEM_LIMIT));
    if mem_base & 0xf != mem_limit & 0xf || mem_base & 0xf != 0 {
        let _ = writeln!(
            out,
            "\t!!! Unknown memory range types {mem_base:x}/{mem_limit:x}"
        );
    } else {
        let base = (mem_base & !0xf) << 16;
        let limit = (mem_limit & !0xf) << 16;
        show_range(
            out,
            opts,
            "\tMemory behind bridge",
            base.into(),
            u64::from(limit.wrapping_add(0xfffff)),
            32,
        );
    }
    let (pb, pl) = (w16(reg::PREF_BASE), w16(reg::PREF_LIMIT));
    let pt = pb & 0xf;
    if pt != pl & 0xf || (pt != 0 && pt != 1) {
        let _ = writeln!(
            out,
            "\t!!! Unknown prefetchable memory range types {pb:x}/{pl:x}"
        );
    } else {
        let mut base = u64::from(pb & !0xf) << 16;
        let mut limit = u64::from(pl & !0xf) << 16;
        if pt == 1 {
            base |= u64::from(c.dword(reg::PREF_BASE_UPPER).unwrap_or(0)) << 32;
            limit |= u64::from(c.dword(reg::PREF_LIMIT_UPPER).unwrap_or(0)) << 32;
        }
        let bits = if pt == 1 { 64 } else { 32 };
        show_range(
            out,
            opts,
            "\tPrefetchable memory behind bridge",
            base,
            limit.wrapping_add(0xfffff),
            bits,
        );
    }
    if opts.verbose > 1 {
        let s = c.word(reg::SEC_STATUS).unwrap_or(0);
        let _ = writeln!(
            out,
            "\tSecondary status: 66MHz{} FastB2B{} ParErr{} DEVSEL={} >TAbort{} <TAbort{} <MAbort{} <SERR{} <PERR{}",
            flag(s, st::MHZ66),
            flag(s, st::FAST_BACK),
            flag(s, st::PARITY),
            devsel(s),
            flag(s, st::SIG_TARGET_ABORT),
            flag(s, st::REC_TARGET_ABORT),
            flag(s, st::REC_MASTER_ABORT),
            flag(s, st::SIG_SYSTEM_ERROR),
            flag(s, st::DETECTED_PARITY),
        );
    }
    show_rom(out, dev, reg::ROM_BRIDGE, 2);
    if opts.verbose > 1 {
        let b = c.word(reg::BRIDGE_CONTROL).unwrap_or(0);
        let _ = writeln!(
            out,
            "\tBridgeCtl: Parity{} SERR{} NoISA{} VGA{} VGA16{} MAbort{} >Reset{} FastB2B{}",
            flag(b, 1),
            flag(b, 2),
            flag(b, 4),
            flag(b, 8),
            flag(b, 0x10),
            flag(b, 0x20),
            flag(b, 0x40),
            flag(b, 0x80),
        );
        let _ = writeln!(
            out,
            "\t\tPriDiscTmr{} SecDiscTmr{} DiscTmrStat{} DiscTmrSERREn{}",
            flag(b, 0x100),
            flag(b, 0x200),
            flag(b, 0x400),
            flag(b, 0x800),
        );
    }
}

fn show_cardbus(out: &mut String, dev: &Device, opts: &Options) {
    let c = &dev.config;
    let d32 = |o| c.dword(o).unwrap_or(0);
    let command = c.command();
    let brc = c.word(0x3e).unwrap_or(0);
    let verb = opts.verbose > 2;
    let _ = writeln!(
        out,
        "\tBus: primary={:02x}, secondary={:02x}, subordinate={:02x}, sec-latency={}",
        c.byte(0x18).unwrap_or(0),
        c.byte(0x19).unwrap_or(0),
        c.byte(0x1a).unwrap_or(0),
        c.byte(0x1b).unwrap_or(0)
    );
    for i in 0..2usize {
        let base = d32(0x1c + 8 * i);
        let limit = d32(0x20 + 8 * i).wrapping_add(0xfff);
        if base <= limit || verb {
            let _ = writeln!(
                out,
                "\tMemory window {i}: {base:08x}-{limit:08x}{}{}",
                if command & cmd::MEMORY != 0 {
                    ""
                } else {
                    " [disabled]"
                },
                if brc & (0x100 << i) != 0 {
                    " (prefetchable)"
                } else {
                    ""
                }
            );
        }
    }
    for i in 0..2usize {
        let mut base = d32(0x2c + 8 * i);
        let mut limit = d32(0x30 + 8 * i);
        if base & 1 == 0 {
            base &= 0xffff;
            limit &= 0xffff;
        }
        base &= !3;
        limit = (limit & !3).wrapping_add(3);
        if base <= limit || verb {
            let _ = writeln!(
                out,
                "\tI/O window {i}: {base:08x}-{limit:08x}{}",
                if command & cmd::IO != 0 {
                    ""
                } else {
                    " [disabled]"
                }
            );
        }
    }
    if c.word(0x16).unwrap_or(0) & st::SIG_SYSTEM_ERROR != 0 {
        out.push_str("\tSecondary status: SERR\n");
    }
    if opts.verbose > 1 {
        let _ = writeln!(
            out,
            "\tBridgeCtl: Parity{} SERR{} ISA{} VGA{} MAbort{} >Reset{} 16bInt{} PostWrite{}",
            flag(brc, 1),
            flag(brc, 2),
            flag(brc, 4),
            flag(brc, 8),
            flag(brc, 0x20),
            flag(brc, 0x40),
            flag(brc, 0x80),
            flag(brc, 0x400),
        );
    }
    if dev.cached() < 128 {
        out.push_str("\t<access denied to the rest>\n");
        return;
    }
    let exca = c.word(0x44).unwrap_or(0);
    if exca != 0 {
        let _ = writeln!(out, "\t16-bit legacy interface ports at {exca:04x}");
    }
}

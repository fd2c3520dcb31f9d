//! `Capabilities: [xx] …` lines: one title per capability, in lspci's
//! words, from the bounded walks of `crate::caps`.

use super::verbose::flag;
use super::{details, pcicaps, Device, Options};
use crate::ids::Names;
use pci::HeaderType;
use pci::VirtioCapRepr;
use pci::{cap_id, ext_cap_id, WalkError};
use std::fmt::Write;

/// Prints the capability list and, after a PCI Express or PCI-X
/// capability, the extended capability list.
pub(super) fn show_caps(out: &mut String, dev: &Device, opts: &Options, names: &Names<'_>) {
    let c = &dev.config;
    let mut can_have_ext = false;
    let mut pcie_type = None;
    for item in c.caps() {
        out.push_str("\tCapabilities: ");
        let cap = match item {
            Ok(cap) => cap,
            Err(WalkError::OutOfBounds { .. }) => {
                out.push_str("<access denied>\n");
                break;
            }
            Err(WalkError::Looped { offset }) => {
                let _ = writeln!(out, "[{offset:02x}] <chain looped>");
                break;
            }
            Err(WalkError::Broken { offset }) => {
                let _ = writeln!(out, "[{offset:02x}] <chain broken>");
                break;
            }
            Err(WalkError::IntoHeader { offset }) => {
                let _ = writeln!(out, "[{offset:02x}] <chain broken: points into the header>");
                break;
            }
        };
        let at = usize::from(cap.offset);
        let word = c.word(at + 2).unwrap_or(0);
        let _ = write!(out, "[{:02x}] ", cap.offset);
        match cap.id {
            cap_id::NULL => out.push_str("Null\n"),
            cap_id::PM => {
                let _ = writeln!(out, "Power Management version {}", word & 7);
                if opts.verbose >= 2 {
                    details::pm(out, c, at, word);
                }
            }
            cap_id::AGP => {
                let _ = writeln!(out, "AGP version {:x}.{:x}", (word >> 4) & 0xf, word & 0xf);
                if opts.verbose >= 2 {
                    pcicaps::agp(out, c, at, word);
                }
            }
            cap_id::VPD => {
                out.push_str("Vital Product Data\n");
                // lspci reads the VPD through the OS (sysfs `vpd`); a dump
                // has none, and pcibox does not read it.
                if opts.verbose >= 2 {
                    out.push_str("\t\tNot readable\n");
                }
            }
            cap_id::SLOT_ID => {
                let esr = word & 0xff;
                let _ = writeln!(
                    out,
                    "Slot ID: {} slots, First{}, chassis {:02x}",
                    esr & 0x1f,
                    flag(esr, 0x20),
                    word >> 8
                );
            }
            cap_id::MSI => {
                let _ = writeln!(
                    out,
                    "MSI: Enable{} Count={}/{} Maskable{} 64bit{}",
                    flag(word, 1),
                    1u32 << ((word >> 4) & 7),
                    1u32 << ((word >> 1) & 7),
                    flag(word, 1 << 8),
                    flag(word, 1 << 7)
                );
                if opts.verbose >= 2 {
                    details::msi(out, c, at, word);
                }
            }
            cap_id::CHSWP => out.push_str("CompactPCI hot-swap <?>\n"),
            cap_id::PCIX => {
                can_have_ext = true;
                match c.header_type() {
                    HeaderType::Normal => out.push_str("PCI-X non-bridge device\n"),
                    HeaderType::Bridge => out.push_str("PCI-X bridge device\n"),
                    _ => {}
                }
                if opts.verbose >= 2 {
                    pcicaps::pcix(out, c, at, word);
                }
            }
            cap_id::HT => super::ht::show(out, c, at, word, opts.verbose >= 2),
            cap_id::VENDOR => vendor_title(out, dev, opts, at, word),
            cap_id::DEBUG => {
                let _ = writeln!(
                    out,
                    "Debug port: BAR={} offset={:04x}",
                    word >> 13,
                    word & 0x1fff
                );
            }
            cap_id::CCRC => out.push_str("CompactPCI central resource control <?>\n"),
            cap_id::HOTPLUG => out.push_str("Hot-plug capable\n"),
            cap_id::SSVID => {
                let (sv, sd) = (c.word(at + 4).unwrap_or(0), c.word(at + 6).unwrap_or(0));
                let _ = writeln!(
                    out,
                    "Subsystem: {}",
                    names.subsystem(c.vendor_id(), c.device_id(), sv, sd)
                );
            }
            cap_id::AGP3 => out.push_str("AGP3 <?>\n"),
            cap_id::SECURE => out.push_str("Secure device <?>\n"),
            cap_id::EXP => {
                can_have_ext = true;
                pcie_type = Some(((word >> 4) & 0xf) as u8);
                express_title(out, opts, word);
                if opts.verbose >= 2 {
                    super::pcie::express(out, dev, at, word);
                }
            }
            cap_id::MSIX => {
                let _ = writeln!(
                    out,
                    "MSI-X: Enable{} Count={} Masked{}",
                    flag(word, 1 << 15),
                    (word & 0x7ff) + 1,
                    flag(word, 1 << 14)
                );
                if opts.verbose >= 2 {
                    details::msix(out, c, at);
                }
            }
            cap_id::SATA => {
                let _ = write!(out, "SATA HBA v{}.{}", (word >> 4) & 0xf, word & 0xf);
                if opts.verbose >= 2 {
                    pcicaps::sata_regs(out, c, at);
                }
                out.push('\n');
            }
            cap_id::AF => {
                out.push_str("PCI Advanced Features\n");
                if opts.verbose >= 2 {
                    pcicaps::af(out, c, at);
                }
            }
            cap_id::EA => pcicaps::ea(out, c, at, word, opts.verbose >= 2),
            id => {
                let _ = writeln!(out, "Capability ID {id:#x} [{word:04x}]");
            }
        }
    }
    if can_have_ext {
        show_ext_caps(out, dev, opts, pcie_type);
    }
}

fn express_title(out: &mut String, opts: &Options, word: u16) {
    out.push_str("Express ");
    if opts.verbose >= 2 {
        let _ = write!(out, "(v{}) ", word & 0xf);
    }
    let slot = flag(word, 1 << 8);
    match (word >> 4) & 0xf {
        0 => out.push_str("Endpoint"),
        1 => out.push_str("Legacy Endpoint"),
        4 => {
            let _ = write!(out, "Root Port (Slot{slot})");
        }
        5 => out.push_str("Upstream Port"),
        6 => {
            let _ = write!(out, "Downstream Port (Slot{slot})");
        }
        7 => out.push_str("PCI-Express to PCI/PCI-X Bridge"),
        8 => {
            let _ = write!(out, "PCI/PCI-X to PCI-Express Bridge (Slot{slot})");
        }
        9 => out.push_str("Root Complex Integrated Endpoint"),
        10 => out.push_str("Root Complex Event Collector"),
        t => {
            let _ = write!(out, "Unknown type {t}");
        }
    }
    let _ = writeln!(out, ", MSI {:02x}", (word >> 9) & 0x1f);
}

fn vendor_title(out: &mut String, dev: &Device, opts: &Options, at: usize, word: u16) {
    let c = &dev.config;
    out.push_str("Vendor Specific Information: ");
    if VirtioCapRepr::is_virtio(c.vendor_id(), c.device_id())
        && VirtioCapRepr::parse(c.as_bytes(), at).is_ok()
    {
        {
            let name = match word >> 8 {
                1 => "CommonCfg",
                2 => "Notify",
                3 => "ISR",
                4 => "DeviceCfg",
                _ => "<unknown>",
            };
            let _ = writeln!(out, "VirtIO: {name}");
            if opts.verbose >= 2 {
                details::virtio(out, c, at, word);
            }
            return;
        }
    }
    let _ = writeln!(out, "Len={:02x} <?>", word & 0xff);
}

/// Titles of extended capabilities whose line is a fixed text.
fn ext_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x00 => "Null",
        0x01 => "Advanced Error Reporting",
        0x02 | 0x09 => "Virtual Channel",
        0x04 => "Power Budgeting <?>",
        0x05 => "Root Complex Link",
        0x06 => "Root Complex Internal Link <?>",
        0x07 => "Root Complex Event Collector Endpoint Association",
        0x08 => "Multi-Function Virtual Channel <?>",
        0x0a => "Root Complex Register Block <?>",
        0x0d => "Access Control Services",
        0x0e => "Alternative Routing-ID Interpretation (ARI)",
        0x0f => "Address Translation Service (ATS)",
        0x10 => "Single Root I/O Virtualization (SR-IOV)",
        0x11 => "Multi-Root I/O Virtualization <?>",
        0x12 => "Multicast",
        0x13 => "Page Request Interface (PRI)",
        0x15 => "Physical Resizable BAR",
        0x16 => "Dynamic Power Allocation <?>",
        0x17 => "Transaction Processing Hints",
        0x18 => "Latency Tolerance Reporting",
        0x19 => "Secondary PCI Express",
        0x1a => "Protocol Multiplexing <?>",
        0x1b => "Process Address Space ID (PASID)",
        0x1c => "LN Requester <?>",
        0x1d => "Downstream Port Containment",
        0x1e => "L1 PM Substates",
        0x1f => "Precision Time Measurement",
        0x20 => "PCI Express over M_PHY <?>",
        0x21 => "FRS Queueing <?>",
        0x22 => "Readiness Time Reporting <?>",
        0x24 => "Virtual Resizable BAR",
        0x25 => "Data Link Feature <?>",
        0x26 => "Physical Layer 16.0 GT/s <?>",
        0x27 => "Lane Margining at the Receiver <?>",
        0x28 => "Hierarchy ID <?>",
        0x29 => "Native PCIe Enclosure Management <?>",
        0x2e => "Data Object Exchange",
        _ => return None,
    })
}

fn show_ext_caps(out: &mut String, dev: &Device, opts: &Options, pcie_type: Option<u8>) {
    let c = &dev.config;
    for item in c.ext_caps() {
        let cap = match item {
            Ok(cap) => cap,
            Err(WalkError::Looped { offset }) => {
                let _ = write!(out, "\tCapabilities: [{offset:03x}");
                if opts.verbose > 1 {
                    let v = c.byte(usize::from(offset) + 2).unwrap_or(0) & 0xf;
                    let _ = write!(out, " v{v}");
                }
                out.push_str("] <chain looped>\n");
                break;
            }
            Err(e) => {
                let _ = writeln!(out, "\tCapabilities: <{e}>");
                break;
            }
        };
        let at = usize::from(cap.offset);
        let _ = write!(out, "\tCapabilities: [{:03x}", cap.offset);
        if opts.verbose > 1 {
            let _ = write!(out, " v{}", cap.version);
        }
        out.push_str("] ");
        match cap.id {
            ext_cap_id::AER => {
                out.push_str("Advanced Error Reporting\n");
                if opts.verbose >= 2 {
                    details::aer(out, c, at, pcie_type);
                }
            }
            ext_cap_id::DSN => match (c.dword(at + 4), c.dword(at + 8)) {
                (Some(lo), Some(hi)) => {
                    let s = pci::DsnRepr {
                        serial: u64::from(lo) | (u64::from(hi) << 32),
                    };
                    let _ = writeln!(out, "Device Serial Number {}", s.to_dashed());
                }
                _ => out.push_str("Device Serial Number <unreadable>\n"),
            },
            ext_cap_id::VENDOR => match c.dword(at + 4) {
                Some(h) => {
                    let _ = writeln!(
                        out,
                        "Vendor Specific Information: ID={:04x} Rev={} Len={:03x} <?>",
                        h & 0xffff,
                        (h >> 16) & 0xf,
                        h >> 20
                    );
                }
                None => out.push_str("Vendor Specific Information: <unreadable>\n"),
            },
            ext_cap_id::DVSEC => match (c.dword(at + 4), c.word(at + 8)) {
                (Some(h1), Some(h2)) => {
                    let vendor = h1 & 0xffff;
                    let len = h1 >> 20;
                    // CXL (vendor 1e98) is decoded further with -vv.
                    let cxl = vendor == 0x1e98 && len >= 16;
                    let _ = writeln!(
                        out,
                        "Designated Vendor-Specific: Vendor={vendor:04x} ID={h2:04x} Rev={} Len={len}{}",
                        (h1 >> 16) & 0xf,
                        if cxl { ": CXL" } else { " <?>" }
                    );
                    if cxl && opts.verbose >= 2 {
                        super::cxl::details(out, c, at, h2, (h1 >> 16) & 0xf, len);
                    }
                }
                _ => out.push_str("Designated Vendor-Specific: <unreadable>\n"),
            },
            id => match ext_name(id) {
                Some(name) => {
                    out.push_str(name);
                    out.push('\n');
                    if opts.verbose >= 2 {
                        super::ecaps::details(out, c, at, id, pcie_type, opts.verbose);
                    }
                }
                None => {
                    let _ = writeln!(out, "Extended Capability ID {id:#x}");
                }
            },
        }
    }
}

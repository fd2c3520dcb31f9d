//! `--json`: pcibox's own view of a function, for scripts. IDs, register
//! values, offsets and addresses are lowercase hex strings as lspci prints
//! them (`"8086"`, class `"0200"`, capability `"10"` at `"40"`); names
//! are pci.ids' names alone (no `[vvvv:dddd]`), `null` when unknown; what
//! the OS adds (`driver`, `irq`, `numa_node`, `iommu_group`, …) is `null`
//! when not known, e.g. for dumps. `-v` adds the header, BARs and
//! capabilities, `-x…` the config bytes. `docs/lspci.schema.json` is the
//! schema.

use super::{capnames, hex_len, subsystem_ids, Device};
use crate::ids::Names;
use pci::{cap_id, ext_cap_id};
use pci::{
    AerRepr, Bar, DsnRepr, HeaderType, MemKind, MsiRepr, MsixRepr, PcieRepr, PmRepr, VirtioCapRepr,
};
use serde::Serialize;

/// What the view includes, as lspci's flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonOptions {
    /// `-v` count: header registers, BARs and capabilities when > 0.
    pub verbose: u8,
    /// `-x` count: the config bytes (64, 256 with `-xxx`, 4096 with
    /// `-xxxx`, as far as they were read).
    pub hex: u8,
}

/// A capability body, parsed when pcibox knows its layout.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parsed {
    /// Power Management.
    Pm(PmRepr),
    /// MSI.
    Msi(MsiRepr),
    /// MSI-X.
    Msix(MsixRepr),
    /// PCI Express.
    Pcie(PcieRepr),
    /// Virtio PCI capability.
    Virtio(VirtioCapRepr),
    /// Advanced Error Reporting.
    Aer(AerRepr),
    /// Device Serial Number.
    Dsn(DsnRepr),
    /// The capability is malformed.
    Error(String),
}

/// One capability.
#[derive(Debug, Serialize)]
pub struct CapView {
    /// Offset in config space (`"40"`, `"100"`).
    pub offset: String,
    /// Capability ID (`"11"`; extended: `"0001"`).
    pub id: String,
    /// The ID's name, if assigned.
    pub name: Option<&'static str>,
    /// Extended capability version (extended capabilities only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// The parsed body, when pcibox knows the layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parsed: Option<Parsed>,
}

/// Subsystem IDs and names.
#[derive(Debug, Serialize)]
pub struct Subsystem {
    /// Subsystem vendor ID.
    pub vendor_id: String,
    /// Subsystem ID.
    pub device_id: String,
    /// The subsystem vendor's name.
    pub vendor_name: Option<String>,
    /// The subsystem's name.
    pub device_name: Option<String>,
}

/// One implemented BAR, as the device decodes it.
#[derive(Debug, Serialize)]
pub struct BarView {
    /// Slot, 0–5.
    pub index: usize,
    /// `io` or `memory`.
    pub kind: &'static str,
    /// Base address (an upper half included).
    pub address: String,
    /// Memory decoding: `32-bit`, `64-bit`, `low-1M`, `type 3` or
    /// `broken-64-bit` (a 64-bit BAR in the last slot); `null` for I/O.
    pub width: Option<&'static str>,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// Size in bytes, when the OS says (sysfs `resource`).
    pub size: Option<u64>,
}

/// The expansion ROM register.
#[derive(Debug, Serialize)]
pub struct RomView {
    /// Base address.
    pub address: String,
    /// The enable bit.
    pub enabled: bool,
    /// Size in bytes, when the OS says.
    pub size: Option<u64>,
}

/// A bridge's bus numbers.
#[derive(Debug, Serialize)]
pub struct BusesView {
    /// The bus the bridge is on.
    pub primary: String,
    /// The bus right behind it.
    pub secondary: String,
    /// The highest bus behind it.
    pub subordinate: String,
}

/// `-v`: the header's registers and the capability lists.
#[derive(Debug, Serialize)]
pub struct Details {
    /// `normal`, `bridge`, `cardbus` or `unknown`.
    pub header_type: &'static str,
    /// Multi-function device.
    pub multifunction: bool,
    /// Command register.
    pub command: String,
    /// Status register.
    pub status: String,
    /// Interrupt pin, `A`–`D`, or `null`.
    pub interrupt_pin: Option<String>,
    /// Interrupt line register (the IRQ as the card has it).
    pub interrupt_line: u8,
    /// Config bytes readable (64, 256 or 4096).
    pub config_size: usize,
    /// Bus numbers (bridges only).
    pub buses: Option<BusesView>,
    /// Implemented BARs.
    pub bars: Vec<BarView>,
    /// Expansion ROM, if the register is set.
    pub rom: Option<RomView>,
    /// Capability list.
    pub capabilities: Vec<CapView>,
    /// Why the capability walk stopped early, if it did.
    pub capabilities_stop: Option<String>,
    /// Extended capability list (4096-byte config spaces).
    pub extended_capabilities: Vec<CapView>,
    /// Why the extended walk stopped early, if it did.
    pub extended_capabilities_stop: Option<String>,
}

/// The view of one function.
#[derive(Debug, Serialize)]
pub struct View {
    /// `dddd:bb:dd.f`.
    pub slot: String,
    /// Vendor ID.
    pub vendor_id: String,
    /// Device ID.
    pub device_id: String,
    /// Class and subclass (`"0200"`).
    pub class: String,
    /// Programming interface.
    pub prog_if: String,
    /// Revision.
    pub revision: String,
    /// The vendor's name.
    pub vendor_name: Option<String>,
    /// The device's name.
    pub device_name: Option<String>,
    /// The subclass's name, else the base class's.
    pub class_name: Option<String>,
    /// The programming interface's name.
    pub prog_if_name: Option<String>,
    /// Subsystem, when the device has one (not 0 or ffff).
    pub subsystem: Option<Subsystem>,
    /// Bound kernel driver.
    pub driver: Option<String>,
    /// IRQ the kernel assigned.
    pub irq: Option<u32>,
    /// NUMA node.
    pub numa_node: Option<i32>,
    /// IOMMU group.
    pub iommu_group: Option<String>,
    /// Physical slot name.
    pub physical_slot: Option<String>,
    /// The firmware's label for the device.
    pub label: Option<String>,
    /// `-v` details.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
    /// `-x…`: the config bytes as one hex string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

fn wrap<T>(r: Result<T, pci::Error>, f: fn(T) -> Parsed) -> Option<Parsed> {
    Some(match r {
        Ok(v) => f(v),
        Err(e) => Parsed::Error(e.to_string()),
    })
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl View {
    /// Builds the view of `dev`, names from `names`.
    pub fn new(dev: &Device, names: &Names<'_>, opts: &JsonOptions) -> Self {
        let c = &dev.config;
        let (vendor, device) = (c.vendor_id(), c.device_id());
        let own = |s: Option<&str>| s.map(str::to_string);
        let subsystem = subsystem_ids(dev)
            .filter(|&(sv, _)| sv != 0 && sv != 0xffff)
            .map(|(sv, sd)| Subsystem {
                vendor_id: format!("{sv:04x}"),
                device_id: format!("{sd:04x}"),
                vendor_name: own(names.vendor_name(sv)),
                device_name: own(names.subsystem_name(vendor, device, sv, sd)),
            });
        let os = &dev.os;
        View {
            slot: dev.addr.to_string(),
            vendor_id: format!("{vendor:04x}"),
            device_id: format!("{device:04x}"),
            class: format!("{:04x}", c.class()),
            prog_if: format!("{:02x}", c.prog_if()),
            revision: format!("{:02x}", c.revision()),
            vendor_name: own(names.vendor_name(vendor)),
            device_name: own(names.device_name(vendor, device)),
            class_name: own(names.class_name(c.class())),
            prog_if_name: names.prog_if(c.class(), c.prog_if()),
            subsystem,
            driver: os.driver.clone(),
            irq: os.irq,
            numa_node: os.numa_node.filter(|&n| n != -1),
            iommu_group: os.iommu_group.clone(),
            physical_slot: os.phy_slot.clone(),
            label: os.label.as_ref().map(|l| l.trim_end().to_string()),
            details: (opts.verbose > 0).then(|| details(dev)),
            config: (opts.hex > 0).then(|| hex_string(&c.as_bytes()[..hex_len(dev, opts.hex)])),
        }
    }
}

fn details(dev: &Device) -> Details {
    let c = &dev.config;
    let b = c.as_bytes();
    let mut capabilities = Vec::new();
    let mut capabilities_stop = None;
    for item in c.caps() {
        match item {
            Ok(cap) => {
                let at = usize::from(cap.offset);
                let parsed = match cap.id {
                    cap_id::PM => wrap(PmRepr::parse(b, at), Parsed::Pm),
                    cap_id::MSI => wrap(MsiRepr::parse(b, at), Parsed::Msi),
                    cap_id::MSIX => wrap(MsixRepr::parse(b, at), Parsed::Msix),
                    cap_id::EXP => wrap(PcieRepr::parse(b, at), Parsed::Pcie),
                    cap_id::VENDOR if VirtioCapRepr::is_virtio(c.vendor_id(), c.device_id()) => {
                        wrap(VirtioCapRepr::parse(b, at), Parsed::Virtio)
                    }
                    _ => None,
                };
                capabilities.push(CapView {
                    offset: format!("{:02x}", cap.offset),
                    id: format!("{:02x}", cap.id),
                    name: capnames::standard(cap.id),
                    version: None,
                    parsed,
                });
            }
            Err(e) => capabilities_stop = Some(e.to_string()),
        }
    }
    let mut extended_capabilities = Vec::new();
    let mut extended_capabilities_stop = None;
    for item in c.ext_caps() {
        match item {
            Ok(cap) => {
                let at = usize::from(cap.offset);
                let parsed = match cap.id {
                    ext_cap_id::AER => wrap(AerRepr::parse(b, at), Parsed::Aer),
                    ext_cap_id::DSN => wrap(DsnRepr::parse(b, at), Parsed::Dsn),
                    _ => None,
                };
                extended_capabilities.push(CapView {
                    offset: format!("{:03x}", cap.offset),
                    id: format!("{:04x}", cap.id),
                    name: capnames::extended(cap.id),
                    version: Some(cap.version),
                    parsed,
                });
            }
            Err(e) => extended_capabilities_stop = Some(e.to_string()),
        }
    }
    let res = dev.os.resources.as_ref();
    let size = |i: usize| res.map(|r| r[i].size()).filter(|&s| s != 0);
    let bars = c
        .bars()
        .filter_map(|(index, bar)| {
            let (kind, address, width, prefetchable) = match bar {
                Bar::Unused | Bar::Upper => return None,
                Bar::Io { port } => ("io", format!("{port:04x}"), None, false),
                Bar::Memory {
                    addr,
                    mem,
                    prefetchable,
                } => {
                    let width = match mem {
                        MemKind::Bits32 => "32-bit",
                        MemKind::Bits64 => "64-bit",
                        MemKind::Below1M => "low-1M",
                        MemKind::Reserved => "type 3",
                    };
                    ("memory", format!("{addr:08x}"), Some(width), prefetchable)
                }
                Bar::Broken64 { addr, prefetchable } => (
                    "memory",
                    format!("{addr:08x}"),
                    Some("broken-64-bit"),
                    prefetchable,
                ),
            };
            Some(BarView {
                index,
                kind,
                address,
                width,
                prefetchable,
                size: size(index),
            })
        })
        .collect();
    let rom = c
        .rom_raw()
        .filter(|&r| r != 0 && r != u32::MAX)
        .map(|r| RomView {
            address: format!("{:08x}", r & !0x7ff),
            enabled: r & 1 != 0,
            size: size(6),
        });
    let header_type = match c.header_type() {
        HeaderType::Normal => "normal",
        HeaderType::Bridge => "bridge",
        HeaderType::CardBus => "cardbus",
        HeaderType::Unknown(_) => "unknown",
    };
    let buses = matches!(c.header_type(), HeaderType::Bridge | HeaderType::CardBus).then(|| {
        let (p, s, u, _) = c.bridge_buses();
        BusesView {
            primary: format!("{p:02x}"),
            secondary: format!("{s:02x}"),
            subordinate: format!("{u:02x}"),
        }
    });
    let pin = c.interrupt_pin();
    Details {
        header_type,
        multifunction: c.multifunction(),
        command: format!("{:04x}", c.command()),
        status: format!("{:04x}", c.status()),
        interrupt_pin: (1..=4)
            .contains(&pin)
            .then(|| char::from(b'A' + pin - 1).to_string()),
        interrupt_line: c.interrupt_line(),
        config_size: c.len(),
        buses,
        bars,
        rom,
        capabilities,
        capabilities_stop,
        extended_capabilities,
        extended_capabilities_stop,
    }
}

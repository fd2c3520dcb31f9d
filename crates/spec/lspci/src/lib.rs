//! pciutils' `lspci` as a library, apart from the `pci` spec crate that every
//! driver links: pci.ids names ([`ids`]), the `lspci -x…` dump format
//! ([`dump`]) and the rendering below. Text and bytes in, text out; no
//! I/O, no `unsafe`.
//!
//! lspci-compatible rendering of one function: the terse line (`-n`,
//! `-nn`, `-D`, `-P`), the hex dumps (`-x`, `-xxx`, `-xxxx`), the verbose
//! listing (`-v`) and the machine-readable forms (`-m`, `-mm`), following
//! pciutils' output byte for byte where the config space is well formed;
//! `tree` builds the bus topology (`-t`, `-P`).

#![forbid(unsafe_code)]

mod capnames;
mod caps;
mod cxl;
mod details;
mod ecaps;
mod ht;
pub mod json;
mod machine;
mod pcicaps;
mod pcie;
mod regs;
pub mod tree;
mod verbose;

pub mod dump;
pub mod fuzzing;
pub mod ids;

use crate::ids::{fit, Names};
use pci::HeaderType;
use pci::{Address, ConfigSpace, Error};
use std::fmt::Write;

/// Output options, as lspci's flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `-v` count.
    pub verbose: u8,
    /// `-x` count (1 = 64 bytes, 3 = 256, 4 = 4096).
    pub hex: u8,
    /// Show the domain (`-D`, or forced when any device has a non-zero
    /// domain).
    pub domains: bool,
    /// `-D` itself: with `-m` the domain shows only then or when it is not
    /// zero.
    pub domains_requested: bool,
    /// `-k`: kernel driver lines without `-v`.
    pub kernel: bool,
    /// `-m` count (1 = the old format, 2 = `-mm`).
    pub machine: u8,
    /// `-P` count: the bridge path before the slot (1 = `dd.f` steps, 2 =
    /// `bb:dd.f` steps); needs [`Device::bridge_path`].
    pub path: u8,
}

/// One resource line of sysfs' `resource` file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Resource {
    /// First address.
    pub start: u64,
    /// Last address (0 with `start` 0 when unused).
    pub end: u64,
    /// Linux `IORESOURCE_*` flags.
    pub flags: u64,
}

impl Resource {
    /// Size in bytes, 0 when unused.
    pub fn size(&self) -> u64 {
        if self.end == 0 && self.start == 0 {
            0
        } else {
            self.end.wrapping_sub(self.start).wrapping_add(1)
        }
    }
}

/// What the operating system adds to a config space (sysfs); all empty for
/// dumps, where lspci derives these from config space.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OsInfo {
    /// The IRQ the kernel assigned (`irq` file).
    pub irq: Option<u32>,
    /// The six BARs' and the ROM's resources (`resource` file).
    pub resources: Option<[Resource; 7]>,
    /// Bound driver.
    pub driver: Option<String>,
    /// NUMA node (absent or -1 when none).
    pub numa_node: Option<i32>,
    /// IOMMU group number.
    pub iommu_group: Option<String>,
    /// The physical slot the device sits in (`slots/NAME/address`).
    pub phy_slot: Option<String>,
    /// The firmware's label (`label` file, as read: with its newline).
    pub label: Option<String>,
    /// The device-tree node (`of_node` link, resolved).
    pub dt_node: Option<String>,
    /// The parent device in the sysfs hierarchy, when it is a PCI function
    /// of the same listing.
    pub parent: Option<Address>,
}

/// A function to render: its address, the config bytes that could be read,
/// and what the OS says about it.
#[derive(Debug, Clone)]
pub struct Device {
    /// Address.
    pub addr: Address,
    /// Config space, 64, 256 or 4096 bytes.
    pub config: ConfigSpace<Vec<u8>>,
    /// OS information (empty for dumps).
    pub os: OsInfo,
    /// The bridges above the function, topmost first (for `-P`; see
    /// [`tree::Topology::bridge_path`]).
    pub bridge_path: Vec<Address>,
}

impl Device {
    /// A device from however many config bytes could be read: cut down to
    /// the largest valid config-space length; fewer than 64 is an error.
    pub fn new(addr: Address, mut bytes: Vec<u8>, os: OsInfo) -> Result<Self, Error> {
        let n =
            ConfigSpace::<&[u8]>::usable_len(bytes.len()).ok_or(Error::BadLength(bytes.len()))?;
        bytes.truncate(n);
        Ok(Device {
            addr,
            config: ConfigSpace::new_checked(bytes)?,
            os,
            bridge_path: Vec::new(),
        })
    }

    /// The IRQ lspci shows: the OS's, else the interrupt line register.
    fn irq(&self) -> u32 {
        self.os
            .irq
            .unwrap_or_else(|| self.config.interrupt_line().into())
    }

    /// The header bytes lspci has "cached": 128 for CardBus bridges, else
    /// 64.
    fn cached(&self) -> usize {
        if self.config.header_type() == HeaderType::CardBus && self.config.len() >= 128 {
            128
        } else {
            64
        }
    }
}

/// Renders `dev` as lspci does with `opts`, names from `names`.
pub fn render(dev: &Device, opts: &Options, names: &Names<'_>) -> String {
    let mut out = String::new();
    if opts.machine > 0 {
        machine::show_machine(&mut out, dev, opts, names);
    } else {
        if opts.verbose > 0 {
            verbose::show_verbose(&mut out, dev, opts, names);
        } else {
            show_terse(&mut out, dev, opts, names);
        }
        if opts.verbose > 0 || opts.kernel {
            if let Some(drv) = &dev.os.driver {
                let _ = writeln!(out, "\tKernel driver in use: {drv}");
            }
        }
    }
    if opts.hex > 0 {
        show_hex(&mut out, dev, opts.hex);
    }
    if opts.verbose > 0 || opts.hex > 0 {
        out.push('\n');
    }
    out
}

/// The slot name: `bb:dd.f`, with `dddd:` in front when domains are shown
/// (with `-m`: when `-D` was given or the domain is not zero) and, with
/// `-P`, the bridges above it (`bb:dd.f/dd.f/…`).
pub fn slot_name(dev: &Device, opts: &Options) -> String {
    let addr = &dev.addr;
    let domain = if opts.machine > 0 {
        addr.domain != 0 || opts.domains_requested
    } else {
        opts.domains
    };
    let mut s = if domain {
        format!("{:04x}:", addr.domain)
    } else {
        String::new()
    };
    let bdf = |a: &Address| format!("{:02x}:{:02x}.{}", a.bus, a.device, a.function);
    match dev.bridge_path.split_first() {
        Some((top, rest)) if opts.path > 0 => {
            s.push_str(&bdf(top));
            for a in rest.iter().chain(std::iter::once(addr)) {
                if opts.path > 1 {
                    let _ = write!(s, "/{}", bdf(a));
                } else {
                    let _ = write!(s, "/{:02x}.{}", a.device, a.function);
                }
            }
        }
        _ => s.push_str(&bdf(addr)),
    }
    s
}

/// The subsystem IDs lspci shows (type 0 header, CardBus, or a bridge's
/// SSVID capability).
pub(crate) fn subsystem_ids(dev: &Device) -> Option<(u16, u16)> {
    let c = &dev.config;
    match c.header_type() {
        HeaderType::Normal => c.subsystem(),
        HeaderType::CardBus if dev.cached() >= 128 => c.subsystem(),
        HeaderType::Bridge => {
            let at = usize::from(c.find_cap(pci::cap_id::SSVID)?);
            Some((c.word(at + 4)?, c.word(at + 6)?))
        }
        _ => None,
    }
}

fn show_terse(out: &mut String, dev: &Device, opts: &Options, names: &Names<'_>) {
    let c = &dev.config;
    // lspci formats names into buffers of 128 bytes.
    let _ = write!(
        out,
        "{} {}: {}",
        slot_name(dev, opts),
        fit(names.class(c.class()), 128),
        fit(names.vendor_device(c.vendor_id(), c.device_id()), 128)
    );
    if c.revision() != 0 {
        let _ = write!(out, " (rev {:02x})", c.revision());
    }
    if opts.verbose > 0 {
        let pif = c.prog_if();
        let name = names.prog_if(c.class(), pif);
        if pif != 0 || name.is_some() {
            let _ = write!(out, " (prog-if {pif:02x}");
            if let Some(n) = name {
                let _ = write!(out, " [{}]", fit(n, 128));
            }
            out.push(')');
        }
    }
    out.push('\n');
    if opts.verbose > 0 || opts.kernel {
        if let Some(label) = &dev.os.label {
            // lspci adds no line break: the label file's own ends the line.
            let _ = write!(out, "\tDeviceName: {label}");
        }
        if let Some((sv, sd)) = subsystem_ids(dev) {
            if sv != 0 && sv != 0xffff {
                let _ = writeln!(
                    out,
                    "\tSubsystem: {}",
                    fit(names.subsystem(c.vendor_id(), c.device_id(), sv, sd), 256)
                );
            }
        }
    }
}

/// How many config bytes `-x` (level 1), `-xxx` (3) or `-xxxx` (4) shows.
fn hex_len(dev: &Device, level: u8) -> usize {
    let len = dev.config.len();
    if level >= 4 && len >= 4096 {
        4096
    } else if level >= 3 && len >= 256 {
        256
    } else {
        dev.cached()
    }
}

fn show_hex(out: &mut String, dev: &Device, level: u8) {
    let cnt = hex_len(dev, level);
    for (i, b) in dev.config.as_bytes()[..cnt].iter().enumerate() {
        if i % 16 == 0 {
            let _ = write!(out, "{i:02x}:");
        }
        let _ = write!(out, " {b:02x}");
        if i % 16 == 15 {
            out.push('\n');
        }
    }
}

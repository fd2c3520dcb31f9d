//! lspci-compatible rendering of one function: the terse line (`-n`,
//! `-nn`, `-D`), the hex dumps (`-x`, `-xxx`, `-xxxx`) and the verbose
//! listing (`-v`), following pciutils' output byte for byte where the
//! config space is well formed.

mod caps;
mod cxl;
mod details;
mod ecaps;
mod ht;
pub mod json;
mod pcicaps;
mod pcie;
mod regs;
mod verbose;

use crate::config::HeaderType;
use crate::ids::Names;
use crate::{Address, ConfigSpace, Error};
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
    /// `-k`: kernel driver lines without `-v`.
    pub kernel: bool,
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
    if opts.hex > 0 {
        show_hex(&mut out, dev, opts.hex);
    }
    if opts.verbose > 0 || opts.hex > 0 {
        out.push('\n');
    }
    out
}

/// The slot name: `bb:dd.f`, with `dddd:` in front when domains are shown.
pub fn slot_name(addr: &Address, domains: bool) -> String {
    let dom = if domains {
        format!("{:04x}:", addr.domain)
    } else {
        String::new()
    };
    format!(
        "{dom}{:02x}:{:02x}.{}",
        addr.bus, addr.device, addr.function
    )
}

/// The subsystem IDs lspci shows (type 0 header, CardBus, or a bridge's
/// SSVID capability).
fn subsystem_ids(dev: &Device) -> Option<(u16, u16)> {
    let c = &dev.config;
    match c.header_type() {
        HeaderType::Normal => c.subsystem(),
        HeaderType::CardBus if dev.cached() >= 128 => c.subsystem(),
        HeaderType::Bridge => {
            let at = usize::from(c.find_cap(crate::cap_id::SSVID)?);
            Some((c.word(at + 4)?, c.word(at + 6)?))
        }
        _ => None,
    }
}

fn show_terse(out: &mut String, dev: &Device, opts: &Options, names: &Names<'_>) {
    let c = &dev.config;
    let _ = write!(
        out,
        "{} {}: {}",
        slot_name(&dev.addr, opts.domains),
        names.class(c.class()),
        names.vendor_device(c.vendor_id(), c.device_id())
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
                let _ = write!(out, " [{n}]");
            }
            out.push(')');
        }
    }
    out.push('\n');
    if opts.verbose > 0 || opts.kernel {
        if let Some((sv, sd)) = subsystem_ids(dev) {
            if sv != 0 && sv != 0xffff {
                let _ = writeln!(
                    out,
                    "\tSubsystem: {}",
                    names.subsystem(c.vendor_id(), c.device_id(), sv, sd)
                );
            }
        }
    }
}

fn show_hex(out: &mut String, dev: &Device, level: u8) {
    let len = dev.config.len();
    let cnt = if level >= 4 && len >= 4096 {
        4096
    } else if level >= 3 && len >= 256 {
        256
    } else {
        dev.cached()
    };
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

//! `-m` and `-mm`: the machine-readable forms. Without `-v`, one line per
//! function of shell-quoted fields (slot, class, vendor, device, `-rREV`,
//! `-pPROGIF`, subsystem vendor and device); with `-v`, `Tag:\tvalue`
//! records separated by blank lines (`-m` opens a record with `Device:`,
//! `-mm` with `Slot:`).

use super::{slot_name, subsystem_ids, Device, Options};
use crate::ids::{fit, Names};
use std::fmt::Write;

/// lspci's name buffers for `-m` hold 128 bytes.
const NAME_BUF: usize = 128;

/// ` "text"`, with `"` and `\` escaped by a backslash.
fn quoted(out: &mut String, text: &str) {
    out.push_str(" \"");
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

pub(super) fn show_machine(out: &mut String, dev: &Device, opts: &Options, names: &Names<'_>) {
    let c = &dev.config;
    let (vendor, device) = (c.vendor_id(), c.device_id());
    let subsystem = subsystem_ids(dev).filter(|&(sv, _)| sv != 0 && sv != 0xffff);
    let class = fit(names.class(c.class()), NAME_BUF);
    let vname = fit(names.vendor(vendor), NAME_BUF);
    let dname = fit(names.device(vendor, device), NAME_BUF);
    let sub_names = subsystem.map(|(sv, sd)| {
        (
            fit(names.subsystem_vendor(sv), NAME_BUF),
            fit(names.subsystem_device(vendor, device, sv, sd), NAME_BUF),
        )
    });
    if opts.verbose == 0 {
        out.push_str(&slot_name(dev, opts));
        quoted(out, &class);
        quoted(out, &vname);
        quoted(out, &dname);
        if c.revision() != 0 {
            let _ = write!(out, " -r{:02x}", c.revision());
        }
        let _ = write!(out, " -p{:02x}", c.prog_if());
        match &sub_names {
            Some((sv, sd)) => {
                quoted(out, sv);
                quoted(out, sd);
            }
            None => out.push_str(" \"\" \"\""),
        }
        out.push('\n');
        return;
    }
    let first = if opts.machine >= 2 { "Slot" } else { "Device" };
    let _ = writeln!(out, "{first}:\t{}", slot_name(dev, opts));
    let _ = writeln!(out, "Class:\t{class}");
    let _ = writeln!(out, "Vendor:\t{vname}");
    let _ = writeln!(out, "Device:\t{dname}");
    if let Some((sv, sd)) = &sub_names {
        let _ = writeln!(out, "SVendor:\t{sv}");
        let _ = writeln!(out, "SDevice:\t{sd}");
    }
    let os = &dev.os;
    if let Some(slot) = &os.phy_slot {
        let _ = writeln!(out, "PhySlot:\t{slot}");
    }
    if c.revision() != 0 {
        let _ = writeln!(out, "Rev:\t{:02x}", c.revision());
    }
    let _ = writeln!(out, "ProgIf:\t{:02x}", c.prog_if());
    if opts.kernel {
        if let Some(drv) = &os.driver {
            let _ = writeln!(out, "Driver:\t{drv}");
        }
    }
    if let Some(n) = os.numa_node.filter(|&n| n != -1) {
        let _ = writeln!(out, "NUMANode:\t{n}");
    }
    if let Some(node) = &os.dt_node {
        let _ = writeln!(out, "DTNode:\t{node}");
    }
    if let Some(g) = &os.iommu_group {
        let _ = writeln!(out, "IOMMUGroup:\t{g}");
    }
}

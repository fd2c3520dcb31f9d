//! Reading functions from sysfs (`/sys/bus/pci/devices/DDDD:BB:DD.F/`):
//! the `config` bytes the kernel lets us read (64 without privileges, else
//! 256 or 4096), and what lspci also takes from sysfs: `irq`, `resource`,
//! the bound `driver`, `numa_node`, `iommu_group`, `label`, `of_node`, the
//! parent device (where the function's directory sits) and the physical
//! slots (`/sys/bus/pci/slots/*/address`).

use super::LspciError;
use pci::Address;
use pci_lspci::{Device, OsInfo, Resource};
use std::path::{Path, PathBuf};

/// Lists and reads every function under `root` (`/sys/bus/pci` or what
/// `-O sysfs.path=` names). Functions whose config cannot be read are
/// reported on stderr (one line each, as lspci) and counted.
pub fn scan(root: &Path) -> Result<(Vec<Device>, usize), LspciError> {
    let dir = root.join("devices");
    let entries = std::fs::read_dir(&dir).map_err(|source| LspciError::Sysfs {
        path: dir.clone(),
        source,
    })?;
    let mut devices = Vec::new();
    let mut failed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(addr) = name.to_str().and_then(|n| n.parse::<Address>().ok()) else {
            continue;
        };
        let dir = entry.path();
        let config = match std::fs::read(dir.join("config")) {
            Ok(c) if c.len() >= 64 => c,
            Ok(c) => {
                eprintln!(
                    "pcibox: lspci: {addr}: only {} bytes of config space readable",
                    c.len()
                );
                failed += 1;
                continue;
            }
            Err(e) => {
                eprintln!("pcibox: lspci: {addr}: cannot read config space: {e}");
                failed += 1;
                continue;
            }
        };
        let os = OsInfo {
            irq: read_trimmed(&dir.join("irq")).and_then(|s| s.parse().ok()),
            resources: read_trimmed(&dir.join("resource")).and_then(|s| parse_resources(&s)),
            driver: link_name(&dir.join("driver")),
            numa_node: read_trimmed(&dir.join("numa_node")).and_then(|s| s.parse().ok()),
            iommu_group: link_name(&dir.join("iommu_group")),
            label: std::fs::read(dir.join("label"))
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            dt_node: std::fs::canonicalize(dir.join("of_node"))
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            ..OsInfo::default()
        };
        match Device::new(addr, config, os) {
            Ok(d) => devices.push(d),
            Err(e) => {
                eprintln!("pcibox: lspci: {addr}: {e}");
                failed += 1;
            }
        }
    }
    find_parents(root, &mut devices);
    find_slots(root, &mut devices);
    Ok((devices, failed))
}

/// The directory of function `a` under `root`.
fn function_dir(root: &Path, a: &Address) -> PathBuf {
    root.join("devices").join(a.to_string())
}

/// Each function's parent: the function whose directory holds its own
/// (after resolving links), if that is one of `devices`.
fn find_parents(root: &Path, devices: &mut [Device]) {
    let addrs: Vec<Address> = devices.iter().map(|d| d.addr).collect();
    for d in devices.iter_mut() {
        let Ok(up) = std::fs::canonicalize(function_dir(root, &d.addr).join("..")) else {
            continue;
        };
        let Some(p) = up
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<Address>().ok())
        else {
            continue;
        };
        let same = std::fs::canonicalize(function_dir(root, &p)).is_ok_and(|c| c == up);
        if addrs.contains(&p) && same {
            d.os.parent = Some(p);
        }
    }
}

/// Physical slots: `slots/NAME/address` holds `dddd:bb:dd` of the device in
/// the slot (every function of it).
fn find_slots(root: &Path, devices: &mut [Device]) {
    let Ok(entries) = std::fs::read_dir(root.join("slots")) else {
        return;
    };
    // Directory order, as lspci: the first slot naming a device wins.
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Some(text) = read_trimmed(&e.path().join("address")) else {
            continue;
        };
        let mut parts = text.split(':').map(|p| u32::from_str_radix(p, 16).ok());
        let (Some(Some(dom)), Some(Some(bus)), Some(Some(dev))) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        for d in devices.iter_mut() {
            let a = d.addr;
            let here = a.domain == dom && u32::from(a.bus) == bus && u32::from(a.device) == dev;
            if here && d.os.phy_slot.is_none() {
                d.os.phy_slot = Some(name.clone());
            }
        }
    }
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The last component of where link `p` leads (as lspci: resolved, so a
/// dangling link counts as none).
fn link_name(p: &Path) -> Option<String> {
    let target = std::fs::canonicalize(p).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// Parses the `resource` file: lines of `0xSTART 0xEND 0xFLAGS`; the first
/// seven are the six BARs and the ROM.
fn parse_resources(text: &str) -> Option<[Resource; 7]> {
    let mut res = [Resource::default(); 7];
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    for (slot, line) in res.iter_mut().zip(text.lines()) {
        let mut f = line.split_whitespace();
        *slot = Resource {
            start: hex(f.next()?)?,
            end: hex(f.next()?)?,
            flags: hex(f.next()?)?,
        };
    }
    Some(res)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resources() {
        let r = parse_resources(
            "0x0000004000080000 0x00000040000fffff 0x0000000000140204\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n",
        )
        .unwrap();
        assert_eq!(r[0].start, 0x40_0008_0000);
        assert_eq!(r[0].size(), 512 * 1024);
        assert_eq!(r[1].size(), 0);
        assert!(parse_resources("junk\n").is_none());
    }
}

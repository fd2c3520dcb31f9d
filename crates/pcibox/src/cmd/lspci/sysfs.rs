//! Reading functions for lspci through the one sysfs reader
//! ([`pcibox_sysfs::Sysfs`], rooted at `/sys/bus/pci` or what
//! `-O sysfs.path=` names): the `config` bytes the kernel lets us read (64
//! without privileges, else 256 or 4096), and what lspci also takes from
//! sysfs: `irq`, `resource`, the bound `driver`, `numa_node`,
//! `iommu_group`, `label`, `of_node`, the parent device (where the
//! function's directory sits) and the physical slots. The `resource` file's
//! format and the mapping into [`OsInfo`] are lspci's and stay here.

use super::LspciError;
use pci_lspci::{Device, OsInfo, Resource};
use pcibox_sysfs::{Address, Sysfs};

/// Lists and reads every function in `sysfs`. Functions whose config
/// cannot be read are reported on stderr (one line each, as lspci) and
/// counted.
pub fn scan(sysfs: &Sysfs) -> Result<(Vec<Device>, usize), LspciError> {
    let mut devices = Vec::new();
    let mut failed = 0;
    for addr in sysfs.functions()? {
        let config = match sysfs.config(addr) {
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
                eprintln!(
                    "pcibox: lspci: {addr}: cannot read config space: {}",
                    cause(&e)
                );
                failed += 1;
                continue;
            }
        };
        match Device::new(addr, config, os_info(sysfs, addr)) {
            Ok(d) => devices.push(d),
            Err(e) => {
                eprintln!("pcibox: lspci: {addr}: {e}");
                failed += 1;
            }
        }
    }
    find_parents(sysfs, &mut devices);
    find_slots(sysfs, &mut devices);
    Ok((devices, failed))
}

/// What the OS says of the error (its cause), for a one-line report.
fn cause(e: &pcibox_sysfs::Error) -> String {
    std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string)
}

/// The function's attributes lspci shows; what is absent or unreadable is
/// left out.
fn os_info(sysfs: &Sysfs, addr: Address) -> OsInfo {
    let text = |name| sysfs.text(addr, name).ok();
    OsInfo {
        irq: text("irq").and_then(|s| s.parse().ok()),
        resources: text("resource").and_then(|s| parse_resources(&s)),
        driver: sysfs.driver(addr).ok().flatten(),
        numa_node: text("numa_node").and_then(|s| s.parse().ok()),
        iommu_group: sysfs
            .iommu_group(addr)
            .ok()
            .flatten()
            .map(|g| g.to_string()),
        label: sysfs
            .read(addr, "label")
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        dt_node: sysfs
            .link_target(addr, "of_node")
            .ok()
            .flatten()
            .map(|p| p.to_string_lossy().into_owned()),
        ..OsInfo::default()
    }
}

/// Each function's parent, if that is one of `devices`.
fn find_parents(sysfs: &Sysfs, devices: &mut [Device]) {
    let addrs: Vec<Address> = devices.iter().map(|d| d.addr).collect();
    for d in devices.iter_mut() {
        d.os.parent = sysfs.parent(d.addr).filter(|p| addrs.contains(p));
    }
}

/// Physical slots: the first slot naming a device (every function of it)
/// wins, as in lspci.
fn find_slots(sysfs: &Sysfs, devices: &mut [Device]) {
    for slot in sysfs.slots() {
        for d in devices.iter_mut() {
            if slot.holds(d.addr) && d.os.phy_slot.is_none() {
                d.os.phy_slot = Some(slot.name.clone());
            }
        }
    }
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

//! Reading functions from sysfs (`/sys/bus/pci/devices/DDDD:BB:DD.F/`):
//! the `config` bytes the kernel lets us read (64 without privileges, else
//! 256 or 4096), and what lspci also takes from sysfs: `irq`, `resource`,
//! the bound `driver`, `numa_node` and `iommu_group`.

use super::LspciError;
use pci::lspci::{Device, OsInfo, Resource};
use pci::Address;
use std::path::Path;

/// Lists and reads every function. Functions whose config cannot be read
/// are reported on stderr (one line each, as lspci) and counted.
pub fn scan(root: &Path) -> Result<(Vec<Device>, usize), LspciError> {
    let entries = std::fs::read_dir(root).map_err(|source| LspciError::Sysfs {
        path: root.to_path_buf(),
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
        };
        match Device::new(addr, config, os) {
            Ok(d) => devices.push(d),
            Err(e) => {
                eprintln!("pcibox: lspci: {addr}: {e}");
                failed += 1;
            }
        }
    }
    Ok((devices, failed))
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn link_name(p: &Path) -> Option<String> {
    let target = std::fs::read_link(p).ok()?;
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

//! Fake sysfs trees for comparing with lspci on more than this machine's
//! devices: the functions of a dump laid out as the kernel lays them out
//! (`devices/pciDDDD:BB/…/DDDD:BB:DD.F/`, nested under the bridge whose
//! secondary bus they are on, linked from `bus/pci/devices/`), with the
//! attribute files lspci reads. pciutils' lspci reads such a tree with
//! `-A linux-sysfs -O sysfs.path=ROOT/bus/pci`, pcibox with
//! `-O sysfs.path=ROOT/bus/pci`.
//!
//! What each function gets depends on its index `i` in address order, so
//! that every kind of entry occurs: `irq` 0 for every fourth; `numa_node`
//! 0, -1 or absent; an IOMMU group for every other; a driver for every
//! third; a `label` on the second, an `of_node` on the third; a physical
//! slot for every fourth (and slots lspci skips: one without a device
//! number, one without an address); `resource` lines for the BARs and the
//! ROM (sizes made up), and on every fifth type 0 function without a BAR
//! 5, a resource the device does not decode (lspci's `[virtual]`).
//! `revision` and the subsystem files are left out: both programs then
//! read config space. Bridge windows (the resource lines after the ROM)
//! are left out too: pcibox decodes the bridge registers, as lspci does
//! without them.

use pci::{Bar, HeaderType, MemKind};
use pci_lspci::{Device, OsInfo};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// A fake sysfs tree on disk.
pub struct FakeSysfs {
    /// The directory holding `bus/pci`, `devices`, `kernel`, ….
    pub root: PathBuf,
}

/// `to` relative to directory `from` (both absolute, no `..`).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut p = PathBuf::new();
    for _ in common..a.len() {
        p.push("..");
    }
    for c in &b[common..] {
        p.push(c);
    }
    p
}

fn link(target: &Path, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(relative(at.parent().unwrap(), target), at).unwrap();
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The `resource` file: BARs and ROM with made-up sizes.
fn resources(d: &Device, virtual_bar5: bool) -> String {
    let c = &d.config;
    let mut lines = [(0u64, 0u64, 0u64); 7];
    for (i, bar) in c.bars() {
        lines[i] = match bar {
            Bar::Io { port } => (port.into(), u64::from(port) + 0x1f, 0x40101),
            Bar::Memory {
                addr,
                mem,
                prefetchable,
            } if addr != 0 => {
                let mut flags = 0x40200;
                if prefetchable {
                    flags |= 0x3000;
                }
                if mem == MemKind::Bits64 {
                    flags |= 0x10_0000;
                }
                (addr, addr + 0x3fff, flags)
            }
            _ => continue,
        };
    }
    if let Some(rom) = c
        .rom_raw()
        .map(|r| u64::from(r & !0x7ff))
        .filter(|&r| r != 0)
    {
        lines[6] = (rom, rom + 0xffff, 0x46200);
    }
    if virtual_bar5 && lines[5].0 == 0 {
        lines[5] = (0xd000_0000, 0xd000_0fff, 0x40200);
    }
    lines.iter().fold(String::new(), |mut s, (a, b, f)| {
        let _ = writeln!(s, "0x{a:016x} 0x{b:016x} 0x{f:016x}");
        s
    })
}

impl FakeSysfs {
    /// Lays out the functions of `dump` under a fresh directory `name` in
    /// the test's temporary directory. `reparent` moves functions under
    /// others' directories (as the kernel does for devices behind a VMD
    /// endpoint, whose parent is no bridge).
    pub fn build(name: &str, dump: &Path, reparent: &[(&str, &str)]) -> FakeSysfs {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&root);
        let parsed = pci_lspci::dump::parse(&std::fs::read(dump).unwrap()).unwrap();
        let mut devs: Vec<Device> = parsed
            .into_iter()
            .map(|d| Device::new(d.addr, d.config, OsInfo::default()).unwrap())
            .collect();
        devs.sort_by_key(|d| d.addr);
        // Where each function's directory goes.
        let mut dirs: Vec<Option<PathBuf>> = vec![None; devs.len()];
        fn dir_of(
            i: usize,
            devs: &[Device],
            dirs: &mut Vec<Option<PathBuf>>,
            root: &Path,
            reparent: &[(&str, &str)],
            depth: usize,
        ) -> PathBuf {
            if let Some(d) = &dirs[i] {
                return d.clone();
            }
            let a = devs[i].addr;
            let by_name = reparent
                .iter()
                .find(|(c, _)| *c == a.to_string())
                .and_then(|(_, p)| devs.iter().position(|d| d.addr.to_string() == *p));
            let bridge = devs.iter().position(|b| {
                let c = &b.config;
                let is_bridge = matches!(c.header_type(), HeaderType::Bridge | HeaderType::CardBus)
                    && c.class() >> 8 == 6;
                // As enumeration leaves them: behind a bridge, higher bus
                // numbers.
                is_bridge
                    && b.addr.domain == a.domain
                    && c.byte(0x19) == Some(a.bus)
                    && a.bus > b.addr.bus
            });
            let parent = match by_name.or(bridge) {
                Some(p) if depth < devs.len() => dir_of(p, devs, dirs, root, reparent, depth + 1),
                _ => root
                    .join("devices")
                    .join(format!("pci{:04x}:{:02x}", a.domain, a.bus)),
            };
            let d = parent.join(a.to_string());
            dirs[i] = Some(d.clone());
            d
        }
        for i in 0..devs.len() {
            dir_of(i, &devs, &mut dirs, &root, reparent, 0);
        }
        let pci = root.join("bus/pci");
        for (i, (d, dir)) in devs.iter().zip(&dirs).enumerate() {
            let dir = dir.as_ref().unwrap();
            let c = &d.config;
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("config"), c.as_bytes()).unwrap();
            write(&dir.join("vendor"), &format!("0x{:04x}\n", c.vendor_id()));
            write(&dir.join("device"), &format!("0x{:04x}\n", c.device_id()));
            let class = u32::from(c.class()) << 8 | u32::from(c.prog_if());
            write(&dir.join("class"), &format!("0x{class:06x}\n"));
            let irq = if i % 4 == 3 { 0 } else { 16 + i };
            write(&dir.join("irq"), &format!("{irq}\n"));
            let virtual_bar5 = i % 5 == 0 && c.header_type() == HeaderType::Normal;
            write(&dir.join("resource"), &resources(d, virtual_bar5));
            match i % 3 {
                0 => write(&dir.join("numa_node"), "0\n"),
                1 => write(&dir.join("numa_node"), "-1\n"),
                _ => {}
            }
            if i % 2 == 0 {
                let group = root.join(format!("kernel/iommu_groups/{}", i / 2));
                std::fs::create_dir_all(&group).unwrap();
                link(&group, &dir.join("iommu_group"));
            }
            if i % 3 == 0 {
                let drv = pci.join(format!("drivers/drv{}", i % 4));
                std::fs::create_dir_all(&drv).unwrap();
                link(&drv, &dir.join("driver"));
            }
            if i == 1 {
                write(&dir.join("label"), &format!(" Onboard \"LAN\" {i}\n"));
            }
            if i == 2 {
                let node = root.join(format!("firmware/devicetree/base/pcie@0/dev@{i}"));
                std::fs::create_dir_all(&node).unwrap();
                link(&node, &dir.join("of_node"));
            }
            if i % 4 == 1 {
                let a = d.addr;
                let slot = format!("{:04x}:{:02x}:{:02x}\n", a.domain, a.bus, a.device);
                write(&pci.join(format!("slots/{}-{i}/address", 10 + i)), &slot);
            }
            link(dir, &pci.join("devices").join(d.addr.to_string()));
        }
        write(&pci.join("slots/empty/address"), "0000:00\n");
        std::fs::create_dir_all(pci.join("slots/noaddress")).unwrap();
        FakeSysfs { root }
    }

    /// `sysfs.path=…` for `-O`.
    pub fn param(&self) -> String {
        format!("sysfs.path={}", self.root.join("bus/pci").display())
    }

    /// Runs pcibox and lspci on this tree with `args` and requires the same
    /// output; returns it.
    pub fn same(&self, args: &[&str]) -> String {
        let param = self.param();
        let mut ours = vec!["-O", &param];
        ours.extend_from_slice(args);
        let mut theirs = vec!["-A", "linux-sysfs", "-O", &param];
        theirs.extend_from_slice(args);
        super::same_as(&ours, &theirs)
    }
}

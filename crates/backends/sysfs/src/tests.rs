//! The primitives on a fake tree laid out as Linux lays sysfs out: function
//! directories nested under `devices/pci0000:00/` and their bridges, linked
//! from `bus/pci/devices/`; groups in `kernel/iommu_groups/N/devices/`.

#![allow(clippy::unwrap_used)]

use super::*;
use std::os::unix::fs::symlink;

/// A fresh directory for test `name`; removed again by `Tree::drop`.
struct Tree {
    top: PathBuf,
    sysfs: Sysfs,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.top);
    }
}

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

fn put(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Host bridge 00:00.0 and root port 00:01.0 under `pci0000:00`, endpoint
/// 01:00.0 (nvme, group 3 with the root port, which has no driver) behind
/// the port; 00:02.0 on vfio-pci alone in group 4; a dangling driver link
/// on 00:03.0; a non-PCI name in `devices/`; slots.
fn tree(name: &str) -> Tree {
    let top = std::env::temp_dir().join(format!("pcibox-sysfs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    let host = top.join("devices/pci0000:00");
    let dirs = [
        ("0000:00:00.0", host.join("0000:00:00.0")),
        ("0000:00:01.0", host.join("0000:00:01.0")),
        ("0000:01:00.0", host.join("0000:00:01.0/0000:01:00.0")),
        ("0000:00:02.0", host.join("0000:00:02.0")),
        ("0000:00:03.0", host.join("0000:00:03.0")),
    ];
    let pci = top.join("bus/pci");
    std::fs::create_dir_all(pci.join("devices")).unwrap();
    for (name, dir) in &dirs {
        std::fs::create_dir_all(dir).unwrap();
        symlink(dir, pci.join("devices").join(name)).unwrap();
    }
    for d in ["nvme", "vfio-pci"] {
        std::fs::create_dir_all(pci.join("drivers").join(d)).unwrap();
    }
    std::fs::create_dir_all(pci.join("devices/not-a-function")).unwrap();
    let ep = &dirs[2].1;
    put(&ep.join("vendor"), "0x1b36\n");
    put(&ep.join("class"), "0x010802\n");
    put(&ep.join("device"), "nonsense\n");
    put(&ep.join("config"), "\u{1}\u{2}\u{3}");
    put(&ep.join("label"), " Onboard \"LAN\"\n");
    symlink(pci.join("drivers/nvme"), ep.join("driver")).unwrap();
    symlink(pci.join("drivers/vfio-pci"), dirs[3].1.join("driver")).unwrap();
    symlink(pci.join("drivers/gone"), dirs[4].1.join("driver")).unwrap();
    for (group, members) in [(3, &[1usize, 2][..]), (4, &[3][..])] {
        let g = top.join(format!("kernel/iommu_groups/{group}"));
        std::fs::create_dir_all(g.join("devices")).unwrap();
        for &m in members {
            let (name, dir) = &dirs[m];
            symlink(&g, dir.join("iommu_group")).unwrap();
            symlink(dir, g.join("devices").join(name)).unwrap();
        }
    }
    let odd = top.join("kernel/iommu_groups/odd");
    std::fs::create_dir_all(&odd).unwrap();
    symlink(&odd, dirs[0].1.join("iommu_group")).unwrap();
    put(&pci.join("slots/7/address"), "0000:01:00\n");
    put(&pci.join("slots/empty/address"), "0000:02\n");
    std::fs::create_dir_all(pci.join("slots/noaddress")).unwrap();
    put(&pci.join("slots/.hidden/address"), "0000:00:02\n");
    Tree {
        top,
        sysfs: Sysfs::new(pci),
    }
}

#[test]
fn default_root_is_the_kernels() {
    assert_eq!(Sysfs::default().root(), Path::new("/sys/bus/pci"));
    assert_eq!(
        Sysfs::default().device_dir(addr("0:4.0")),
        Path::new("/sys/bus/pci/devices/0000:00:04.0")
    );
}

#[test]
fn lists_functions_in_address_order() {
    let t = tree("list");
    let got: Vec<String> = t
        .sysfs
        .functions()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "0000:00:00.0",
            "0000:00:01.0",
            "0000:00:02.0",
            "0000:00:03.0",
            "0000:01:00.0"
        ]
    );
    let none = Sysfs::new(t.top.join("nowhere"));
    let e = none.functions().unwrap_err();
    assert!(matches!(e, Error::List { .. }), "{e:?}");
    assert!(e.to_string().starts_with("cannot list "), "{e}");
    assert!(e.to_string().ends_with("nowhere/devices"), "{e}");
}

#[test]
fn attributes() {
    let t = tree("attrs");
    let s = &t.sysfs;
    let ep = addr("01:00.0");
    assert_eq!(s.config(ep).unwrap(), [1, 2, 3]);
    // Bytes as they are; text trimmed.
    assert_eq!(s.read(ep, "label").unwrap(), b" Onboard \"LAN\"\n");
    assert_eq!(s.text(ep, "label").unwrap(), "Onboard \"LAN\"");
    assert_eq!(s.hex(ep, "vendor").unwrap(), 0x1b36);
    assert_eq!(s.hex(ep, "class").unwrap(), 0x010802);
    let e = s.hex(ep, "device").unwrap_err();
    assert!(matches!(e, Error::NotHex { .. }), "{e:?}");
    assert!(
        e.to_string().ends_with("device: \"nonsense\" is not hex"),
        "{e}"
    );
    let e = s.text(ep, "irq").unwrap_err();
    assert!(matches!(e, Error::Io { op: "read", .. }), "{e:?}");
    let shown = e.to_string();
    assert!(shown.starts_with("0000:01:00.0: read /"), "{shown}");
    assert!(shown.ends_with("/0000:01:00.0/irq failed"), "{shown}");
}

#[test]
fn driver_links() {
    let t = tree("driver");
    let s = &t.sysfs;
    assert_eq!(s.driver(addr("01:00.0")).unwrap().as_deref(), Some("nvme"));
    assert_eq!(
        s.driver(addr("00:02.0")).unwrap().as_deref(),
        Some("vfio-pci")
    );
    // No link, a dangling link: no driver. No function: an error.
    assert_eq!(s.driver(addr("00:01.0")).unwrap(), None);
    assert_eq!(s.driver(addr("00:03.0")).unwrap(), None);
    let e = s.driver(addr("00:1f.0")).unwrap_err();
    assert!(matches!(e, Error::NoDevice { .. }), "{e:?}");
    assert_eq!(e.to_string(), "0000:00:1f.0: no such PCI device");
    assert_eq!(
        s.link_target(addr("01:00.0"), "driver").unwrap(),
        Some(std::fs::canonicalize(s.driver_dir("nvme")).unwrap())
    );
}

#[test]
fn iommu_groups_and_members() {
    let t = tree("groups");
    let s = &t.sysfs;
    assert_eq!(s.iommu_group(addr("01:00.0")).unwrap(), Some(3));
    assert_eq!(s.iommu_group(addr("00:01.0")).unwrap(), Some(3));
    assert_eq!(s.iommu_group(addr("00:02.0")).unwrap(), Some(4));
    assert_eq!(s.iommu_group(addr("00:03.0")).unwrap(), None);
    assert_eq!(
        s.iommu_group(addr("00:00.0")).unwrap(),
        None,
        "not a number"
    );
    assert!(matches!(
        s.iommu_group(addr("00:1f.0")),
        Err(Error::NoDevice { .. })
    ));
    let three = vec![
        ("0000:00:01.0".to_string(), None),
        ("0000:01:00.0".to_string(), Some("nvme".to_string())),
    ];
    assert_eq!(s.group_members(addr("01:00.0")), three);
    assert_eq!(s.group_members(addr("00:01.0")), three);
    assert_eq!(
        s.group_members(addr("00:02.0")),
        vec![("0000:00:02.0".to_string(), Some("vfio-pci".to_string()))]
    );
    assert!(s.group_members(addr("00:03.0")).is_empty());
    assert!(s.group_members(addr("00:1f.0")).is_empty());
}

#[test]
fn parents() {
    let t = tree("parents");
    let s = &t.sysfs;
    assert_eq!(s.parent(addr("01:00.0")), Some(addr("00:01.0")));
    assert_eq!(s.parent(addr("00:01.0")), None, "under the host bridge");
    assert_eq!(s.parent(addr("00:1f.0")), None);
    // A parent directory named like a function but not the one listed.
    std::fs::remove_file(s.device_dir(addr("00:01.0"))).unwrap();
    std::fs::create_dir(s.device_dir(addr("00:01.0"))).unwrap();
    assert_eq!(s.parent(addr("01:00.0")), None);
}

#[test]
fn slots() {
    let t = tree("slots");
    let slots = t.sysfs.slots();
    assert_eq!(
        slots,
        vec![Slot {
            name: "7".into(),
            domain: 0,
            bus: 1,
            device: 0
        }]
    );
    assert!(slots[0].holds(addr("01:00.0")));
    assert!(slots[0].holds(addr("01:00.3")));
    assert!(!slots[0].holds(addr("00:01.0")));
    assert!(Sysfs::new(t.top.join("nowhere")).slots().is_empty());
}

#[test]
fn writes() {
    let t = tree("writes");
    let s = &t.sysfs;
    let ep = addr("01:00.0");
    let f = s.device_dir(ep).join("driver_override");
    s.write(ep, &f, "vfio-pci").unwrap();
    assert_eq!(s.text(ep, "driver_override").unwrap(), "vfio-pci");
    let bad = s.driver_dir("absent").join("bind");
    let e = s.write(ep, &bad, "0000:01:00.0").unwrap_err();
    assert!(matches!(e, Error::Io { op: "write", .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("0000:01:00.0: write {} failed", bad.display())
    );
    assert!(std::error::Error::source(&e).is_some());
}

//! sysfs: which driver a device has, its IOMMU group, and claiming a
//! device for vfio-pci (and giving it back).
//!
//! Claim: remember the current driver in a state file, set
//! `driver_override` to `vfio-pci`, unbind from the current driver, ask
//! `drivers_probe` to bind. Release: unbind from vfio-pci, clear
//! `driver_override`, re-probe, and make sure the remembered driver has it
//! again. Either undoes its own steps if a later one fails.

use crate::error::{Error, Result};
use crate::Bdf;
use std::path::{Path, PathBuf};

/// The driver name VFIO needs.
pub const VFIO_PCI: &str = "vfio-pci";

/// Where sysfs and the claim records live (tests point these elsewhere).
#[derive(Debug, Clone)]
pub struct Sysfs {
    /// Usually `/sys`.
    pub root: PathBuf,
    /// Directory for claim records (previous drivers), usually
    /// `/run/pcibox/claimed`.
    pub state_dir: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs {
            root: PathBuf::from("/sys"),
            state_dir: std::env::var_os("PCIBOX_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/run/pcibox/claimed")),
        }
    }
}

/// What `claim` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The device was already bound to vfio-pci; nothing changed.
    Already,
    /// Bound to vfio-pci; it had this driver before (None: no driver).
    Bound {
        /// The previous driver.
        previous: Option<String>,
    },
}

/// What `release` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// The driver the device has now (None: no driver).
    pub driver: Option<String>,
}

impl Sysfs {
    /// The device's sysfs directory.
    pub fn device_dir(&self, bdf: Bdf) -> PathBuf {
        self.root.join("bus/pci/devices").join(bdf.to_string())
    }

    fn sysfs_err(bdf: Bdf, op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Sysfs {
            bdf,
            op,
            path,
            source,
        }
    }

    /// Fails with `NoDevice` unless the device exists.
    pub fn check_exists(&self, bdf: Bdf) -> Result<()> {
        if self.device_dir(bdf).is_dir() {
            Ok(())
        } else {
            Err(Error::NoDevice { bdf })
        }
    }

    /// The device's current driver, if bound.
    pub fn driver(&self, bdf: Bdf) -> Result<Option<String>> {
        self.check_exists(bdf)?;
        let link = self.device_dir(bdf).join("driver");
        match std::fs::read_link(&link) {
            Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::sysfs_err(bdf, "readlink", &link)(e)),
        }
    }

    /// The device's IOMMU group number.
    pub fn iommu_group(&self, bdf: Bdf) -> Result<u32> {
        self.check_exists(bdf)?;
        let link = self.device_dir(bdf).join("iommu_group");
        let target = std::fs::read_link(&link).map_err(|_| Error::NoIommuGroup { bdf })?;
        target
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .ok_or(Error::NoIommuGroup { bdf })
    }

    /// The devices in group `group`, each with its driver, as
    /// `BDF (driver)` strings.
    pub fn group_members(&self, group: u32) -> Vec<(String, Option<String>)> {
        let dir = self
            .root
            .join("kernel/iommu_groups")
            .join(group.to_string())
            .join("devices");
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let driver = std::fs::read_link(e.path().join("driver"))
                    .ok()
                    .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
                out.push((name, driver));
            }
        }
        out.sort();
        out
    }

    /// The other members of `bdf`'s group that make it not viable: bound to
    /// a driver other than vfio-pci (pcieport/pci-stub are allowed by the
    /// kernel and not listed).
    pub fn group_blockers(&self, bdf: Bdf, group: u32) -> Vec<String> {
        let me = bdf.to_string();
        self.group_members(group)
            .into_iter()
            .filter(|(name, _)| *name != me)
            .filter_map(|(name, drv)| match drv.as_deref() {
                None | Some(VFIO_PCI) | Some("pci-stub") | Some("pcieport") => None,
                Some(d) => Some(format!("{name} is bound to {d}")),
            })
            .collect()
    }

    fn write(&self, bdf: Bdf, op: &'static str, path: &Path, value: &str) -> Result<()> {
        std::fs::write(path, value).map_err(Self::sysfs_err(bdf, op, path))
    }

    fn record(&self, bdf: Bdf) -> PathBuf {
        self.state_dir.join(bdf.to_string())
    }

    /// Binds the device to vfio-pci, remembering its current driver.
    pub fn claim(&self, bdf: Bdf) -> Result<Claimed> {
        let previous = self.driver(bdf)?;
        if previous.as_deref() == Some(VFIO_PCI) {
            return Ok(Claimed::Already);
        }
        if !self.root.join("bus/pci/drivers").join(VFIO_PCI).is_dir() {
            return Err(Error::Claim {
                bdf,
                what: "the vfio-pci driver is not loaded (modprobe vfio-pci)".into(),
            });
        }
        std::fs::create_dir_all(&self.state_dir).map_err(Self::sysfs_err(
            bdf,
            "mkdir",
            &self.state_dir,
        ))?;
        let record = self.record(bdf);
        self.write(bdf, "write", &record, previous.as_deref().unwrap_or(""))?;
        let dev = self.device_dir(bdf);
        let result = (|| {
            self.write(bdf, "write", &dev.join("driver_override"), VFIO_PCI)?;
            if let Some(d) = &previous {
                let unbind = self.root.join("bus/pci/drivers").join(d).join("unbind");
                self.write(bdf, "write", &unbind, &bdf.to_string())?;
            }
            self.write(
                bdf,
                "write",
                &self.root.join("bus/pci/drivers_probe"),
                &bdf.to_string(),
            )?;
            match self.driver(bdf)? {
                Some(d) if d == VFIO_PCI => Ok(()),
                other => Err(Error::Claim {
                    bdf,
                    what: format!(
                        "after probing, the device is bound to {}, not vfio-pci",
                        other.as_deref().unwrap_or("no driver")
                    ),
                }),
            }
        })();
        match result {
            Ok(()) => Ok(Claimed::Bound { previous }),
            Err(e) => {
                // Undo: clear the override, give the device back.
                let _ = self.write(bdf, "write", &dev.join("driver_override"), "\n");
                if self.driver(bdf).ok().flatten().is_none() {
                    let _ = self.rebind(bdf, previous.as_deref());
                }
                let _ = std::fs::remove_file(&record);
                Err(e)
            }
        }
    }

    fn rebind(&self, bdf: Bdf, driver: Option<&str>) -> Result<()> {
        let probe = self.root.join("bus/pci/drivers_probe");
        self.write(bdf, "write", &probe, &bdf.to_string())?;
        if let Some(d) = driver {
            if self.driver(bdf)?.as_deref() != Some(d) {
                let bind = self.root.join("bus/pci/drivers").join(d).join("bind");
                self.write(bdf, "write", &bind, &bdf.to_string())?;
            }
        }
        Ok(())
    }

    /// Unbinds the device from vfio-pci and gives it back to the driver it
    /// had before `claim` (or whichever driver the kernel picks if there is
    /// no record). The device must not be open.
    pub fn release(&self, bdf: Bdf) -> Result<Released> {
        let now = self.driver(bdf)?;
        if now.as_deref() != Some(VFIO_PCI) {
            return Err(Error::NotClaimed { bdf, driver: now });
        }
        let record = self.record(bdf);
        let previous = std::fs::read_to_string(&record)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let dev = self.device_dir(bdf);
        let unbind = self
            .root
            .join("bus/pci/drivers")
            .join(VFIO_PCI)
            .join("unbind");
        self.write(bdf, "write", &unbind, &bdf.to_string())?;
        self.write(bdf, "write", &dev.join("driver_override"), "\n")?;
        self.rebind(bdf, previous.as_deref())?;
        let driver = self.driver(bdf)?;
        let _ = std::fs::remove_file(&record);
        if previous.is_some() && driver != previous {
            return Err(Error::Claim {
                bdf,
                what: format!(
                    "released, but bound to {} instead of {}",
                    driver.as_deref().unwrap_or("no driver"),
                    previous.as_deref().unwrap_or("")
                ),
            });
        }
        Ok(Released { driver })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tree() -> (PathBuf, Sysfs) {
        let root = std::env::temp_dir().join(format!(
            "pcibox-sysfs-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let dev = root.join("bus/pci/devices/0000:00:04.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(root.join("bus/pci/drivers/nvme")).unwrap();
        std::fs::create_dir_all(root.join("kernel/iommu_groups/3/devices")).unwrap();
        std::os::unix::fs::symlink(root.join("bus/pci/drivers/nvme"), dev.join("driver")).unwrap();
        std::os::unix::fs::symlink(root.join("kernel/iommu_groups/3"), dev.join("iommu_group"))
            .unwrap();
        std::os::unix::fs::symlink(
            &dev,
            root.join("kernel/iommu_groups/3/devices/0000:00:04.0"),
        )
        .unwrap();
        let s = Sysfs {
            root: root.clone(),
            state_dir: root.join("state"),
        };
        (root, s)
    }

    #[test]
    fn driver_group_and_members() {
        let (root, s) = tree();
        let bdf: Bdf = "00:04.0".parse().unwrap();
        assert_eq!(s.driver(bdf).unwrap().as_deref(), Some("nvme"));
        assert_eq!(s.iommu_group(bdf).unwrap(), 3);
        assert!(s.group_blockers(bdf, 3).is_empty());
        let other = root.join("bus/pci/devices/0000:00:04.1");
        std::fs::create_dir_all(&other).unwrap();
        std::os::unix::fs::symlink(root.join("bus/pci/drivers/nvme"), other.join("driver"))
            .unwrap();
        std::os::unix::fs::symlink(
            &other,
            root.join("kernel/iommu_groups/3/devices/0000:00:04.1"),
        )
        .unwrap();
        assert_eq!(
            s.group_blockers(bdf, 3),
            vec!["0000:00:04.1 is bound to nvme".to_string()]
        );
        let missing: Bdf = "00:1f.0".parse().unwrap();
        assert!(matches!(s.driver(missing), Err(Error::NoDevice { .. })));
        assert!(matches!(
            s.iommu_group(missing),
            Err(Error::NoDevice { .. })
        ));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn claim_without_vfio_pci_is_refused_and_changes_nothing() {
        let (root, s) = tree();
        let bdf: Bdf = "00:04.0".parse().unwrap();
        let e = s.claim(bdf).unwrap_err();
        assert!(
            e.to_string().contains("vfio-pci driver is not loaded"),
            "{e}"
        );
        assert!(!root
            .join("bus/pci/devices/0000:00:04.0/driver_override")
            .exists());
        assert!(matches!(s.release(bdf), Err(Error::NotClaimed { .. })));
        std::fs::remove_dir_all(root).unwrap();
    }
}

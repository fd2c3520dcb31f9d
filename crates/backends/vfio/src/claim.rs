//! Claiming a device for vfio-pci and giving it back: writes on top of the
//! one sysfs reader ([`pcibox_sysfs::Sysfs`]), plus the records of which
//! driver each claimed device had.
//!
//! Claim: remember the current driver in a state file, set
//! `driver_override` to `vfio-pci`, unbind from the current driver, ask
//! `drivers_probe` to bind. Release: unbind from vfio-pci, clear
//! `driver_override`, re-probe, and make sure the remembered driver has it
//! again. Either undoes its own steps if a later one fails.

use crate::error::{Error, Result};
use crate::Bdf;
use pcibox_sysfs::Sysfs;
use std::path::{Path, PathBuf};

/// The driver name VFIO needs.
pub const VFIO_PCI: &str = "vfio-pci";

/// The sysfs tree devices are claimed in and where the claim records live
/// (tests point both elsewhere).
#[derive(Debug, Clone)]
pub struct Claims {
    /// Usually `/sys/bus/pci`.
    pub sysfs: Sysfs,
    /// Directory for claim records (previous drivers), usually
    /// `/run/pcibox/claimed`.
    pub state_dir: PathBuf,
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            sysfs: Sysfs::default(),
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

/// The other members of `bdf`'s IOMMU group that make it not viable: bound
/// to a driver other than vfio-pci (pcieport/pci-stub are allowed by the
/// kernel and not listed), as `BDF is bound to DRIVER`.
pub fn group_blockers(sysfs: &Sysfs, bdf: Bdf) -> Vec<String> {
    let me = bdf.to_string();
    sysfs
        .group_members(bdf)
        .into_iter()
        .filter(|(name, _)| *name != me)
        .filter_map(|(name, drv)| match drv.as_deref() {
            None | Some(VFIO_PCI) | Some("pci-stub") | Some("pcieport") => None,
            Some(d) => Some(format!("{name} is bound to {d}")),
        })
        .collect()
}

impl Claims {
    /// A claim record's file operation failed.
    fn record_err(bdf: Bdf, op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Record {
            bdf,
            op,
            path,
            source,
        }
    }

    fn record(&self, bdf: Bdf) -> PathBuf {
        self.state_dir.join(bdf.to_string())
    }

    /// Writes the BDF to `path` (`drivers_probe`, a driver's `bind`/`unbind`).
    fn write_bdf(&self, bdf: Bdf, path: &Path) -> Result<()> {
        Ok(self.sysfs.write(bdf, path, &bdf.to_string())?)
    }

    fn set_override(&self, bdf: Bdf, value: &str) -> Result<()> {
        let path = self.sysfs.device_dir(bdf).join("driver_override");
        Ok(self.sysfs.write(bdf, &path, value)?)
    }

    fn probe(&self, bdf: Bdf) -> Result<()> {
        self.write_bdf(bdf, &self.sysfs.root().join("drivers_probe"))
    }

    /// Binds the device to vfio-pci, remembering its current driver.
    pub fn claim(&self, bdf: Bdf) -> Result<Claimed> {
        let previous = self.sysfs.driver(bdf)?;
        if previous.as_deref() == Some(VFIO_PCI) {
            return Ok(Claimed::Already);
        }
        if !self.sysfs.driver_dir(VFIO_PCI).is_dir() {
            return Err(Error::Claim {
                bdf,
                what: "the vfio-pci driver is not loaded (modprobe vfio-pci)".into(),
            });
        }
        std::fs::create_dir_all(&self.state_dir).map_err(Self::record_err(
            bdf,
            "mkdir",
            &self.state_dir,
        ))?;
        let record = self.record(bdf);
        std::fs::write(&record, previous.as_deref().unwrap_or(""))
            .map_err(Self::record_err(bdf, "write", &record))?;
        let result = (|| {
            self.set_override(bdf, VFIO_PCI)?;
            if let Some(d) = &previous {
                self.write_bdf(bdf, &self.sysfs.driver_dir(d).join("unbind"))?;
            }
            self.probe(bdf)?;
            match self.sysfs.driver(bdf)? {
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
                let _ = self.set_override(bdf, "\n");
                if self.sysfs.driver(bdf).ok().flatten().is_none() {
                    let _ = self.rebind(bdf, previous.as_deref());
                }
                let _ = std::fs::remove_file(&record);
                Err(e)
            }
        }
    }

    fn rebind(&self, bdf: Bdf, driver: Option<&str>) -> Result<()> {
        self.probe(bdf)?;
        if let Some(d) = driver {
            if self.sysfs.driver(bdf)?.as_deref() != Some(d) {
                self.write_bdf(bdf, &self.sysfs.driver_dir(d).join("bind"))?;
            }
        }
        Ok(())
    }

    /// Unbinds the device from vfio-pci and gives it back to the driver it
    /// had before `claim` (or whichever driver the kernel picks if there is
    /// no record). The device must not be open.
    pub fn release(&self, bdf: Bdf) -> Result<Released> {
        let now = self.sysfs.driver(bdf)?;
        if now.as_deref() != Some(VFIO_PCI) {
            return Err(Error::NotClaimed { bdf, driver: now });
        }
        let record = self.record(bdf);
        let previous = std::fs::read_to_string(&record)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        self.write_bdf(bdf, &self.sysfs.driver_dir(VFIO_PCI).join("unbind"))?;
        self.set_override(bdf, "\n")?;
        self.rebind(bdf, previous.as_deref())?;
        let driver = self.sysfs.driver(bdf)?;
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

    fn tree() -> (PathBuf, Claims) {
        let root = std::env::temp_dir().join(format!(
            "pcibox-claims-{}-{:?}",
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
        let s = Claims {
            sysfs: Sysfs::new(root.join("bus/pci")),
            state_dir: root.join("state"),
        };
        (root, s)
    }

    #[test]
    fn driver_group_and_members() {
        let (root, s) = tree();
        let bdf: Bdf = "00:04.0".parse().unwrap();
        assert_eq!(s.sysfs.driver(bdf).unwrap().as_deref(), Some("nvme"));
        assert_eq!(s.sysfs.iommu_group(bdf).unwrap(), Some(3));
        assert!(group_blockers(&s.sysfs, bdf).is_empty());
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
            group_blockers(&s.sysfs, bdf),
            vec!["0000:00:04.1 is bound to nvme".to_string()]
        );
        let missing: Bdf = "00:1f.0".parse().unwrap();
        let no_device = |r: Result<_, pcibox_sysfs::Error>| {
            matches!(r, Err(pcibox_sysfs::Error::NoDevice { .. }))
        };
        assert!(no_device(s.sysfs.driver(missing).map(drop)));
        assert!(no_device(s.sysfs.iommu_group(missing).map(drop)));
        // Through this crate's error, as claim and open report it.
        let e = s.claim(missing).unwrap_err();
        assert!(
            matches!(e, Error::Sysfs(pcibox_sysfs::Error::NoDevice { .. })),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "0000:00:1f.0: no such PCI device");
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

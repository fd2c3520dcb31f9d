//! The one reader of Linux's PCI sysfs: [`Sysfs`], rooted at `/sys/bus/pci`
//! (or another tree laid out like it, as pciutils' `-O sysfs.path=` takes).
//!
//! Everything pcibox needs is reachable from that one root:
//!
//! - `devices/ADDR/`: a function's directory ([`Sysfs::device_dir`]) and its
//!   attributes — text ([`Sysfs::text`]), hex numbers ([`Sysfs::hex`]), raw
//!   bytes ([`Sysfs::read`], [`Sysfs::config`]) and links ([`Sysfs::link_name`],
//!   [`Sysfs::link_target`]), among them the bound [`driver`](Sysfs::driver)
//!   and the [IOMMU group](Sysfs::iommu_group);
//! - `devices/ADDR/iommu_group/devices/`: the group's members with their
//!   drivers ([`Sysfs::group_members`]);
//! - the listing of `devices/` ([`Sysfs::functions`]) and where each
//!   function's directory really sits ([`Sysfs::parent`]);
//! - `slots/NAME/address`: physical slots ([`Sysfs::slots`]);
//! - `drivers/NAME/` and `drivers_probe` for whoever binds devices
//!   ([`Sysfs::driver_dir`], [`Sysfs::write`]).
//!
//! Its users: `pcibox lspci` (every OS fact it shows), the CLI's check of
//! what a `vfio:BDF` is before opening it, and the VFIO backend (`pcibox-vfio`:
//! is the device on vfio-pci, its group and the group's other members; its
//! claim and release are writes on top of this type).
//!
//! # Why a crate of its own, in the backends layer
//!
//! sysfs is Linux host I/O, so it cannot live in a spec crate (those do no
//! I/O, and none depends on this one). The VFIO backend (layer 3) and the CLI
//! (layer 5) both need it; inside `pcibox-vfio` it would make `lspci`, which
//! needs no VFIO, read sysfs through the VFIO backend and its error type. As
//! its own crate in layer 3 it sits where its lowest user does, depends on
//! nothing of pcibox but the `pci` address type (not on the driver kit: it is
//! no kit backend), and both users depend on it without a cycle.
//!
//! Reads return [`Result`]s and leave it to the caller whether a missing
//! attribute matters (lspci shows what there is; the VFIO backend needs the
//! driver and the group). Links are resolved, as lspci does: a dangling link
//! counts as absent.

mod error;
#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use pci::Address;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Where Linux shows PCI: the root [`Sysfs::default`] reads.
pub const DEFAULT_ROOT: &str = "/sys/bus/pci";

/// A PCI sysfs tree: `/sys/bus/pci` or one laid out like it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    /// The running kernel's tree, [`DEFAULT_ROOT`].
    fn default() -> Self {
        Sysfs::new(DEFAULT_ROOT)
    }
}

/// One member of an IOMMU group: its device name (a PCI address for PCI
/// functions, but groups may hold other devices) and its driver, if bound.
pub type Member = (String, Option<String>);

/// A physical slot: `slots/NAME/address` naming the device in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The slot's name (the directory's name).
    pub name: String,
    /// Domain of the device in the slot.
    pub domain: u32,
    /// Its bus.
    pub bus: u8,
    /// Its device number (every function of it is in the slot).
    pub device: u8,
}

impl Slot {
    /// Whether function `a` is in this slot.
    pub fn holds(&self, a: Address) -> bool {
        (a.domain, a.bus, a.device) == (self.domain, self.bus, self.device)
    }

    /// Parses `dddd:bb:dd` (hex; what follows a third `:` is ignored). An
    /// empty slot's `dddd:bb` has no device and gives `None`.
    fn parse(name: String, text: &str) -> Option<Slot> {
        let mut parts = text.split(':');
        let domain = u32::from_str_radix(parts.next()?, 16).ok()?;
        let bus = u8::from_str_radix(parts.next()?, 16).ok()?;
        let device = u8::from_str_radix(parts.next()?, 16).ok()?;
        Some(Slot {
            name,
            domain,
            bus,
            device,
        })
    }
}

/// The last component of where `path` leads, resolving links; `None` when
/// it leads nowhere.
fn resolved_name(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::canonicalize(path) {
        Ok(t) => Ok(t.file_name().map(|n| n.to_string_lossy().into_owned())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Sysfs {
    /// A tree rooted at `root` (the directory holding `devices/`, `drivers/`,
    /// `slots/`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sysfs { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Function `a`'s directory (`devices/ADDR`, a link to where it sits).
    pub fn device_dir(&self, a: Address) -> PathBuf {
        self.root.join("devices").join(a.to_string())
    }

    /// Driver `name`'s directory (`drivers/NAME`, with `bind` and `unbind`).
    pub fn driver_dir(&self, name: &str) -> PathBuf {
        self.root.join("drivers").join(name)
    }

    /// Fails with [`Error::NoDevice`] unless function `a` exists.
    pub fn check_exists(&self, a: Address) -> Result<()> {
        if self.device_dir(a).is_dir() {
            Ok(())
        } else {
            Err(Error::NoDevice { addr: a })
        }
    }

    /// Every function in `devices/` (names that are no PCI address are
    /// skipped), in address order.
    pub fn functions(&self) -> Result<Vec<Address>> {
        let dir = self.root.join("devices");
        let entries = std::fs::read_dir(&dir).map_err(|source| Error::List {
            path: dir.clone(),
            source,
        })?;
        let mut out: Vec<Address> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// The bytes of attribute `name` of function `a`.
    pub fn read(&self, a: Address, name: &str) -> Result<Vec<u8>> {
        let path = self.device_dir(a).join(name);
        std::fs::read(&path).map_err(|source| Error::Io {
            addr: a,
            op: "read",
            path,
            source,
        })
    }

    /// The config space bytes the kernel lets this process read: 64
    /// without privileges, else 256 or 4096.
    pub fn config(&self, a: Address) -> Result<Vec<u8>> {
        self.read(a, "config")
    }

    /// Attribute `name` as text, without surrounding white space (the
    /// kernel ends every value with a newline).
    pub fn text(&self, a: Address, name: &str) -> Result<String> {
        let bytes = self.read(a, name)?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    /// A hex attribute such as `vendor` (`0x1b36`); the `0x` is optional.
    pub fn hex(&self, a: Address, name: &str) -> Result<u64> {
        let text = self.text(a, name)?;
        let digits = text.strip_prefix("0x").unwrap_or(&text);
        u64::from_str_radix(digits, 16).map_err(|_| Error::NotHex {
            path: self.device_dir(a).join(name),
            text,
        })
    }

    /// Where link `name` of function `a` leads, resolved; `None` when there
    /// is no such link or it dangles, [`Error::NoDevice`] when there is no
    /// such function.
    pub fn link_target(&self, a: Address, name: &str) -> Result<Option<PathBuf>> {
        let path = self.device_dir(a).join(name);
        match std::fs::canonicalize(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == ErrorKind::NotFound => self.check_exists(a).map(|()| None),
            Err(source) => Err(Error::Io {
                addr: a,
                op: "readlink",
                path,
                source,
            }),
        }
    }

    /// The last component of where link `name` of function `a` leads (a
    /// driver's or a group's name); `None` and errors as
    /// [`link_target`](Sysfs::link_target).
    pub fn link_name(&self, a: Address, name: &str) -> Result<Option<String>> {
        Ok(self
            .link_target(a, name)?
            .and_then(|t| Some(t.file_name()?.to_string_lossy().into_owned())))
    }

    /// The driver bound to function `a`, if any.
    pub fn driver(&self, a: Address) -> Result<Option<String>> {
        self.link_name(a, "driver")
    }

    /// Function `a`'s IOMMU group number; `None` without a group (no IOMMU,
    /// or it is off). Linux names groups by number; a link to anything else
    /// counts as no group.
    pub fn iommu_group(&self, a: Address) -> Result<Option<u32>> {
        Ok(self
            .link_name(a, "iommu_group")?
            .and_then(|n| n.parse().ok()))
    }

    /// The members of function `a`'s IOMMU group (itself included), each
    /// with its driver, sorted by name. Empty when `a` has no group or the
    /// group cannot be listed.
    pub fn group_members(&self, a: Address) -> Vec<Member> {
        let dir = self.device_dir(a).join("iommu_group/devices");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<Member> = entries
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let driver = resolved_name(&e.path().join("driver")).ok().flatten();
                (name, driver)
            })
            .collect();
        out.sort();
        out
    }

    /// The function whose directory holds `a`'s (links resolved): the PCI
    /// device above `a` in the kernel's device hierarchy — a bridge, or a
    /// function that is none (such as a VMD endpoint). `None` when `a` sits
    /// under a host bridge (`pciDDDD:BB`) or the function above is not in
    /// this tree's `devices/`.
    pub fn parent(&self, a: Address) -> Option<Address> {
        let up = std::fs::canonicalize(self.device_dir(a).join("..")).ok()?;
        let p: Address = up.file_name()?.to_str()?.parse().ok()?;
        let listed = std::fs::canonicalize(self.device_dir(p)).ok()?;
        (listed == up).then_some(p)
    }

    /// The physical slots that name a device, in directory order (as lspci
    /// takes them: the first slot naming a device wins). Hidden entries,
    /// slots without a readable address and empty slots are left out.
    pub fn slots(&self) -> Vec<Slot> {
        let Ok(entries) = std::fs::read_dir(self.root.join("slots")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    return None;
                }
                let text = std::fs::read_to_string(e.path().join("address")).ok()?;
                Slot::parse(name, text.trim())
            })
            .collect()
    }

    /// Writes `value` to `path` (an attribute of this tree, such as
    /// `device_dir(a)/driver_override` or `driver_dir(d)/unbind`) in one
    /// write call, as sysfs wants; a failure names function `a`.
    pub fn write(&self, a: Address, path: &Path, value: &str) -> Result<()> {
        std::fs::write(path, value).map_err(|source| Error::Io {
            addr: a,
            op: "write",
            path: path.to_path_buf(),
            source,
        })
    }
}

//! Device syntax on the command line: `vfio:BDF` (a device bound to
//! vfio-pci on this host) and `vfio-user:SOCKET` (a device exported by a
//! vfio-user server). Every subcommand that takes a device parses it here.
//!
//! A driver subcommand opens its device with [`DeviceSpec::open_as`], which first checks that
//! the device is what the driver drives ([`Kind`]): a `vfio:BDF` by its sysfs IDs before
//! anything is opened (so an NVMe command on the guest's virtio disk says what that disk is
//! instead of asking for it to be claimed), and every device by its config space once open.

use crate::cmd::Context;
use pci_lspci::ids::{IdDb, NameMode, Names};
use pcibox_sysfs::Sysfs;
use pcibox_vfio::Bdf;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A device named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// `vfio:BDF`.
    Vfio(Bdf),
    /// `vfio-user:SOCKET`.
    VfioUser(PathBuf),
}

/// Why a device could not be named or opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Not `vfio:BDF` or `vfio-user:SOCKET`.
    #[error("{0:?}: expected vfio:BDF or vfio-user:SOCKET")]
    Syntax(String),
    /// A bad BDF.
    #[error(transparent)]
    Bdf(#[from] pci::AddressError),
    /// The vfio-user server could not be reached or refused us.
    #[error("cannot open {0}")]
    VfioUser(String, #[source] pcibox_vfio_user::Error),
    /// The device is not what the subcommand drives.
    #[error("{name} is not {expected} ({found})")]
    WrongKind {
        /// The BDF or the `vfio-user:SOCKET`.
        name: String,
        /// What the subcommand drives, e.g. `an NVMe controller`.
        expected: &'static str,
        /// What the device says it is ([`Identity::describe`]).
        found: String,
    },
}

/// What a driver subcommand drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any NVMe controller: class code 01:08:02 (mass storage, NVM, NVM Express).
    Nvme,
    /// Intel's 82574L (8086:10d3), the NIC the e1000e driver drives.
    E1000e,
}

/// The NVM Express class code (base class, subclass, programming interface).
const NVME_CLASS: u32 = 0x01_08_02;

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Nvme => "an NVMe controller",
            Kind::E1000e => "an Intel 82574L e1000e NIC",
        }
    }

    fn accepts(self, id: &Identity) -> bool {
        match self {
            Kind::Nvme => id.class == NVME_CLASS,
            Kind::E1000e => {
                (id.vendor, id.device)
                    == (pcibox_e1000e::VENDOR_INTEL, pcibox_e1000e::DEVICE_82574L)
            }
        }
    }

    /// `Ok` if `id` is this kind of device; otherwise the error naming what it is.
    fn check(self, name: String, id: &Identity) -> Result<(), DeviceError> {
        if self.accepts(id) {
            return Ok(());
        }
        Err(DeviceError::WrongKind {
            name,
            expected: self.expected(),
            found: id.describe(system_ids().as_deref()),
        })
    }
}

/// Who a PCI function says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code: base class, subclass, programming interface (24 bits).
    pub class: u32,
}

/// Where pci.ids usually is (names in error messages only; numbers when absent).
const IDS_PATHS: [&str; 2] = ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"];

/// The text of the system's pci.ids, if there is one.
fn system_ids() -> Option<String> {
    IDS_PATHS
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
}

impl Identity {
    /// From function `addr`'s sysfs attributes (`vendor`, `device`, `class`: hex with `0x`).
    pub fn from_sysfs(sysfs: &Sysfs, addr: Bdf) -> Result<Identity, pcibox_sysfs::Error> {
        Ok(Identity {
            vendor: sysfs.hex(addr, "vendor")? as u16,
            device: sysfs.hex(addr, "device")? as u16,
            class: sysfs.hex(addr, "class")? as u32 & 0xff_ffff,
        })
    }

    /// From an opened device's config space.
    pub fn from_config(device: &pcibox_kit::Device) -> pcibox_kit::Result<Identity> {
        let (vendor, device_id) = device.ids()?;
        Ok(Identity {
            vendor,
            device: device_id,
            class: device.config_read32(0x08)? >> 8,
        })
    }

    /// `class 02:00:00 Ethernet controller, device 1af4:1000 Red Hat, Inc. Virtio network
    /// device`: the numbers, and the names `ids` (the text of a pci.ids) has for them.
    pub fn describe(&self, ids: Option<&str>) -> String {
        let [_, base, sub, prog_if] = self.class.to_be_bytes();
        let class = format!("class {base:02x}:{sub:02x}:{prog_if:02x}");
        let device = format!("device {:04x}:{:04x}", self.vendor, self.device);
        match ids.and_then(|text| IdDb::parse(text).ok()) {
            None => format!("{class}, {device}"),
            Some(db) => {
                let names = Names::new(Some(db), NameMode::Names);
                format!(
                    "{class} {}, {device} {}",
                    names.class(u16::from_be_bytes([base, sub])),
                    names.vendor_device(self.vendor, self.device)
                )
            }
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        if let Some(bdf) = s.strip_prefix("vfio:") {
            Ok(DeviceSpec::Vfio(bdf.parse()?))
        } else if let Some(sock) = s.strip_prefix("vfio-user:") {
            if sock.is_empty() {
                return Err(DeviceError::Syntax(s.to_string()));
            }
            Ok(DeviceSpec::VfioUser(PathBuf::from(sock)))
        } else {
            Err(DeviceError::Syntax(s.to_string()))
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Vfio(b) => write!(f, "vfio:{b}"),
            DeviceSpec::VfioUser(p) => write!(f, "vfio-user:{}", p.display()),
        }
    }
}

impl DeviceSpec {
    /// How errors about the device name it: the BDF, or `vfio-user:SOCKET`.
    fn error_name(&self) -> String {
        match self {
            DeviceSpec::Vfio(bdf) => bdf.to_string(),
            DeviceSpec::VfioUser(_) => self.to_string(),
        }
    }

    /// Opens the device for a driver of `kind`, refusing any other device: a `vfio:BDF` is
    /// checked in sysfs before it is opened, every device in its config space after.
    pub fn open_as(&self, kind: Kind) -> Result<pcibox_kit::Device, super::cmd::Error> {
        if let DeviceSpec::Vfio(bdf) = self {
            // No sysfs entry: `open` says what is wrong (no such device, …).
            if let Ok(id) = Identity::from_sysfs(&Sysfs::default(), *bdf) {
                kind.check(self.error_name(), &id)?;
            }
        }
        let device = self.open()?;
        let id = Identity::from_config(&device).context(self.to_string())?;
        kind.check(self.error_name(), &id)?;
        Ok(device)
    }

    /// Opens the device as a kit device for a driver, whatever it is.
    pub fn open(&self) -> Result<pcibox_kit::Device, super::cmd::Error> {
        Ok(pcibox_kit::Device::new(self.open_backend()?)?)
    }

    /// Opens the device's raw backend, for privileged code (the vfio-user
    /// server); drivers get [`DeviceSpec::open`]'s `Device` instead.
    pub fn open_backend(&self) -> Result<Box<dyn pcibox_kit::Backend>, super::cmd::Error> {
        match self {
            DeviceSpec::Vfio(bdf) => Ok(Box::new(pcibox_vfio::VfioDevice::open(*bdf)?)),
            DeviceSpec::VfioUser(path) => {
                let client = pcibox_vfio_user::Client::connect(path, Default::default())
                    .map_err(|e| DeviceError::VfioUser(self.to_string(), e))?;
                Ok(Box::new(client))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds() {
        assert_eq!(
            "vfio:0000:00:04.0"
                .parse::<DeviceSpec>()
                .unwrap()
                .to_string(),
            "vfio:0000:00:04.0"
        );
        assert_eq!(
            "vfio:00:05.0".parse::<DeviceSpec>().unwrap().to_string(),
            "vfio:0000:00:05.0"
        );
        assert_eq!(
            "vfio-user:/run/x.sock".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::VfioUser("/run/x.sock".into())
        );
    }

    const NVME: Identity = Identity {
        vendor: 0x1b36,
        device: 0x0010,
        class: 0x010802,
    };
    const VIRTIO_NET: Identity = Identity {
        vendor: 0x1af4,
        device: 0x1000,
        class: 0x020000,
    };

    #[test]
    fn kinds_accept_their_devices_only() {
        let e1000e = Identity {
            vendor: 0x8086,
            device: 0x10d3,
            class: 0x020000,
        };
        assert!(Kind::Nvme.accepts(&NVME));
        assert!(!Kind::Nvme.accepts(&VIRTIO_NET));
        // Another NVMe controller is still one; an NVMe-like class with another prog-if is not.
        assert!(Kind::Nvme.accepts(&Identity {
            vendor: 0x8086,
            device: 0xf1a5,
            ..NVME
        }));
        assert!(!Kind::Nvme.accepts(&Identity {
            class: 0x010801,
            ..NVME
        }));
        assert!(Kind::E1000e.accepts(&e1000e));
        assert!(!Kind::E1000e.accepts(&VIRTIO_NET));
        assert!(!Kind::E1000e.accepts(&NVME));
    }

    #[test]
    fn wrong_kind_says_what_the_device_is() {
        // Without a pci.ids: numbers only.
        assert_eq!(
            VIRTIO_NET.describe(None),
            "class 02:00:00, device 1af4:1000"
        );
        // With one (pci.ids syntax, as the system's file has it): the names too.
        let ids = "1af4  Red Hat, Inc.\n\t1000  Virtio network device\n\
                   C 02  Network controller\n\t00  Ethernet controller\n";
        assert_eq!(
            VIRTIO_NET.describe(Some(ids)),
            "class 02:00:00 Ethernet controller, device 1af4:1000 Red Hat, Inc. Virtio network device"
        );
        let e = Kind::Nvme
            .check("0000:00:06.0".into(), &VIRTIO_NET)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("0000:00:06.0 is not an NVMe controller (class 02:00:00"),
            "{e}"
        );
        let e = Kind::E1000e
            .check("vfio-user:/x.sock".into(), &NVME)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("vfio-user:/x.sock is not an Intel 82574L e1000e NIC (class 01:08:02"),
            "{e}"
        );
        assert!(e.contains("device 1b36:0010"), "{e}");
    }

    #[test]
    fn identity_from_sysfs_files() {
        let root = std::env::temp_dir().join(format!("pcibox-identity-{}", std::process::id()));
        let addr: Bdf = "0000:00:06.0".parse().unwrap();
        let sysfs = Sysfs::new(&root);
        let dir = sysfs.device_dir(addr);
        std::fs::create_dir_all(&dir).unwrap();
        // What Linux writes: hex with 0x and a newline.
        for (name, text) in [
            ("vendor", "0x1af4\n"),
            ("device", "0x1000\n"),
            ("class", "0x020000\n"),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        assert_eq!(Identity::from_sysfs(&sysfs, addr).unwrap(), VIRTIO_NET);
        std::fs::write(dir.join("class"), "nonsense\n").unwrap();
        let e = Identity::from_sysfs(&sysfs, addr).unwrap_err().to_string();
        assert!(e.contains("is not hex"), "{e}");
        std::fs::remove_file(dir.join("class")).unwrap();
        assert!(Identity::from_sysfs(&sysfs, addr).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn rejects_bad_input_clearly() {
        for s in [
            "",
            "0000:00:04.0",
            "vfio:",
            "vfio:zz",
            "vfio-user:",
            "pci:00:04.0",
        ] {
            let e = s.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(!e.is_empty(), "{s}");
        }
        let e = "vfio-user:/nonexistent/pcibox.sock"
            .parse::<DeviceSpec>()
            .unwrap()
            .open()
            .unwrap_err();
        let shown = pcibox_kit::Chain(&*e).to_string();
        assert!(
            shown.starts_with("cannot open vfio-user:/nonexistent/pcibox.sock: connect failed: "),
            "{shown}"
        );
    }
}

//! Device syntax on the command line: `vfio:BDF` (a device bound to
//! vfio-pci on this host) and `vfio-user:SOCKET` (a device exported by a
//! vfio-user server). Every subcommand that takes a device parses it here.

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
    Bdf(#[from] pcibox_vfio::Error),
    /// The vfio-user server could not be reached or refused us.
    #[error("cannot open {0}")]
    VfioUser(String, #[source] pcibox_vfio_user::Error),
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
    /// Opens the device as a kit device, for a driver.
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

//! The backend's typed errors. Each names the device (BDF) and the
//! operation; the kit carries them as `pcibox_kit::Error::Backend`.

use crate::Bdf;
use std::io;
use std::path::PathBuf;

/// A VFIO backend failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A text that is not a PCI address.
    #[error(transparent)]
    BadBdf(#[from] pci::AddressError),
    /// Reading sysfs (no such device, …) or writing it to claim or release
    /// a device failed.
    #[error(transparent)]
    Sysfs(#[from] pcibox_sysfs::Error),
    /// The device is not bound to vfio-pci.
    #[error("{bdf}: bound to {}, not vfio-pci (run `pcibox claim {bdf}` first)", driver.as_deref().unwrap_or("no driver"))]
    NotClaimed {
        /// The device.
        bdf: Bdf,
        /// Its current driver, if any.
        driver: Option<String>,
    },
    /// The device has no IOMMU group (no IOMMU, or it is disabled).
    #[error("{bdf}: no IOMMU group (is the IOMMU enabled?)")]
    NoIommuGroup {
        /// The device.
        bdf: Bdf,
    },
    /// The device's group is not viable: another device in it is bound to a
    /// host driver.
    #[error("{bdf}: IOMMU group {group} is not viable: {}", blockers.join(", "))]
    GroupNotViable {
        /// The device.
        bdf: Bdf,
        /// The group number.
        group: u32,
        /// The other devices of the group and their drivers.
        blockers: Vec<String>,
    },
    /// The VFIO API or the type1v2 IOMMU is missing.
    #[error("{bdf}: {what}")]
    Unsupported {
        /// The device.
        bdf: Bdf,
        /// What is missing.
        what: String,
    },
    /// A VFIO ioctl (or read/write/open on a VFIO file) failed.
    #[error("{bdf}: {op} failed")]
    Vfio {
        /// The device.
        bdf: Bdf,
        /// The operation, e.g. `VFIO_DEVICE_SET_IRQS(MSI-X enable 4)`.
        op: String,
        /// The OS error.
        source: io::Error,
    },
    /// A claim record (the driver a claimed device had) could not be
    /// written.
    #[error("{bdf}: {op} {} failed", path.display())]
    Record {
        /// The device.
        bdf: Bdf,
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The kit refused the opened device (for example its config space
    /// does not parse or it reports no usable IOVA range).
    #[error("{bdf}: the driver kit cannot use the device")]
    Kit {
        /// The device.
        bdf: Bdf,
        /// The kit's reason.
        source: pcibox_kit::Error,
    },
    /// Claim or release did not end as expected.
    #[error("{bdf}: {what}")]
    Claim {
        /// The device.
        bdf: Bdf,
        /// What went wrong.
        what: String,
    },
}

impl From<Error> for pcibox_kit::Error {
    fn from(e: Error) -> Self {
        pcibox_kit::Error::Backend(Box::new(e))
    }
}

/// The backend's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

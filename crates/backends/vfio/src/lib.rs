//! The Linux VFIO backend of the pcibox driver kit.
//!
//! - [`open`]: a kit [`pcibox_kit::Device`] for a PCI device bound to
//!   vfio-pci, through the legacy container/group API with the type1v2 IOMMU
//!   (the rig's 6.1 kernels have no iommufd device cdev).
//! - [`Claims::claim`] / [`Claims::release`]: bind a device to vfio-pci and
//!   give it back to the driver it had (`pcibox claim` / `pcibox release`),
//!   writes on top of the one sysfs reader, [`pcibox_sysfs::Sysfs`], which
//!   this crate also reads a device's driver, IOMMU group and the group's
//!   members through.
//!
//! Every failure is an [`Error`] naming the device and the operation. See
//! `docs/vfio.md`.

mod backend;
mod claim;
mod error;
mod ioctl;

pub use backend::VfioDevice;
pub use claim::{group_blockers, Claimed, Claims, Released, VFIO_PCI};
pub use error::{Error, Result};
/// A PCI address: the `pci` crate's one address type, under the name this
/// crate's API uses.
pub use pci::Address as Bdf;

/// Opens `bdf` (bound to vfio-pci) as a kit device.
pub fn open(bdf: Bdf) -> Result<pcibox_kit::Device> {
    let dev = VfioDevice::open(bdf)?;
    pcibox_kit::Device::new(Box::new(dev)).map_err(|source| Error::Kit { bdf, source })
}

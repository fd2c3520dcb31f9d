//! The model layer's error type.

use pcibox_kit::IrqKind;

/// What can go wrong between a driver and a device model. A
/// [`crate::ModelBackend`] hands these to the kit as
/// [`pcibox_kit::Error::Backend`] (downcast to get them back).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model touched memory the driver did not map for it: an IOMMU
    /// fault. Counted by [`crate::DmaSpace::faults`].
    #[error("DMA {access} of {len:#x} bytes at IOVA {iova:#x} refused: {why}")]
    DmaFault {
        /// `"read"` or `"write"`.
        access: &'static str,
        /// Where the access starts.
        iova: u64,
        /// Its length.
        len: usize,
        /// Why the IOMMU refused it.
        why: &'static str,
    },
    /// A DMA map or unmap request the space cannot carry out.
    #[error("DMA {op} of {len:#x} bytes at IOVA {iova:#x}: {why}")]
    DmaWindow {
        /// `"map"` or `"unmap"`.
        op: &'static str,
        /// The window's IOVA.
        iova: u64,
        /// Its length.
        len: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// A system call made for the model (memfd, pread, pwrite, eventfd
    /// write, dup) failed.
    #[error("{op} failed")]
    Os {
        /// The operation.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model's virtual config space refused the access.
    #[error("config space access refused")]
    Config(#[source] pci_virt::Error),
    /// A region access outside the region, of a bad width, or to a region
    /// the model does not have.
    #[error("region {index}: {len}-byte access at {offset:#x}: {why}")]
    Region {
        /// The region index.
        index: u32,
        /// Where the access starts.
        offset: u64,
        /// Its length.
        len: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// An access outside a [`crate::RegionMemory`].
    #[error("{len}-byte access at {offset:#x} outside {size:#x} bytes of region memory")]
    Memory {
        /// Where the access starts.
        offset: u64,
        /// Its length.
        len: usize,
        /// The memory's size.
        size: u64,
    },
    /// An interrupt request the model's sink cannot carry out.
    #[error("{kind} interrupts: {why}")]
    Irq {
        /// The interrupt type.
        kind: IrqKind,
        /// What is wrong.
        why: &'static str,
    },
}

impl Error {
    pub(crate) fn os(op: &'static str, e: impl Into<std::io::Error>) -> Self {
        Error::Os {
            op,
            source: e.into(),
        }
    }
}

impl From<Error> for pcibox_kit::Error {
    fn from(e: Error) -> Self {
        pcibox_kit::Error::Backend(Box::new(e))
    }
}

/// The model layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The kit's error type.

use crate::backend::IrqKind;

/// A boxed error from a backend (for example `pcibox_vfio::Error`, which
/// names the device and the operation). Callers may downcast it.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the kit. Backends return
/// [`Error::Backend`] for their own failures and [`Error::Unsupported`] for
/// operations they do not offer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config-space access outside the config space or not naturally aligned.
    #[error("config {width}-byte access at {offset:#x}: outside {size:#x} bytes or misaligned")]
    ConfigOffset {
        /// Requested offset.
        offset: usize,
        /// Access width in bytes.
        width: usize,
        /// Size of the device's config space.
        size: usize,
    },
    /// The config space read from the device does not parse (see `pci`).
    #[error("config space does not parse")]
    ConfigParse(#[from] pci::Error),
    /// A region access outside the region or not naturally aligned.
    #[error(
        "region {index}: {width}-byte access at {offset:#x}: outside {size:#x} bytes or misaligned"
    )]
    RegionBounds {
        /// Region index (BAR number, 6 = expansion ROM).
        index: u32,
        /// Requested offset.
        offset: u64,
        /// Access width in bytes.
        width: usize,
        /// Region size.
        size: u64,
    },
    /// The region does not exist, has size 0, or lacks the requested permission.
    #[error("region {index}: {what}")]
    Region {
        /// Region index.
        index: u32,
        /// What is wrong with it.
        what: &'static str,
    },
    /// An interrupt request the device or backend cannot satisfy.
    #[error("{kind} interrupts: {what}")]
    Irq {
        /// Which interrupt type.
        kind: IrqKind,
        /// What is wrong.
        what: String,
    },
    /// No free IOVA range of the requested size is left.
    #[error("IOVA space exhausted: no free range of {len:#x} bytes")]
    IovaExhausted {
        /// Requested length.
        len: u64,
    },
    /// A caller-chosen IOVA range (a DMA window) is not inside the device's
    /// IOVA ranges.
    #[error("IOVA range {iova:#x}+{len:#x} is outside the device's IOVA ranges")]
    IovaRange {
        /// First IOVA of the range.
        iova: u64,
        /// Length in bytes.
        len: u64,
    },
    /// A caller-chosen IOVA range overlaps one already mapped, allocated or
    /// reserved on this device.
    #[error("IOVA range {iova:#x}+{len:#x} overlaps one in use")]
    IovaInUse {
        /// First IOVA of the range.
        iova: u64,
        /// Length in bytes.
        len: u64,
    },
    /// A DMA buffer access or mapping request outside the buffer or misaligned.
    #[error("DMA: {what} (offset {offset:#x}, length {len:#x})")]
    Dma {
        /// What is wrong.
        what: &'static str,
        /// Offset or address involved.
        offset: u64,
        /// Length involved.
        len: u64,
    },
    /// A system call the kit makes itself (memfd, mmap, eventfd, poll) failed.
    #[error("{op} failed")]
    Os {
        /// The operation.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The backend does not implement this operation.
    #[error("{backend}: {what} is not supported by this backend")]
    Unsupported {
        /// Backend name.
        backend: String,
        /// The operation.
        what: &'static str,
    },
    /// The device was torn down (its `Device` dropped); the handle is inert.
    #[error("device is closed")]
    Closed,
    /// A backend's own failure.
    #[error(transparent)]
    Backend(BackendError),
}

impl Error {
    /// Wraps an OS error from the kit's own system calls.
    pub(crate) fn os(op: &'static str, e: impl Into<std::io::Error>) -> Self {
        Error::Os {
            op,
            source: e.into(),
        }
    }
}

/// An error and its causes, outermost first (the error itself, then each
/// `source()` in turn).
pub fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// Displays an error with all its causes joined by ": ", the one-line form
/// `pcibox` prints. Every error type in the workspace says what failed in its
/// own message and leaves the cause to `source()`, so each cause appears
/// once; log an error as `Chain(&e)`, not `{e}`, or its causes are lost.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in causes(self.0).enumerate() {
            if i > 0 {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The kit's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

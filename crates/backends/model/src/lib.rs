//! The device-model seam: a PCI device written as software, served to
//! drivers exactly like a real one.
//!
//! - [`DeviceModel`]: the device's view of a device — config space through
//!   a [`pci_virt::VirtualConfig`] the model owns (its write events reach
//!   the model: BAR moved, command changed, MSI/MSI-X control, FLR),
//!   trapped BAR reads and writes (the doorbell hook), reset, and the
//!   regions and interrupt vectors it offers.
//! - [`ModelBackend`]: any model as a kit [`pcibox_kit::Backend`], so the
//!   kit's `Device`, every driver and the vfio-user server use it
//!   unchanged. It gives the model its [`DmaSpace`] and [`IrqSink`] when
//!   the model is built ([`ModelBackend::build`]): the model reaches driver
//!   memory and raises interrupts through them, never through whoever
//!   serves it, so there is no wiring back through a server.
//! - [`DmaSpace`]: the model's IOMMU. Windows come from
//!   [`pcibox_kit::Backend::dma_map`]; an access outside one window (or a
//!   write to a read-only one) is a counted fault. Driver memory is reached
//!   with `pread`/`pwrite` on the window's file, or volatile copies when it
//!   has none — never through a Rust reference.
//! - [`IrqSink`]: raise vector `n` → the eventfd the driver gave through
//!   `irq_enable`, held pending while masked, INTx automasked until the
//!   end-of-interrupt.
//! - [`RegionMemory`]: memfd-backed BAR memory a driver may map while the
//!   model reads and writes the same bytes.
//! - [`fake::Fake`]: the test fake, a [`ModelBackend`] of a model with no
//!   behaviour of its own.
//!
//! ## Where the fake lives, and why
//!
//! The fake used to be the kit's (`pcibox_kit::fake`, feature `fake`). It
//! is a model now, so it lives here, above the kit: the kit cannot depend
//! on this crate. The kit's tests that use it are integration tests
//! (`crates/kit/tests/`), which may dev-depend on `pcibox-model` — they link
//! the one kit library this crate links too. A unit test inside the kit
//! could not: it would compile a second copy of the kit whose types do not
//! match this crate's. Drivers, the vfio-user tests, the CLI's tests and
//! the fuzz targets dev-depend on `pcibox-model` for it.
//!
//! See `docs/models.md`.

mod backend;
mod dma;
mod error;
pub mod fake;
mod irq;
mod memory;
mod model;

pub use backend::{ModelBackend, ModelIo, MODEL_IOVA_RANGE};
pub use dma::DmaSpace;
pub use error::{Error, Result};
pub use irq::IrqSink;
pub use memory::RegionMemory;
pub use model::{DeviceModel, IrqCounts, ModelRegion};

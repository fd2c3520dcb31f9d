//! The public, object-safe [`Backend`] trait every way of reaching a PCI
//! device implements (Linux VFIO, a vfio-user client, an in-process model,
//! the test fake), and the plain data types it speaks.
//!
//! The trait is deliberately low level and stateless from the kit's point of
//! view: the kit ([`crate::Device`]) does all checking (offsets, widths,
//! alignment), bookkeeping (which interrupts are on, which IOVAs are mapped)
//! and teardown ordering. A backend only forwards.
//!
//! Region indices follow VFIO: 0–5 are BARs 0–5, 6 is the expansion ROM.
//! Config space has its own methods.

use crate::error::Result;
use std::fmt;
use std::ops::Range;
use std::os::fd::BorrowedFd;

/// Index of the expansion ROM region.
pub const ROM_REGION: u32 = 6;

/// Interrupt types, in VFIO's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IrqKind {
    /// Legacy level-triggered INTx: one vector, masked by the host when it
    /// fires and re-armed by [`crate::Vector::unmask`] (the EOI).
    Intx,
    /// MSI: up to 32 vectors.
    Msi,
    /// MSI-X: up to 2048 vectors.
    Msix,
}

impl fmt::Display for IrqKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IrqKind::Intx => "INTx",
            IrqKind::Msi => "MSI",
            IrqKind::Msix => "MSI-X",
        })
    }
}

/// A region's description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegionInfo {
    /// Region index (BAR number, or [`ROM_REGION`]).
    pub index: u32,
    /// Size in bytes; 0 if the BAR is not implemented.
    pub size: u64,
    /// Reads are allowed.
    pub readable: bool,
    /// Writes are allowed.
    pub writable: bool,
    /// Parts of the region that may be mapped, as offsets into the region.
    /// Empty if nothing may be mapped. A region mappable as a whole has one
    /// area `0..size`; a sparse one (VFIO's sparse-mmap capability, e.g.
    /// around an MSI-X table) has several.
    pub mmap_areas: Vec<Range<u64>>,
    /// Offset of the region's first byte in the file returned by
    /// [`Backend::region_mmap_fd`].
    pub mmap_offset: u64,
    /// The MSI-X table and PBA in this region may be mapped (VFIO's
    /// MSI-X-mappable capability). Informational.
    pub msix_mappable: bool,
    /// The region is an I/O-port BAR rather than memory.
    pub io_port: bool,
}

/// An interrupt type's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IrqInfo {
    /// Number of vectors the device offers (0 if the type is absent).
    pub count: u32,
    /// Each vector can be signalled through an eventfd.
    pub eventfd: bool,
    /// The host can mask/unmask the vector (INTx).
    pub maskable: bool,
    /// The host masks the vector when it fires (INTx): the driver must
    /// unmask it after handling.
    pub automasked: bool,
    /// The vector count cannot change while enabled.
    pub noresize: bool,
}

/// Memory to be made visible to the device at an IOVA.
#[derive(Debug, Clone, Copy)]
pub struct DmaMemory<'a> {
    /// Process virtual address of the first byte (page aligned).
    pub vaddr: usize,
    /// Length in bytes (a multiple of the page size).
    pub len: u64,
    /// The file backing the memory, when there is one (kit-allocated buffers
    /// are always memfd-backed); remote backends send it to their peer.
    pub fd: Option<BorrowedFd<'a>>,
    /// Offset of `vaddr`'s byte in `fd`.
    pub fd_offset: u64,
    /// The device may write the memory (not only read it).
    pub device_writable: bool,
}

/// A way of reaching one PCI device. Object safe; implement it to add a
/// backend. All methods take `&self` and must be callable from any thread.
///
/// The kit calls these methods only with checked arguments (offsets inside
/// the config space or the region, naturally aligned widths of 1, 2, 4 or 8
/// bytes, page-aligned DMA ranges inside the ranges of [`Backend::iova_ranges`]).
pub trait Backend: Send + Sync + fmt::Debug {
    /// A short name for messages, e.g. `vfio:0000:00:04.0`.
    fn name(&self) -> &str;

    /// Size of config space in bytes (256 or 4096).
    fn config_len(&self) -> usize;
    /// Reads `buf.len()` bytes (1, 2 or 4) of config space at `offset`.
    fn config_read(&self, offset: usize, buf: &mut [u8]) -> Result<()>;
    /// Writes `data` (1, 2 or 4 bytes) to config space at `offset`.
    fn config_write(&self, offset: usize, data: &[u8]) -> Result<()>;

    /// Describes region `index`; `Ok(None)` if there is no such region.
    fn region_info(&self, index: u32) -> Result<Option<RegionInfo>>;
    /// Reads `buf.len()` bytes (1, 2, 4 or 8) of region `index` at `offset`
    /// without a mapping (the trapped path).
    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes `data` (1, 2, 4 or 8 bytes) to region `index` at `offset`.
    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<()>;
    /// The file to `mmap` (shared) for the region's mappable areas, at
    /// [`RegionInfo::mmap_offset`] + area offset. Only called when
    /// [`RegionInfo::mmap_areas`] is not empty.
    fn region_mmap_fd(&self, index: u32) -> Result<BorrowedFd<'_>>;

    /// Describes interrupt type `kind`.
    fn irq_info(&self, kind: IrqKind) -> Result<IrqInfo>;
    /// Enables `fds.len()` vectors of `kind` (vector `i` signals `fds[i]`).
    /// Only one kind is enabled at a time; the kit disables the old one first.
    fn irq_enable(&self, kind: IrqKind, fds: &[BorrowedFd<'_>]) -> Result<()>;
    /// Disables all vectors of `kind`.
    fn irq_disable(&self, kind: IrqKind) -> Result<()>;
    /// Masks one vector: it must no longer signal its eventfd until unmasked.
    /// `fd` is the vector's eventfd (a backend without a mask may detach it).
    fn irq_mask(&self, kind: IrqKind, index: u32, fd: BorrowedFd<'_>) -> Result<()>;
    /// Unmasks one vector. For INTx this is also the end-of-interrupt after
    /// handling an automasked interrupt. `fd` is the vector's eventfd.
    fn irq_unmask(&self, kind: IrqKind, index: u32, fd: BorrowedFd<'_>) -> Result<()>;

    /// The IOVA ranges the device may be given (half-open, page aligned).
    fn iova_ranges(&self) -> Result<Vec<Range<u64>>>;
    /// Makes `mem` visible to the device at `iova`: from then on the device
    /// may read it (and write it, if `mem.device_writable`) at any time,
    /// concurrently with the process.
    ///
    /// Only privileged code calls this (the kit's DMA books, the vfio-user
    /// server's windows); drivers map memory through [`crate::Device`]'s
    /// DMA methods, which own the memory they map.
    ///
    /// # Safety
    /// `mem.vaddr .. mem.vaddr + mem.len` must be memory of this process
    /// that stays mapped (writable, if `mem.device_writable`: an in-process
    /// device such as a model writes it through that address), and is not
    /// freed, remapped or used for anything the device must not see or
    /// change, until [`Backend::dma_unmap`] of
    /// this mapping has returned (or the backend is dropped). While the
    /// device may write it, no Rust reference to that memory may exist:
    /// it is accessed only through raw pointers with volatile or atomic
    /// operations. If `mem.fd` is given, `mem.vaddr` must be a shared
    /// mapping of that file at `mem.fd_offset`.
    #[allow(unsafe_code)] // the contract above is what makes DMA sound
    unsafe fn dma_map(&self, iova: u64, mem: &DmaMemory<'_>) -> Result<()>;
    /// Removes the mapping of `len` bytes at `iova` made by one `dma_map`.
    fn dma_unmap(&self, iova: u64, len: u64) -> Result<()>;

    /// Resets the device (function-level or whatever the backend has).
    fn reset(&self) -> Result<()>;
}

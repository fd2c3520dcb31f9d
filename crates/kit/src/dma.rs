//! DMA: memory the device reads and writes, known to the device only by its
//! IOVA (never a process address).
//!
//! - [`Device::alloc_dma`]: a coherent buffer — a memfd mapped into the
//!   process and, through the backend, at a fresh IOVA.
//! - [`Device::map_memfd`]: caller memory held in a file (memfd, shared
//!   memory) mapped the same way; [`Device::map_raw`] for any page-aligned
//!   memory the caller keeps alive (unsafe).
//! - [`Device::dma_pool`]: many small equal buffers carved from one mapping.
//!
//! Sync points (the memory is cache coherent on x86; these order accesses):
//! call [`DmaSlice::sync_for_device`] after filling memory the device will
//! read and before telling it so (a doorbell write through a `Region` —
//! [`crate::Region::write_doorbell32`] does both), and
//! [`DmaSlice::sync_for_cpu`] after learning the device wrote (an interrupt,
//! a completion phase bit) and before reading what it wrote.
//!
//! Dropping a buffer unmaps it from the device before its memory is
//! released. Dropping the `Device` unmaps everything still mapped.

use crate::backend::DmaMemory;
use crate::device::{Device, Shared};
use crate::error::{Error, Result};
use crate::mmap::{Mmap, Width};
use rustix::fs::MemfdFlags;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex};

/// A window of DMA memory: its IOVA, length and accessors. [`DmaBuffer`]
/// and [`PoolBuffer`] dereference to it.
#[derive(Debug)]
pub struct DmaSlice {
    mem: Arc<Mmap>,
    base: usize,
    len: usize,
    iova: u64,
}

impl DmaSlice {
    /// The device's address of the first byte.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// The device's address of byte `offset` (checked).
    pub fn iova_at(&self, offset: usize) -> Result<u64> {
        self.check(offset, 0)?;
        Ok(self.iova + offset as u64)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length slice (never for kit buffers).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The process address of the first byte (for code that must hand it
    /// to a system call; the device never sees it).
    pub fn as_ptr(&self) -> *mut u8 {
        self.mem.as_ptr().wrapping_add(self.base)
    }

    fn check(&self, offset: usize, len: usize) -> Result<()> {
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(Error::Dma {
                what: "access outside the buffer",
                offset: offset as u64,
                len: len as u64,
            });
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes out, starting at `offset`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        self.mem.copy_out(self.base + offset, buf);
        Ok(())
    }

    /// Copies `data` in, starting at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check(offset, data.len())?;
        self.mem.copy_in(self.base + offset, data);
        Ok(())
    }

    /// Fills `len` bytes at `offset` with `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<()> {
        self.check(offset, len)?;
        self.mem.fill(self.base + offset, len, byte);
        Ok(())
    }

    /// Zeroes the whole slice.
    pub fn zero(&self) {
        self.mem.fill(self.base, self.len, 0);
    }

    /// Everything, copied out.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len];
        self.mem.copy_out(self.base, &mut v);
        v
    }

    /// Volatile read of a naturally aligned little-endian value (e.g. a
    /// completion entry's status word the device may be writing).
    pub fn read_le<W: Width>(&self, offset: usize) -> Result<W> {
        self.check(offset, W::BYTES)?;
        self.mem.read::<W>(self.base + offset).ok_or(Error::Dma {
            what: "misaligned access",
            offset: offset as u64,
            len: W::BYTES as u64,
        })
    }

    /// Volatile write of a naturally aligned little-endian value.
    pub fn write_le<W: Width>(&self, offset: usize, value: W) -> Result<()> {
        self.check(offset, W::BYTES)?;
        if self.mem.write(self.base + offset, value) {
            Ok(())
        } else {
            Err(Error::Dma {
                what: "misaligned access",
                offset: offset as u64,
                len: W::BYTES as u64,
            })
        }
    }

    /// Orders the CPU's earlier writes to DMA memory before any later store
    /// (such as a doorbell): call after filling, before notifying the device.
    pub fn sync_for_device(&self) {
        fence(Ordering::SeqCst);
    }

    /// Orders later reads after the observation that the device wrote (an
    /// interrupt or a phase bit read): call before reading what it wrote.
    pub fn sync_for_cpu(&self) {
        fence(Ordering::SeqCst);
    }
}

/// A DMA buffer mapped at an IOVA; unmapped from the device on drop.
#[derive(Debug)]
pub struct DmaBuffer {
    slice: DmaSlice,
    shared: Arc<Shared>,
    _fd: OwnedFd,
}

impl std::ops::Deref for DmaBuffer {
    type Target = DmaSlice;
    fn deref(&self) -> &DmaSlice {
        &self.slice
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // The IOMMU mapping goes first; the memory (`slice.mem`) after —
        // unless the device may still reach it: then it is never unmapped
        // from the process (a reference is leaked).
        if self.shared.unmap(self.slice.iova).is_err() {
            std::mem::forget(self.slice.mem.clone());
        }
    }
}

impl Device {
    /// Allocates a zeroed, coherent DMA buffer of at least `len` bytes
    /// (rounded up to whole pages), memfd-backed, mapped read-write for the
    /// device at a fresh IOVA.
    pub fn alloc_dma(&self, len: usize) -> Result<DmaBuffer> {
        let page = self.shared.page as usize;
        let rounded = len
            .checked_add(page - 1)
            .filter(|_| len > 0)
            .map(|l| l & !(page - 1))
            .ok_or(Error::Dma {
                what: "bad buffer length",
                offset: 0,
                len: len as u64,
            })?;
        let fd = rustix::fs::memfd_create("pcibox-dma", MemfdFlags::CLOEXEC)
            .map_err(|e| Error::os("memfd_create", e))?;
        rustix::fs::ftruncate(&fd, rounded as u64).map_err(|e| Error::os("ftruncate", e))?;
        self.map_file_at(fd, 0, rounded, true)
    }

    /// Maps `len` bytes of caller memory held in the file `fd` (a memfd or
    /// other shareable file) at `offset` (page aligned) for the device,
    /// read-write if `device_writable`. The kit maps the file into the
    /// process itself, so the buffer is valid for as long as it lives.
    pub fn map_memfd(
        &self,
        fd: OwnedFd,
        offset: u64,
        len: usize,
        device_writable: bool,
    ) -> Result<DmaBuffer> {
        let page = self.shared.page;
        if offset % page != 0 || len == 0 || len as u64 % page != 0 {
            return Err(Error::Dma {
                what: "offset and length must be whole pages",
                offset,
                len: len as u64,
            });
        }
        // The process mapping is always read-write so the CPU can fill it.
        self.map_file_at(fd, offset, len, device_writable)
    }

    #[allow(unsafe_code)]
    fn map_file_at(
        &self,
        fd: OwnedFd,
        offset: u64,
        len: usize,
        device_writable: bool,
    ) -> Result<DmaBuffer> {
        let mem = Mmap::map(fd.as_fd(), offset, len, true)?;
        // SAFETY: `mem` is a fresh shared mapping of `fd` at `offset`, owned
        // by the returned buffer, whose `Drop` unmaps the IOVA before its
        // fields (and so the mapping) are dropped; the kit reaches the memory
        // only through `Mmap`'s volatile accessors, never by reference.
        let iova = unsafe {
            self.shared.map(&DmaMemory {
                vaddr: mem.addr(),
                len: len as u64,
                fd: Some(fd.as_fd()),
                fd_offset: offset,
                device_writable,
            })
        }?;
        Ok(DmaBuffer {
            slice: DmaSlice {
                mem: Arc::new(mem),
                base: 0,
                len,
                iova,
            },
            shared: self.shared.clone(),
            _fd: fd,
        })
    }

    /// A pool of `count` buffers of `size` bytes each (`size` a power of two
    /// of at least 16; buffers never straddle a page if `size` ≤ page),
    /// carved from one DMA buffer.
    pub fn dma_pool(&self, size: usize, count: usize) -> Result<DmaPool> {
        let total = size.checked_mul(count).filter(|&t| t > 0);
        if !size.is_power_of_two() || size < 16 || total.is_none() {
            return Err(Error::Dma {
                what: "pool buffers must be a power of two ≥ 16 bytes, count ≥ 1",
                offset: size as u64,
                len: count as u64,
            });
        }
        let buf = self.alloc_dma(total.unwrap_or(0))?;
        Ok(DmaPool {
            inner: Arc::new(PoolInner {
                size,
                free: Mutex::new((0..count).rev().collect()),
                buf,
            }),
        })
    }
}

/// A pool of equal small DMA buffers. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct DmaPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    size: usize,
    free: Mutex<Vec<usize>>,
    buf: DmaBuffer,
}

/// One buffer from a [`DmaPool`]; returns to the pool on drop.
#[derive(Debug)]
pub struct PoolBuffer {
    slice: DmaSlice,
    slot: usize,
    pool: Arc<PoolInner>,
}

impl DmaPool {
    /// Takes a free buffer (zeroed), or `None` if all are in use.
    pub fn alloc(&self) -> Option<PoolBuffer> {
        let slot = self
            .inner
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()?;
        let p = &self.inner;
        let base = slot * p.size;
        let slice = DmaSlice {
            mem: p.buf.slice.mem.clone(),
            base,
            len: p.size,
            iova: p.buf.slice.iova + base as u64,
        };
        slice.zero();
        Some(PoolBuffer {
            slice,
            slot,
            pool: p.clone(),
        })
    }

    /// Size of each buffer.
    pub fn buffer_size(&self) -> usize {
        self.inner.size
    }

    /// Number of buffers currently free.
    pub fn available(&self) -> usize {
        self.inner
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl std::ops::Deref for PoolBuffer {
    type Target = DmaSlice;
    fn deref(&self) -> &DmaSlice {
        &self.slice
    }
}

impl Drop for PoolBuffer {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.slot);
    }
}

//! Shared memory mappings and volatile access to them — the kit's only
//! `unsafe` code besides the raw caller-memory DMA entry point.
//!
//! A [`Mmap`] owns one `mmap(MAP_SHARED)` of a file (a device region or a
//! memfd) and unmaps it on drop. All accessors check bounds and alignment
//! before touching memory, so they are safe to call.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use rustix::mm::{MapFlags, ProtFlags};
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

/// An integer width the kit can read and write in one access.
pub trait Width: Copy + Eq + std::fmt::Debug + Send + Sync + 'static + private::Sealed {
    /// Size in bytes.
    const BYTES: usize;
    /// From little-endian bytes (`b.len() == BYTES`).
    fn from_le(b: &[u8]) -> Self;
    /// To little-endian bytes, written to `b[..BYTES]`.
    fn to_le(self, b: &mut [u8]);
    /// Converts a value read natively from little-endian device memory.
    fn le_to_native(self) -> Self;
}

mod private {
    pub trait Sealed {}
}

macro_rules! width {
    ($t:ty) => {
        impl private::Sealed for $t {}
        impl Width for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::BYTES]);
                <$t>::from_le_bytes(a)
            }
            fn to_le(self, b: &mut [u8]) {
                b[..Self::BYTES].copy_from_slice(&self.to_le_bytes());
            }
            fn le_to_native(self) -> Self {
                <$t>::from_le(self)
            }
        }
    };
}
width!(u8);
width!(u16);
width!(u32);
width!(u64);

/// One shared mapping. `Send + Sync`: it is plain memory shared with a
/// device or a file; every access is volatile or an explicit copy.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is process-global memory; the struct holds no
// thread-bound state and all accesses go through volatile reads/writes or
// copies that the caller orders with fences.
unsafe impl Send for Mmap {}
// SAFETY: as above; `&Mmap` only allows volatile/copy accesses.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` at `offset`, shared, read-only or read-write.
    pub(crate) fn map(fd: BorrowedFd<'_>, offset: u64, len: usize, writable: bool) -> Result<Self> {
        if len == 0 {
            return Err(Error::Dma {
                what: "zero-length mapping",
                offset,
                len: 0,
            });
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a fresh mapping at an address the kernel chooses (null
        // hint) cannot alias any existing Rust object.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                MapFlags::SHARED,
                fd,
                offset,
            )
        }
        .map_err(|e| Error::os("mmap", e))?;
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(Error::Os {
            op: "mmap",
            source: std::io::Error::other("null mapping"),
        })?;
        Ok(Mmap { ptr, len })
    }

    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn check(&self, offset: usize, width: usize) -> bool {
        offset.checked_add(width).is_some_and(|end| end <= self.len) && offset % width == 0
    }

    /// Volatile read of one naturally aligned little-endian value; `None`
    /// if out of bounds or misaligned.
    pub(crate) fn read<W: Width>(&self, offset: usize) -> Option<W> {
        if !self.check(offset, W::BYTES) {
            return None;
        }
        // SAFETY: in bounds and aligned (checked above; the mapping is page
        // aligned), memory mapped for reading for the life of `self`.
        let v = unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(offset).cast::<W>()) };
        Some(v.le_to_native())
    }

    /// Volatile write of one naturally aligned little-endian value; `false`
    /// if out of bounds or misaligned.
    pub(crate) fn write<W: Width>(&self, offset: usize, value: W) -> bool {
        if !self.check(offset, W::BYTES) {
            return false;
        }
        // SAFETY: in bounds and aligned (checked), mapped writable (callers
        // only write to mappings they made writable; a read-only mapping
        // would fault, which the region code prevents by checking
        // `writable` first).
        unsafe {
            std::ptr::write_volatile(
                self.ptr.as_ptr().add(offset).cast::<W>(),
                value.le_to_native(),
            )
        };
        true
    }

    /// Copies out `buf.len()` bytes at `offset`; `false` if out of bounds.
    pub(crate) fn copy_out(&self, offset: usize, buf: &mut [u8]) -> bool {
        if offset
            .checked_add(buf.len())
            .is_none_or(|end| end > self.len)
        {
            return false;
        }
        // SAFETY: source range in bounds (checked); `buf` is a distinct Rust
        // allocation so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        true
    }

    /// Copies `data` in at `offset`; `false` if out of bounds.
    pub(crate) fn copy_in(&self, offset: usize, data: &[u8]) -> bool {
        if offset
            .checked_add(data.len())
            .is_none_or(|end| end > self.len)
        {
            return false;
        }
        // SAFETY: destination in bounds (checked) of a writable mapping;
        // `data` is a distinct Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len())
        };
        true
    }

    /// Fills `len` bytes at `offset` with `byte`; `false` if out of bounds.
    pub(crate) fn fill(&self, offset: usize, len: usize, byte: u8) -> bool {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: in bounds of a writable mapping (checked).
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(offset), byte, len) };
        true
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly one mapping made in `map`, not
        // unmapped before; no references into it outlive `self`.
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            tracing::warn!("munmap of {} bytes failed: {e}", self.len);
        }
    }
}

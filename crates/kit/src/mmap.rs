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
        // SAFETY: source range in bounds (checked) of a readable mapping.
        unsafe { volatile_copy_out(self.ptr.as_ptr().add(offset), buf) };
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
        // SAFETY: destination in bounds (checked) of a writable mapping.
        unsafe { volatile_copy_in(data, self.ptr.as_ptr().add(offset)) };
        true
    }

    /// Fills `len` bytes at `offset` with `byte`; `false` if out of bounds.
    pub(crate) fn fill(&self, offset: usize, len: usize, byte: u8) -> bool {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return false;
        }
        let block = [byte; 256];
        let mut at = offset;
        while at < offset + len {
            let n = (offset + len - at).min(block.len());
            // SAFETY: `at + n <= offset + len`, in bounds of a writable
            // mapping (checked).
            unsafe { volatile_copy_in(&block[..n], self.ptr.as_ptr().add(at)) };
            at += n;
        }
        true
    }
}

/// Copies `dst.len()` bytes from shared memory at `src` that a device (or
/// another process) may write concurrently: every load is volatile, so the
/// compiler neither assumes the memory is stable nor tears the copy into
/// something it could reorder or elide. Bytes up to the first 8-aligned
/// address, then 64-bit loads, then the tail.
///
/// # Safety
/// `src .. src + dst.len()` must be mapped readable for the whole call.
#[allow(unsafe_code)]
pub unsafe fn volatile_copy_out(src: *const u8, dst: &mut [u8]) {
    let len = dst.len();
    let head = src.align_offset(8).min(len);
    let words = (len - head) / 8;
    for (i, d) in dst[..head].iter_mut().enumerate() {
        // SAFETY: `i < len`, in bounds by the caller's contract.
        *d = unsafe { std::ptr::read_volatile(src.add(i)) };
    }
    for w in 0..words {
        let at = head + w * 8;
        // SAFETY: in bounds; `src + head` is 8-aligned, so every word is.
        let v = unsafe { std::ptr::read_volatile(src.add(at).cast::<u64>()) };
        dst[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }
    for (i, d) in dst.iter_mut().enumerate().skip(head + words * 8) {
        // SAFETY: `i < len`, in bounds.
        *d = unsafe { std::ptr::read_volatile(src.add(i)) };
    }
}

/// Copies `src` into shared memory at `dst` that a device (or another
/// process) may access concurrently, with volatile stores only; the
/// counterpart of [`volatile_copy_out`].
///
/// # Safety
/// `dst .. dst + src.len()` must be mapped writable for the whole call.
#[allow(unsafe_code)]
pub unsafe fn volatile_copy_in(src: &[u8], dst: *mut u8) {
    let len = src.len();
    let head = dst.align_offset(8).min(len);
    let words = (len - head) / 8;
    for (i, &b) in src[..head].iter().enumerate() {
        // SAFETY: `i < len`, in bounds by the caller's contract.
        unsafe { std::ptr::write_volatile(dst.add(i), b) };
    }
    for w in 0..words {
        let at = head + w * 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(&src[at..at + 8]);
        // SAFETY: in bounds; `dst + head` is 8-aligned, so every word is.
        unsafe { std::ptr::write_volatile(dst.add(at).cast::<u64>(), u64::from_ne_bytes(a)) };
    }
    for (i, &b) in src.iter().enumerate().skip(head + words * 8) {
        // SAFETY: `i < len`, in bounds.
        unsafe { std::ptr::write_volatile(dst.add(i), b) };
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

#[cfg(test)]
mod tests {
    use super::{volatile_copy_in, volatile_copy_out};
    use proptest::prelude::*;

    proptest! {
        /// The volatile copies move exactly the bytes `copy_from_slice`
        /// would, at every alignment and length (head, words, tail).
        #[test]
        fn volatile_copies_match_plain_copies(
            data in proptest::collection::vec(any::<u8>(), 0..100),
            at in 0usize..17,
        ) {
            let mut shared = vec![0xa5u8; 128];
            // SAFETY: `at + data.len() <= 116 < 128`: in bounds of `shared`,
            // which nothing else touches during the call.
            unsafe { volatile_copy_in(&data, shared.as_mut_ptr().add(at)) };
            let mut want = vec![0xa5u8; 128];
            want[at..at + data.len()].copy_from_slice(&data);
            prop_assert_eq!(&shared, &want);
            let mut out = vec![0u8; data.len()];
            // SAFETY: as above, reading.
            unsafe { volatile_copy_out(shared.as_ptr().add(at), &mut out) };
            prop_assert_eq!(out, data);
        }
    }
}

//! DMA windows: ranges of the device's IOVA space that the *caller* places
//! (a vfio-user client's DMA_MAP names its own IOVAs) instead of the kit's
//! allocator. A window is one address space with everything else the kit
//! maps on the device: it is reserved in the [`crate::IovaAllocator`], so
//! nothing the kit allocates later lands in it, and a window that overlaps
//! anything mapped, allocated or reserved is refused
//! ([`Error::IovaInUse`]).
//!
//! A reserved window is invisible to the device until it is backed by a
//! file ([`DmaWindow::map_file`]). Dropping it unmaps it from the device
//! first, then releases the process mapping and the IOVAs; if the backend
//! cannot unmap it, the mapping is leaked and the IOVAs stay reserved.
#![allow(unsafe_code)]

use crate::backend::DmaMemory;
use crate::device::{DeviceControl, Shared};
use crate::error::{Error, Result};
use crate::mmap::Mmap;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

/// A caller-placed range of the device's IOVA space; see the module docs.
#[derive(Debug)]
pub struct DmaWindow {
    shared: Arc<Shared>,
    iova: u64,
    len: u64,
    /// The process mapping of the backing file, once backed. The kit never
    /// reads or writes it: it only exists for the backend (which pins it).
    mem: Option<Mmap>,
}

impl DeviceControl {
    /// Reserves `len` bytes at `iova` (both page aligned) of the device's
    /// IOVA space for a window the caller places. Refused if the range is
    /// not inside the device's IOVA ranges ([`Error::IovaRange`]) or
    /// overlaps anything mapped, allocated or reserved
    /// ([`Error::IovaInUse`]). The device sees nothing there until
    /// [`DmaWindow::map_file`].
    pub fn reserve_window(&self, iova: u64, len: u64) -> Result<DmaWindow> {
        let sh = self.shared();
        let page = sh.page;
        if iova % page != 0 || len == 0 || len % page != 0 {
            return Err(Error::Dma {
                what: "window address and length must be whole pages",
                offset: iova,
                len,
            });
        }
        let mut st = sh.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        if !st.iova.in_ranges(iova, len) {
            return Err(Error::IovaRange { iova, len });
        }
        if !st.iova.reserve(iova, len) {
            return Err(Error::IovaInUse { iova, len });
        }
        Ok(DmaWindow {
            shared: sh.clone(),
            iova,
            len,
            mem: None,
        })
    }
}

impl DmaWindow {
    /// The device's address of the first byte.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true (windows are at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True once the device sees memory in the window.
    pub fn is_mapped(&self) -> bool {
        self.mem.is_some()
    }

    /// Backs the window with the file `fd` from `offset` (page aligned; the
    /// file must hold the whole window) and makes it visible to the device,
    /// which may also write it if `device_writable`. The kit maps the file
    /// into this process itself (writable only if the device may write) and
    /// never touches that memory: reach it through the file (`pread`,
    /// `pwrite`). A window is backed at most once.
    pub fn map_file(
        &mut self,
        fd: BorrowedFd<'_>,
        offset: u64,
        device_writable: bool,
    ) -> Result<()> {
        let bad = |what| Error::Dma {
            what,
            offset: self.iova,
            len: self.len,
        };
        if self.mem.is_some() {
            return Err(bad("window already backed"));
        }
        if offset % self.shared.page != 0 {
            return Err(bad("file offset must be whole pages"));
        }
        let len = usize::try_from(self.len).map_err(|_| bad("window too large"))?;
        let mem = Mmap::map(fd, offset, len, device_writable)?;
        let mut st = self.shared.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        // SAFETY: `mem` is a fresh shared mapping of `fd` at `offset`, owned
        // by this window, whose `Drop` unmaps the IOVA before the mapping
        // is released (and leaks the mapping if that unmap fails); nothing
        // reads or writes the memory through it. The IOVA range is this
        // window's reservation, so no live mapping is replaced.
        unsafe {
            self.shared.backend.dma_map(
                self.iova,
                &DmaMemory {
                    vaddr: mem.addr(),
                    len: self.len,
                    fd: Some(fd),
                    fd_offset: offset,
                    device_writable,
                },
            )
        }?;
        st.maps.insert(self.iova, self.len);
        drop(st);
        self.mem = Some(mem);
        Ok(())
    }
}

impl DmaWindow {
    /// Drops the window now, telling whether the backend unmapped it (an
    /// unbacked window always goes). On an error the device may still reach
    /// the memory: its mapping is leaked and its IOVAs stay reserved.
    pub fn release(mut self) -> Result<()> {
        self.release_now()
    }

    fn release_now(&mut self) -> Result<()> {
        // Released once: `Drop` has nothing left to do afterwards.
        let len = std::mem::take(&mut self.len);
        if let Some(mem) = self.mem.take() {
            // Unmapped from the device (and the IOVAs freed) first, unless
            // the device may still reach the memory: then it stays mapped
            // and the IOVAs reserved.
            if let Err(e) = self.shared.unmap(self.iova) {
                std::mem::forget(mem);
                return Err(e);
            }
        } else if len > 0 {
            self.shared.lock().iova.free(self.iova, len);
        }
        Ok(())
    }
}

impl Drop for DmaWindow {
    fn drop(&mut self) {
        // A failure is logged where it happens.
        let _ = self.release_now();
    }
}

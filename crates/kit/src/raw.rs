//! Mapping arbitrary caller memory for DMA, for callers that manage the
//! memory themselves. Unsafe: the kit cannot know how long it lives.
#![allow(unsafe_code)]

use crate::backend::DmaMemory;
use crate::device::{Device, Shared};
use crate::error::{Error, Result};
use std::sync::Arc;

/// A mapping of caller memory at an IOVA; unmapped from the device on drop.
#[derive(Debug)]
pub struct DmaMapping {
    shared: Arc<Shared>,
    iova: u64,
    len: u64,
}

impl DmaMapping {
    /// The device's address of the first byte.
    pub fn iova(&self) -> u64 {
        self.iova
    }
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Never true (mappings are at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for DmaMapping {
    fn drop(&mut self) {
        // On failure the device keeps access to the caller's memory; the
        // kit cannot hold it back from the caller, and logs an error.
        let _ = self.shared.unmap(self.iova);
    }
}

impl Shared {
    /// Allocates an IOVA for `mem` and maps it; records the mapping.
    ///
    /// # Safety
    /// As [`crate::Backend::dma_map`]: the memory stays valid and reserved
    /// for the device until [`Shared::unmap`] of the returned IOVA (or the
    /// `Device`'s teardown) has unmapped it.
    pub(crate) unsafe fn map(&self, mem: &DmaMemory<'_>) -> Result<u64> {
        let mut st = self.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        let iova = st
            .iova
            .alloc(mem.len, self.page)
            .ok_or(Error::IovaExhausted { len: mem.len })?;
        // SAFETY: the caller's contract is the backend's; the IOVA is fresh
        // from this device's allocator, so no live mapping is replaced.
        if let Err(e) = unsafe { self.backend.dma_map(iova, mem) } {
            st.iova.free(iova, mem.len);
            return Err(e);
        }
        st.maps.insert(iova, mem.len);
        Ok(iova)
    }
}

impl Device {
    /// Makes `len` bytes of process memory at `vaddr` (both page aligned)
    /// visible to the device at a fresh IOVA.
    ///
    /// # Safety
    /// The memory must stay allocated (not freed, unmapped or remapped),
    /// writable if `device_writable`, and must not be used for anything the device must not see or change until
    /// the returned [`DmaMapping`] is dropped. Forgetting the mapping
    /// (`mem::forget`) keeps the device's access alive; the memory must then
    /// never be freed while the `Device` lives. With `device_writable` the
    /// device may write the memory at any time, so Rust references to it
    /// must not exist while the device is active.
    pub unsafe fn map_raw(
        &self,
        vaddr: *mut u8,
        len: usize,
        device_writable: bool,
    ) -> Result<DmaMapping> {
        let page = self.shared.page as usize;
        let addr = vaddr as usize;
        if addr % page != 0 || len == 0 || len % page != 0 {
            return Err(Error::Dma {
                what: "address and length must be whole pages",
                offset: addr as u64,
                len: len as u64,
            });
        }
        // SAFETY: forwarded to our caller (this function's contract); the
        // returned `DmaMapping` unmaps on drop.
        let iova = unsafe {
            self.shared.map(&DmaMemory {
                vaddr: addr,
                len: len as u64,
                fd: None,
                fd_offset: 0,
                device_writable,
            })
        }?;
        Ok(DmaMapping {
            shared: self.shared.clone(),
            iova,
            len: len as u64,
        })
    }
}

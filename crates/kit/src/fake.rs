//! An in-memory fake backend for unit tests (feature `fake`).
//!
//! Regions are memfds, so the mapped and read/write paths see the same
//! bytes. The test keeps a clone of the [`Fake`] to act as the device:
//! raise interrupts, do DMA (which fails — an "IOMMU fault" — at IOVAs not
//! mapped), and inspect what the kit did (mappings, enabled interrupts,
//! resets).

use crate::backend::{Backend, DmaMemory, IrqInfo, IrqKind, RegionInfo};
use crate::error::{Error, Result};
use rustix::fs::MemfdFlags;
use std::collections::BTreeMap;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// The fake device. Clones share state.
#[derive(Debug, Clone)]
pub struct Fake {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    regions: Vec<FakeRegion>,
    irq_counts: [u32; 3],
    state: Mutex<State>,
}

#[derive(Debug)]
struct FakeRegion {
    index: u32,
    size: u64,
    mem: OwnedFd,
    mappable: Vec<Range<u64>>,
}

#[derive(Debug, Default)]
struct State {
    config: Vec<u8>,
    irq: Option<IrqKind>,
    irq_fds: Vec<Option<OwnedFd>>,
    masked: Vec<bool>,
    pending: Vec<bool>,
    maps: BTreeMap<u64, FakeMap>,
    faults: u64,
    resets: u64,
    region_traps: u64,
    /// DMA unmaps fail (as an IOMMU whose unmap errs).
    fail_unmap: bool,
}

#[derive(Debug)]
struct FakeMap {
    len: u64,
    fd: Option<OwnedFd>,
    fd_offset: u64,
    writable: bool,
}

fn kind_index(kind: IrqKind) -> usize {
    match kind {
        IrqKind::Intx => 0,
        IrqKind::Msi => 1,
        IrqKind::Msix => 2,
    }
}

fn fail(what: impl Into<String>) -> Error {
    Error::Backend(what.into().into())
}

impl Fake {
    /// A device with the given IDs, 256 bytes of config space, no regions
    /// and no interrupts.
    pub fn new(vendor: u16, device: u16) -> Self {
        let mut config = vec![0u8; 256];
        config[0..2].copy_from_slice(&vendor.to_le_bytes());
        config[2..4].copy_from_slice(&device.to_le_bytes());
        Fake {
            inner: Arc::new(Inner {
                name: format!("fake:{vendor:04x}:{device:04x}"),
                regions: Vec::new(),
                irq_counts: [0; 3],
                state: Mutex::new(State {
                    config,
                    ..State::default()
                }),
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner)
            .unwrap_or_else(|| panic!("configure the fake before cloning it"))
    }

    /// Adds region `index` of `size` bytes whose `mappable` parts may be
    /// mapped. Call before cloning.
    pub fn with_region(mut self, index: u32, size: u64, mappable: Vec<Range<u64>>) -> Self {
        let mem = rustix::fs::memfd_create("fake-region", MemfdFlags::CLOEXEC)
            .unwrap_or_else(|e| panic!("memfd: {e}"));
        rustix::fs::ftruncate(&mem, size).unwrap_or_else(|e| panic!("ftruncate: {e}"));
        self.inner_mut().regions.push(FakeRegion {
            index,
            size,
            mem,
            mappable,
        });
        self
    }

    /// Offers `count` vectors of `kind`. Call before cloning.
    pub fn with_irqs(mut self, kind: IrqKind, count: u32) -> Self {
        self.inner_mut().irq_counts[kind_index(kind)] = count;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn region(&self, index: u32) -> Result<&FakeRegion> {
        self.inner
            .regions
            .iter()
            .find(|r| r.index == index)
            .ok_or_else(|| fail("no region"))
    }

    /// Device side: writes region memory directly (like the device
    /// changing a register).
    pub fn poke(&self, index: u32, offset: u64, data: &[u8]) {
        if let Ok(r) = self.region(index) {
            let _ = rustix::io::pwrite(&r.mem, data, offset);
        }
    }

    /// Device side: raises vector `index` of the enabled kind. Returns true
    /// if it was signalled, false if masked (then pending) or not enabled.
    /// INTx masks itself when it fires until the driver unmasks it.
    pub fn trigger(&self, index: usize) -> bool {
        let mut st = self.lock();
        let Some(kind) = st.irq else {
            return false;
        };
        if index >= st.irq_fds.len() {
            return false;
        }
        if st.masked[index] {
            st.pending[index] = true;
            return false;
        }
        if kind == IrqKind::Intx {
            st.masked[index] = true;
        }
        match &st.irq_fds[index] {
            Some(fd) => rustix::io::write(fd, &1u64.to_ne_bytes()).is_ok(),
            None => false,
        }
    }

    fn find_map(&self, st: &State, iova: u64, len: u64) -> Option<(u64, u64)> {
        let (&start, m) = st.maps.range(..=iova).next_back()?;
        (iova + len <= start + m.len).then_some((start, m.fd_offset + iova - start))
    }

    /// Device side: DMA write. Fails (counting an IOMMU fault) unless the
    /// whole range lies in one writable mapping with a backing file.
    pub fn dma_write(&self, iova: u64, data: &[u8]) -> Result<(), String> {
        let mut st = self.lock();
        let found = self.find_map(&st, iova, data.len() as u64);
        let target = found.and_then(|(start, off)| {
            let m = &st.maps[&start];
            m.writable.then_some(())?;
            m.fd.as_ref().map(|fd| (fd.try_clone(), off))
        });
        match target {
            Some((Ok(fd), off)) => rustix::io::pwrite(&fd, data, off)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => {
                st.faults += 1;
                Err(format!("IOMMU fault at {iova:#x}"))
            }
        }
    }

    /// Device side: DMA read.
    pub fn dma_read(&self, iova: u64, len: usize) -> Result<Vec<u8>, String> {
        let mut st = self.lock();
        let target = self
            .find_map(&st, iova, len as u64)
            .and_then(|(start, off)| st.maps[&start].fd.as_ref().map(|fd| (fd.try_clone(), off)));
        match target {
            Some((Ok(fd), off)) => {
                let mut v = vec![0u8; len];
                rustix::io::pread(&fd, &mut v, off).map_err(|e| e.to_string())?;
                Ok(v)
            }
            _ => {
                st.faults += 1;
                Err(format!("IOMMU fault at {iova:#x}"))
            }
        }
    }

    /// Number of live DMA mappings.
    pub fn mapping_count(&self) -> usize {
        self.lock().maps.len()
    }
    /// From now on every DMA unmap fails (or, with `false`, works again).
    pub fn fail_dma_unmap(&self, fail: bool) {
        self.lock().fail_unmap = fail;
    }
    /// DMA accesses refused so far.
    pub fn faults(&self) -> u64 {
        self.lock().faults
    }
    /// The enabled interrupt kind.
    pub fn irq_enabled(&self) -> Option<IrqKind> {
        self.lock().irq
    }
    /// Resets so far.
    pub fn resets(&self) -> u64 {
        self.lock().resets
    }
    /// Region accesses that went through the read/write path.
    pub fn region_traps(&self) -> u64 {
        self.lock().region_traps
    }
    /// Config space bytes as the device holds them.
    pub fn config(&self) -> Vec<u8> {
        self.lock().config.clone()
    }
}

impl Backend for Fake {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn config_len(&self) -> usize {
        256
    }

    fn config_read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let st = self.lock();
        let src = st
            .config
            .get(offset..offset + buf.len())
            .ok_or_else(|| fail("config read out of range"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn config_write(&self, offset: usize, data: &[u8]) -> Result<()> {
        let mut st = self.lock();
        for (i, b) in data.iter().enumerate() {
            // IDs are read-only, like real hardware.
            if offset + i >= 4 {
                if let Some(dst) = st.config.get_mut(offset + i) {
                    *dst = *b;
                }
            }
        }
        Ok(())
    }

    fn region_info(&self, index: u32) -> Result<Option<RegionInfo>> {
        Ok(self.region(index).ok().map(|r| RegionInfo {
            index,
            size: r.size,
            readable: true,
            writable: true,
            mmap_areas: r.mappable.clone(),
            mmap_offset: 0,
            msix_mappable: false,
            io_port: false,
        }))
    }

    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r = self.region(index)?;
        self.lock().region_traps += 1;
        rustix::io::pread(&r.mem, buf, offset).map_err(|e| Error::os("pread", e))?;
        Ok(())
    }

    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<()> {
        let r = self.region(index)?;
        self.lock().region_traps += 1;
        rustix::io::pwrite(&r.mem, data, offset).map_err(|e| Error::os("pwrite", e))?;
        Ok(())
    }

    fn region_mmap_fd(&self, index: u32) -> Result<BorrowedFd<'_>> {
        Ok(self.region(index)?.mem.as_fd())
    }

    fn irq_info(&self, kind: IrqKind) -> Result<IrqInfo> {
        Ok(IrqInfo {
            count: self.inner.irq_counts[kind_index(kind)],
            eventfd: true,
            maskable: true,
            automasked: kind == IrqKind::Intx,
            noresize: true,
        })
    }

    fn irq_enable(&self, kind: IrqKind, fds: &[BorrowedFd<'_>]) -> Result<()> {
        let mut st = self.lock();
        if st.irq.is_some() {
            return Err(fail("interrupts already enabled"));
        }
        let mut owned = Vec::new();
        for fd in fds {
            owned.push(Some(
                fd.try_clone_to_owned().map_err(|e| Error::os("dup", e))?,
            ));
        }
        st.irq = Some(kind);
        st.masked = vec![false; owned.len()];
        st.pending = vec![false; owned.len()];
        st.irq_fds = owned;
        Ok(())
    }

    fn irq_disable(&self, kind: IrqKind) -> Result<()> {
        let mut st = self.lock();
        if st.irq != Some(kind) {
            return Err(fail("not enabled"));
        }
        st.irq = None;
        st.irq_fds.clear();
        Ok(())
    }

    fn irq_mask(&self, kind: IrqKind, index: u32, _fd: BorrowedFd<'_>) -> Result<()> {
        let mut st = self.lock();
        if st.irq != Some(kind) {
            return Err(fail("not enabled"));
        }
        let m = st
            .masked
            .get_mut(index as usize)
            .ok_or_else(|| fail("bad vector"))?;
        *m = true;
        Ok(())
    }

    fn irq_unmask(&self, kind: IrqKind, index: u32, _fd: BorrowedFd<'_>) -> Result<()> {
        let i = index as usize;
        let pending = {
            let mut st = self.lock();
            if st.irq != Some(kind) || i >= st.masked.len() {
                return Err(fail("not enabled"));
            }
            st.masked[i] = false;
            std::mem::take(&mut st.pending[i])
        };
        if pending {
            self.trigger(i);
        }
        Ok(())
    }

    fn iova_ranges(&self) -> Result<Vec<Range<u64>>> {
        #[allow(clippy::single_range_in_vec_init)]
        Ok(vec![0..(1 << 39)])
    }

    #[allow(unsafe_code)] // implements the trait's contract; see `Backend::dma_map`
    unsafe fn dma_map(&self, iova: u64, mem: &DmaMemory<'_>) -> Result<()> {
        let fd = match mem.fd {
            Some(fd) => Some(fd.try_clone_to_owned().map_err(|e| Error::os("dup", e))?),
            None => None,
        };
        let mut st = self.lock();
        if st
            .maps
            .range(..iova + mem.len)
            .next_back()
            .is_some_and(|(&s, m)| s + m.len > iova)
        {
            return Err(fail("overlapping DMA mapping"));
        }
        st.maps.insert(
            iova,
            FakeMap {
                len: mem.len,
                fd,
                fd_offset: mem.fd_offset,
                writable: mem.device_writable,
            },
        );
        Ok(())
    }

    fn dma_unmap(&self, iova: u64, len: u64) -> Result<()> {
        let mut st = self.lock();
        if st.fail_unmap {
            return Err(fail("DMA unmap failure (injected)"));
        }
        match st.maps.get(&iova) {
            Some(m) if m.len == len => {
                st.maps.remove(&iova);
                Ok(())
            }
            _ => Err(fail("unmap of a range never mapped")),
        }
    }

    fn reset(&self) -> Result<()> {
        self.lock().resets += 1;
        Ok(())
    }
}

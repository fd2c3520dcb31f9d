//! [`DmaSpace`]: the model's IOMMU. The driver's side maps windows into it
//! through [`pcibox_kit::Backend::dma_map`]; the model reads and writes
//! driver memory only at IOVAs inside one window, and everything else is a
//! fault, counted like an IOMMU's.
//!
//! A window with a file (every kit buffer, every vfio-user client window)
//! is reached with `pread`/`pwrite` on the file, never through the process
//! mapping, so a peer that shrinks its file cannot make the model fault. A
//! window without one (`Device::map_raw`) is reached through its process
//! address with volatile copies ([`pcibox_kit::volatile_copy_in`] /
//! [`volatile_copy_out`](pcibox_kit::volatile_copy_out)), since the driver
//! may be using the memory at the same time.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::memory::{read_at, write_at};
use pcibox_kit::DmaMemory;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// The driver memory a model may reach, by IOVA. Clones share the windows.
#[derive(Debug, Clone, Default)]
pub struct DmaSpace {
    inner: Arc<Mutex<Windows>>,
}

#[derive(Debug, Default)]
struct Windows {
    /// Start IOVA → window; windows never overlap.
    map: BTreeMap<u64, Window>,
    faults: u64,
    /// Unmaps fail (fault injection for tests of the callers' leak paths).
    fail_unmap: bool,
}

#[derive(Debug)]
struct Window {
    len: u64,
    vaddr: usize,
    fd: Option<OwnedFd>,
    fd_offset: u64,
    writable: bool,
}

/// The direction of a device access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Read => "read",
            Dir::Write => "write",
        }
    }
}

/// Where an access lands: in the window's file at an offset, or at a
/// process address.
enum Place<'a> {
    /// Reached with `pread`/`pwrite`.
    File(BorrowedFd<'a>, u64),
    /// Reached with volatile copies. The whole access lies inside a window,
    /// and the windows stay locked while the place is used: by `map`'s
    /// contract the memory stays mapped until `unmap` returns, and `unmap`
    /// needs that lock, so the memory is mapped for the whole access.
    Memory(usize),
}

/// An access's window and its offset in it.
struct Target<'a> {
    window: &'a Window,
    offset: u64,
}

impl Windows {
    /// The window holding all of `iova .. iova + len`, or why there is none
    /// (the fault is counted).
    fn find(&mut self, dir: Dir, iova: u64, len: usize) -> Result<Target<'_>> {
        let hit = self
            .map
            .range(..=iova)
            .next_back()
            .filter(|(&start, w)| {
                iova.checked_add(len as u64)
                    .is_some_and(|end| end <= start + w.len)
            })
            .map(|(&start, _)| start);
        let why = match hit {
            None => "not inside one mapped window",
            Some(start) if dir == Dir::Write && !self.map[&start].writable => {
                "the window is read-only for the device"
            }
            Some(start) => {
                let window = &self.map[&start];
                return Ok(Target {
                    window,
                    offset: iova - start,
                });
            }
        };
        self.faults += 1;
        Err(Error::DmaFault {
            access: dir.name(),
            iova,
            len,
            why,
        })
    }
}

impl DmaSpace {
    /// An empty space: every access faults until the driver maps a window.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Windows> {
        // Every mutation is one insert or remove: a panic leaves it whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `mem` reachable at `iova`. Refuses empty windows, windows that
    /// wrap around the address space and windows overlapping another.
    ///
    /// # Safety
    /// The contract of [`pcibox_kit::Backend::dma_map`]: the memory stays
    /// mapped (writable, if `mem.device_writable`) and reserved for the
    /// device until [`DmaSpace::unmap`] of this window has returned.
    pub(crate) unsafe fn map(&self, iova: u64, mem: &DmaMemory<'_>) -> Result<()> {
        let bad = |why| Error::DmaWindow {
            op: "map",
            iova,
            len: mem.len,
            why,
        };
        let end = iova
            .checked_add(mem.len)
            .filter(|_| mem.len > 0)
            .ok_or(bad("empty or wrapping around"))?;
        let fd = match mem.fd {
            Some(fd) => Some(fd.try_clone_to_owned().map_err(|e| Error::os("dup", e))?),
            None => None,
        };
        let mut st = self.lock();
        if st
            .map
            .range(..end)
            .next_back()
            .is_some_and(|(&s, w)| s + w.len > iova)
        {
            return Err(bad("overlaps a mapped window"));
        }
        st.map.insert(
            iova,
            Window {
                len: mem.len,
                vaddr: mem.vaddr,
                fd,
                fd_offset: mem.fd_offset,
                writable: mem.device_writable,
            },
        );
        Ok(())
    }

    /// Removes the window mapped at `iova` with `len` bytes. Once this
    /// returns, the model can no longer reach the memory.
    pub(crate) fn unmap(&self, iova: u64, len: u64) -> Result<()> {
        let bad = |why| Error::DmaWindow {
            op: "unmap",
            iova,
            len,
            why,
        };
        let mut st = self.lock();
        if st.fail_unmap {
            return Err(bad("refused (injected failure)"));
        }
        match st.map.get(&iova) {
            Some(w) if w.len == len => {
                st.map.remove(&iova);
                Ok(())
            }
            _ => Err(bad("no window mapped there with that length")),
        }
    }

    /// Removes every window, whatever `fail_unmap` says (the backend is
    /// gone).
    pub(crate) fn clear(&self) {
        self.lock().map.clear();
    }

    /// From now on every unmap fails (or, with `false`, works again), as an
    /// IOMMU whose unmap errs: for tests of what callers do then.
    pub(crate) fn fail_unmap(&self, fail: bool) {
        self.lock().fail_unmap = fail;
    }

    /// Runs one access of `len` bytes at `iova` with the windows locked:
    /// `f` gets where it lands.
    fn access(
        &self,
        dir: Dir,
        iova: u64,
        len: usize,
        f: impl FnOnce(Place<'_>) -> std::io::Result<()>,
    ) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let mut st = self.lock();
        let t = st.find(dir, iova, len)?;
        let w = t.window;
        let place = match &w.fd {
            Some(fd) => Place::File(fd.as_fd(), w.fd_offset + t.offset),
            None => Place::Memory(w.vaddr + t.offset as usize),
        };
        f(place).map_err(|source| Error::Os {
            op: match dir {
                Dir::Read => "DMA read (pread)",
                Dir::Write => "DMA write (pwrite)",
            },
            source,
        })
    }

    /// Device side: reads `buf.len()` bytes of driver memory at `iova`. An
    /// access outside one window is a fault.
    pub fn read(&self, iova: u64, buf: &mut [u8]) -> Result<()> {
        self.access(Dir::Read, iova, buf.len(), |place| match place {
            Place::File(fd, at) => read_at(fd, at, buf),
            Place::Memory(addr) => {
                // SAFETY: see `Place::Memory`; the driver may write the
                // memory concurrently, hence a volatile copy.
                unsafe { pcibox_kit::volatile_copy_out(addr as *const u8, buf) };
                Ok(())
            }
        })
    }

    /// Device side: writes `data` to driver memory at `iova`. An access
    /// outside one window, or into a window the driver mapped read-only for
    /// the device, is a fault.
    pub fn write(&self, iova: u64, data: &[u8]) -> Result<()> {
        self.access(Dir::Write, iova, data.len(), |place| match place {
            Place::File(fd, at) => write_at(fd, at, data),
            Place::Memory(addr) => {
                // SAFETY: see `Place::Memory`; the window is device-writable
                // (`find` checked), so its memory is mapped writable.
                unsafe { pcibox_kit::volatile_copy_in(data, addr as *mut u8) };
                Ok(())
            }
        })
    }

    /// Device side: `len` bytes of driver memory at `iova`, copied out.
    pub fn read_vec(&self, iova: u64, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0; len];
        self.read(iova, &mut v)?;
        Ok(v)
    }

    /// Number of mapped windows.
    pub fn window_count(&self) -> usize {
        self.lock().map.len()
    }

    /// Accesses refused so far (IOMMU faults).
    pub fn faults(&self) -> u64 {
        self.lock().faults
    }
}

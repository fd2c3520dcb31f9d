//! Client memory the server may reach: the DMA windows of DMA_MAP.
//!
//! A window with a file descriptor is mapped into the server (for the
//! backend, which makes it visible to the device at the client's IOVA — for
//! VFIO, through the IOMMU) and read/written in software with `pread`/`pwrite`
//! on the descriptor, never through the mapping, so a client that shrinks
//! its file cannot make the server fault. A window without a descriptor is
//! reached only with DMA_READ/DMA_WRITE messages over the twin socket.
//! Every access is checked against one window's bounds and permissions.
#![allow(unsafe_code)]

use crate::sock::{send_message, MessageReader};
use crate::Error;
use pcibox_kit::{Backend, Chain, DmaMemory};
use rustix::mm::{MapFlags, ProtFlags};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use vfio_user_wire::{
    errno, DmaAccessRepr, DmaMapRepr, Kind, Reply, Request, DMA_FLAG_READ, DMA_FLAG_WRITE,
    MAX_DATA_XFER_SIZE,
};

/// Most DMA windows one client may have at a time (advertised as
/// `max_dma_maps`).
pub const MAX_DMA_WINDOWS: u32 = 1024;

/// The DMA page size (advertised as `pgsizes`): windows are page aligned.
pub const DMA_PAGE: u64 = 4096;

/// A shared mapping of client memory in the server.
#[derive(Debug)]
struct Mapping {
    addr: *mut core::ffi::c_void,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; the pointer
// is only handed to the backend (which pins it) and unmapped on drop.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` come from a successful mmap owned by this value
        // and nothing else references the mapping (the backend unmapped it
        // from the device first).
        if let Err(e) = unsafe { rustix::mm::munmap(self.addr, self.len) } {
            tracing::warn!("munmap of a DMA window failed: {e}");
        }
    }
}

/// Takes a window away from the device (if the backend mapped it there);
/// `EIO` if the backend cannot.
fn release(backend: &dyn Backend, iova: u64, w: Window) -> Result<(), u32> {
    if w.device_mapped {
        if let Err(e) = backend.dma_unmap(iova, w.len) {
            tracing::error!(
                "DMA unmap {iova:#x}+{:#x}, its mapping is leaked: {}",
                w.len,
                Chain(&e)
            );
            // The device may still reach the memory: never munmap it.
            std::mem::forget(w);
            return Err(errno::EIO);
        }
    }
    Ok(())
}

/// One window of client memory.
#[derive(Debug)]
struct Window {
    len: u64,
    flags: u32,
    fd: Option<OwnedFd>,
    fd_offset: u64,
    /// Present when the backend maps the window for the device.
    _map: Option<Mapping>,
    device_mapped: bool,
}

/// The windows and the server→client channel of the current client.
#[derive(Debug, Default)]
pub(crate) struct DmaState {
    windows: BTreeMap<u64, Window>,
    /// The twin socket, with the reader that keeps its read-ahead.
    twin: Option<(UnixStream, MessageReader)>,
    peer_max_xfer: u32,
    next_id: u16,
}

/// A handle through which a device model in the server reads and writes the
/// client's memory at IOVAs the client mapped. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct ServerDma {
    pub(crate) state: Arc<Mutex<DmaState>>,
}

fn errno_of(e: &rustix::io::Errno) -> u32 {
    e.raw_os_error() as u32
}

impl ServerDma {
    pub(crate) fn lock(&self) -> MutexGuard<'_, DmaState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs the channel of a new client.
    pub(crate) fn start_session(&self, twin: Option<UnixStream>, peer_max_xfer: u32) {
        let mut st = self.lock();
        st.twin = twin.map(|t| (t, MessageReader::new()));
        st.peer_max_xfer = peer_max_xfer.clamp(1, MAX_DATA_XFER_SIZE);
    }

    /// Number of live windows.
    pub fn window_count(&self) -> usize {
        self.lock().windows.len()
    }

    /// DMA_MAP: validates and installs a window; `Err(errno)` otherwise.
    pub(crate) fn map(
        &self,
        backend: &dyn Backend,
        r: &DmaMapRepr,
        fd: Option<OwnedFd>,
    ) -> Result<(), u32> {
        if !r.address.is_multiple_of(DMA_PAGE)
            || !r.size.is_multiple_of(DMA_PAGE)
            || !r.offset.is_multiple_of(DMA_PAGE)
        {
            return Err(errno::EINVAL);
        }
        let end = r.address.checked_add(r.size).ok_or(errno::EINVAL)?;
        let ranges = backend.iova_ranges().map_err(|_| errno::EIO)?;
        if !ranges.iter().any(|g| g.start <= r.address && end <= g.end) {
            return Err(errno::ERANGE);
        }
        let mut st = self.lock();
        if st.windows.len() >= MAX_DMA_WINDOWS as usize {
            return Err(errno::ENOSPC);
        }
        // Overlap with the window starting at or below `end`.
        if let Some((&s, w)) = st.windows.range(..end).next_back() {
            if s + w.len > r.address {
                return Err(errno::EEXIST);
            }
        }
        let writable = r.flags & DMA_FLAG_WRITE != 0;
        let (map, device_mapped) = match &fd {
            None => (None, false),
            Some(fd) => {
                // Only a regular file (memfd, shm) big enough for the window.
                let st_ = rustix::fs::fstat(fd).map_err(|e| errno_of(&e))?;
                let regular = rustix::fs::FileType::from_raw_mode(st_.st_mode)
                    == rustix::fs::FileType::RegularFile;
                let fd_end = r.offset.checked_add(r.size).ok_or(errno::EINVAL)?;
                if !regular || (st_.st_size as u64) < fd_end {
                    return Err(errno::EINVAL);
                }
                let len = usize::try_from(r.size).map_err(|_| errno::EINVAL)?;
                let mut prot = ProtFlags::READ;
                if writable {
                    prot |= ProtFlags::WRITE;
                }
                // SAFETY: a fresh shared mapping of a regular file at an
                // address the kernel picks; it aliases no Rust object and is
                // owned by the returned `Mapping`.
                let addr = unsafe {
                    rustix::mm::mmap(
                        core::ptr::null_mut(),
                        len,
                        prot,
                        MapFlags::SHARED,
                        fd,
                        r.offset,
                    )
                }
                .map_err(|e| errno_of(&e))?;
                let map = Mapping { addr, len };
                // SAFETY: `map` is a fresh shared mapping of `fd` at
                // `r.offset`, owned by the window inserted below; a window
                // is dropped only after the backend unmapped it (or, if that
                // fails, its mapping is leaked), and the server never reads
                // or writes through it (pread/pwrite on the fd instead).
                unsafe {
                    backend.dma_map(
                        r.address,
                        &DmaMemory {
                            vaddr: addr as usize,
                            len: r.size,
                            fd: Some(fd.as_fd()),
                            fd_offset: r.offset,
                            device_writable: writable,
                        },
                    )
                }
                .map_err(|e| {
                    tracing::warn!("DMA map {:#x}+{:#x}: {}", r.address, r.size, Chain(&e));
                    errno::EIO
                })?;
                (Some(map), true)
            }
        };
        st.windows.insert(
            r.address,
            Window {
                len: r.size,
                flags: r.flags,
                fd,
                fd_offset: r.offset,
                _map: map,
                device_mapped,
            },
        );
        Ok(())
    }

    /// DMA_UNMAP: removes exactly one window as it was mapped.
    pub(crate) fn unmap(&self, backend: &dyn Backend, address: u64, size: u64) -> Result<(), u32> {
        let mut st = self.lock();
        match st.windows.get(&address) {
            Some(w) if w.len == size => {}
            _ => return Err(errno::ENOENT),
        }
        let w = st.windows.remove(&address).ok_or(errno::ENOENT)?;
        release(backend, address, w)
    }

    /// DMA_UNMAP with `DMA_UNMAP_FLAG_ALL`: removes every window of the
    /// client (having none is fine). As with a single unmap, a window is
    /// forgotten even if the backend fails to release it (its mapping is
    /// then leaked); the answer is then `EIO`.
    pub(crate) fn unmap_all(&self, backend: &dyn Backend) -> Result<(), u32> {
        let windows = std::mem::take(&mut self.lock().windows);
        let mut result = Ok(());
        for (iova, w) in windows {
            if let Err(e) = release(backend, iova, w) {
                result = Err(e);
            }
        }
        result
    }

    /// Drops every window and the channel (client gone).
    pub(crate) fn end_session(&self, backend: &dyn Backend) {
        // Failures are logged by `release`; the client is gone either way.
        let _ = self.unmap_all(backend);
        self.lock().twin = None;
    }

    /// Reads client memory at `iova` into `buf` (the whole range must lie in
    /// one readable window).
    pub fn read(&self, iova: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.access(iova, Dir::Read(buf))
    }

    /// Writes `data` to client memory at `iova` (one writable window).
    pub fn write(&self, iova: u64, data: &[u8]) -> Result<(), Error> {
        self.access(iova, Dir::Write(data))
    }

    fn access(&self, iova: u64, mut dir: Dir<'_>) -> Result<(), Error> {
        let len = dir.len() as u64;
        let mut st = self.lock();
        let bad = || Error::Dma { iova, len };
        let end = iova.checked_add(len).ok_or_else(bad)?;
        let (&start, w) = st.windows.range(..=iova).next_back().ok_or_else(bad)?;
        if end > start + w.len {
            return Err(bad());
        }
        let need = match dir {
            Dir::Read(_) => DMA_FLAG_READ,
            Dir::Write(_) => DMA_FLAG_WRITE,
        };
        if w.flags & need == 0 {
            return Err(bad());
        }
        if let Some(fd) = &w.fd {
            let off = w.fd_offset + (iova - start);
            let res = match &mut dir {
                Dir::Read(buf) => rustix::io::pread(fd, &mut **buf, off),
                Dir::Write(data) => rustix::io::pwrite(fd, data, off),
            };
            return match res {
                Ok(n) if n as u64 == len => Ok(()),
                _ => Err(bad()),
            };
        }
        messages(&mut st, iova, dir)
    }
}

enum Dir<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Dir<'_> {
    fn len(&self) -> usize {
        match self {
            Dir::Read(b) => b.len(),
            Dir::Write(d) => d.len(),
        }
    }
}

/// DMA through DMA_READ/DMA_WRITE messages, in chunks of the client's
/// `max_data_xfer_size`, over the twin socket.
fn messages(st: &mut DmaState, iova: u64, mut dir: Dir<'_>) -> Result<(), Error> {
    let chunk = st.peer_max_xfer.max(1) as usize;
    let total = dir.len();
    let mut done = 0;
    while done < total {
        let n = chunk.min(total - done);
        let address = iova + done as u64;
        let id = st.next_id;
        st.next_id = st.next_id.wrapping_add(1);
        let (twin, reader) = st.twin.as_mut().ok_or(Error::NoChannel)?;
        let req = match &dir {
            Dir::Read(_) => Request::DmaRead(DmaAccessRepr {
                address,
                count: n as u64,
                data: &[],
            }),
            Dir::Write(d) => Request::DmaWrite(DmaAccessRepr {
                address,
                count: n as u64,
                data: &d[done..done + n],
            }),
        };
        send_message(twin.as_fd(), &req.to_message(id, false), &[])
            .map_err(|e| Error::io("DMA request", e))?;
        let msg = reader.next(twin.as_fd()).map_err(Error::Recv)?;
        if msg.header.msg_id != id || msg.header.command != req.command() {
            return Err(Error::Protocol(
                "DMA reply does not match the request".into(),
            ));
        }
        if let Kind::Error(errno) = msg.header.kind {
            return Err(Error::Remote {
                command: req.command(),
                errno,
            });
        }
        match (Reply::parse(req.command(), &msg.payload)?, &mut dir) {
            (Reply::DmaRead(r), Dir::Read(buf)) if r.address == address && r.data.len() == n => {
                buf[done..done + n].copy_from_slice(r.data);
            }
            (Reply::DmaWrite(r), Dir::Write(_)) if r.address == address && r.count == n as u64 => {}
            _ => {
                return Err(Error::Protocol(
                    "DMA reply does not match the request".into(),
                ))
            }
        }
        done += n;
    }
    Ok(())
}

//! Client memory the server may reach: the DMA windows of DMA_MAP.
//!
//! Each window is a kit [`DmaWindow`] at the client's IOVA, reserved in the
//! device's one IOVA space (so it can never collide with anything the
//! server or a device model maps) through the session's device path. A
//! window with a file descriptor is backed by that file: the kit maps it
//! for the backend, which makes it visible to the device at the client's
//! IOVA (for VFIO, through the IOMMU). The server reads and writes it in
//! software with `pread`/`pwrite` on the descriptor, never through a
//! mapping, so a client that shrinks its file cannot make the server
//! fault. A window without a descriptor is reached only with
//! DMA_READ/DMA_WRITE messages over the twin socket. Every access is
//! checked against one window's bounds and permissions.

use super::backend_errno;
use super::seam::SessionDevice;
use crate::sock::{send_message, MessageReader};
use crate::Error;
use pcibox_kit::{Chain, DmaWindow};
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

/// One window of client memory.
#[derive(Debug)]
struct Window {
    /// The IOVA range, and the device's mapping when backed by a file.
    window: DmaWindow,
    flags: u32,
    fd: Option<OwnedFd>,
    fd_offset: u64,
}

impl Window {
    fn len(&self) -> u64 {
        self.window.len()
    }
}

/// Takes windows away from the device; `EIO` if the backend could not
/// release one (it is forgotten anyway: its mapping is leaked, logged by
/// the kit, and its IOVAs stay reserved).
fn release(windows: impl IntoIterator<Item = Window>) -> Result<(), u32> {
    let mut result = Ok(());
    for w in windows {
        if w.window.release().is_err() {
            result = Err(errno::EIO);
        }
    }
    result
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
        device: &dyn SessionDevice,
        r: &DmaMapRepr,
        fd: Option<OwnedFd>,
    ) -> Result<(), u32> {
        if !r.address.is_multiple_of(DMA_PAGE)
            || !r.size.is_multiple_of(DMA_PAGE)
            || !r.offset.is_multiple_of(DMA_PAGE)
        {
            return Err(errno::EINVAL);
        }
        r.address.checked_add(r.size).ok_or(errno::EINVAL)?;
        // Inside the device's IOVA ranges (ERANGE) and clear of every other
        // window and of whatever the server mapped itself (EEXIST).
        let mut window = device
            .reserve_window(r.address, r.size)
            .map_err(|e| backend_errno(&e))?;
        let mut st = self.lock();
        if st.windows.len() >= MAX_DMA_WINDOWS as usize {
            return Err(errno::ENOSPC);
        }
        let writable = r.flags & DMA_FLAG_WRITE != 0;
        if let Some(fd) = &fd {
            // Only a regular file (memfd, shm) big enough for the window.
            let st_ = rustix::fs::fstat(fd).map_err(|e| e.raw_os_error() as u32)?;
            let regular = rustix::fs::FileType::from_raw_mode(st_.st_mode)
                == rustix::fs::FileType::RegularFile;
            let fd_end = r.offset.checked_add(r.size).ok_or(errno::EINVAL)?;
            if !regular || (st_.st_size as u64) < fd_end {
                return Err(errno::EINVAL);
            }
            window
                .map_file(fd.as_fd(), r.offset, writable)
                .map_err(|e| {
                    tracing::warn!("DMA map {:#x}+{:#x}: {}", r.address, r.size, Chain(&e));
                    match e {
                        pcibox_kit::Error::Os { source, .. } => {
                            source.raw_os_error().map_or(errno::EIO, |e| e as u32)
                        }
                        _ => errno::EIO,
                    }
                })?;
        }
        st.windows.insert(
            r.address,
            Window {
                window,
                flags: r.flags,
                fd,
                fd_offset: r.offset,
            },
        );
        Ok(())
    }

    /// DMA_UNMAP: removes exactly one window as it was mapped.
    pub(crate) fn unmap(&self, address: u64, size: u64) -> Result<(), u32> {
        let mut st = self.lock();
        match st.windows.get(&address) {
            Some(w) if w.len() == size => {}
            _ => return Err(errno::ENOENT),
        }
        let w = st.windows.remove(&address).ok_or(errno::ENOENT)?;
        drop(st);
        release([w])
    }

    /// DMA_UNMAP with `DMA_UNMAP_FLAG_ALL`: removes every window of the
    /// client (having none is fine). As with a single unmap, a window is
    /// forgotten even if the backend fails to release it (its mapping is
    /// then leaked); the answer is then `EIO`.
    pub(crate) fn unmap_all(&self) -> Result<(), u32> {
        let windows = std::mem::take(&mut self.lock().windows);
        release(windows.into_values())
    }

    /// Drops every window and the channel (client gone).
    pub(crate) fn end_session(&self) {
        // Failures are logged by the kit; the client is gone either way.
        let _ = self.unmap_all();
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
        if end > start + w.len() {
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

//! The client's side of DMA: the windows it mapped, and answers to the
//! server's DMA_READ/DMA_WRITE requests — bounds-checked against exactly one
//! window, writes only where the device may write.
#![allow(unsafe_code)]

use crate::sock::{send_message, MessageReader, Received};
use crate::ClientStats;
use crate::Error;
use pcibox_kit::DmaMemory;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use vfio_user_wire::{errno, error_reply, DmaAccessRepr, Kind, Reply, Request};

#[derive(Debug)]
enum Backing {
    /// The memory's file and the window's offset in it.
    File(OwnedFd, u64),
    /// Process memory without a file (kept alive by the kit while mapped).
    Addr(usize),
}

#[derive(Debug)]
struct Window {
    len: u64,
    writable: bool,
    backing: Backing,
}

/// The windows this client mapped.
#[derive(Debug, Default)]
pub(crate) struct ClientDma {
    windows: Mutex<BTreeMap<u64, Window>>,
}

impl ClientDma {
    pub(crate) fn insert(&self, iova: u64, mem: &DmaMemory<'_>) -> Result<(), Error> {
        let backing = match mem.fd {
            Some(fd) => Backing::File(
                fd.try_clone_to_owned()
                    .map_err(|e| Error::io("dup DMA fd", e))?,
                mem.fd_offset,
            ),
            None => Backing::Addr(mem.vaddr),
        };
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        w.insert(
            iova,
            Window {
                len: mem.len,
                writable: mem.device_writable,
                backing,
            },
        );
        Ok(())
    }

    pub(crate) fn remove(&self, iova: u64) {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        w.remove(&iova);
    }

    /// Reads or writes `len` bytes at `iova`; `Err(errno)` outside a window.
    fn access(&self, iova: u64, read: Option<&mut [u8]>, write: Option<&[u8]>) -> Result<(), u32> {
        let len = read.as_ref().map_or(0, |b| b.len()) + write.map_or(0, |d| d.len());
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let end = iova.checked_add(len as u64).ok_or(errno::EFAULT)?;
        let (&start, w) = windows.range(..=iova).next_back().ok_or(errno::EFAULT)?;
        if end > start + w.len {
            return Err(errno::EFAULT);
        }
        if write.is_some() && !w.writable {
            return Err(errno::EPERM);
        }
        let off = iova - start;
        match (&w.backing, read, write) {
            (Backing::File(fd, base), Some(buf), _) => {
                match rustix::io::pread(fd, buf, base + off) {
                    Ok(n) if n == len => Ok(()),
                    _ => Err(errno::EIO),
                }
            }
            (Backing::File(fd, base), None, Some(data)) => {
                match rustix::io::pwrite(fd, data, base + off) {
                    Ok(n) if n == len => Ok(()),
                    _ => Err(errno::EIO),
                }
            }
            (Backing::Addr(addr), Some(buf), _) => {
                // SAFETY: the window [addr, addr+w.len) is memory the kit
                // keeps mapped until it unmaps the window, which removes it
                // from this table under the same lock we hold; the range was
                // checked to lie inside it. The device may race the CPU on
                // this memory by design (it is DMA memory): volatile copy.
                unsafe { pcibox_kit::volatile_copy_out((addr + off as usize) as *const u8, buf) };
                Ok(())
            }
            (Backing::Addr(addr), None, Some(data)) => {
                // SAFETY: as above; the window is device-writable.
                unsafe { pcibox_kit::volatile_copy_in(data, (addr + off as usize) as *mut u8) };
                Ok(())
            }
            (_, None, None) => Ok(()),
        }
    }
}

/// The reply to one server→client message.
pub(crate) fn answer(dma: &ClientDma, stats: &ClientStats, msg: &Received) -> Vec<u8> {
    let id = msg.header.msg_id;
    let cmd = msg.header.command;
    stats.dma_requests.fetch_add(1, Ordering::Relaxed);
    let req = match Request::parse(cmd, &msg.payload) {
        Ok(r) => r,
        Err(e) => return error_reply(id, cmd, e.errno()).to_vec(),
    };
    let result = match req {
        Request::DmaRead(r) => {
            let mut data = vec![0u8; r.count as usize];
            dma.access(r.address, Some(&mut data), None).map(|()| {
                Reply::DmaRead(DmaAccessRepr {
                    address: r.address,
                    count: r.count,
                    data: &data,
                })
                .to_message(id)
            })
        }
        Request::DmaWrite(r) => dma.access(r.address, None, Some(r.data)).map(|()| {
            Reply::DmaWrite(DmaAccessRepr {
                address: r.address,
                count: r.count,
                data: &[],
            })
            .to_message(id)
        }),
        _ => Err(errno::EINVAL),
    };
    result.unwrap_or_else(|e| error_reply(id, cmd, e).to_vec())
}

/// The twin-socket thread: answers the server's DMA requests until the
/// socket closes.
pub(crate) fn serve_twin(sock: UnixStream, dma: Arc<ClientDma>, stats: Arc<ClientStats>) {
    // The thread blocks until a request comes or the socket is shut down.
    let _ = sock.set_read_timeout(None);
    let mut reader = MessageReader::new();
    loop {
        let msg = match reader.next(sock.as_fd()) {
            Ok(m) => m,
            Err(_) => return,
        };
        if !matches!(msg.header.kind, Kind::Command { .. }) {
            tracing::warn!("twin socket: unexpected reply {:?}", msg.header);
            continue;
        }
        let no_reply = matches!(msg.header.kind, Kind::Command { no_reply: true });
        let reply = answer(&dma, &stats, &msg);
        if no_reply {
            continue;
        }
        if send_message(sock.as_fd(), &reply, &[]).is_err() {
            return;
        }
    }
}

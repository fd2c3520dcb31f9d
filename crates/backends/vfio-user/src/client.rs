//! The client: a kit [`Backend`] speaking vfio-user to a server.
//!
//! Config space and trapped regions are REGION_READ/WRITE messages (writes to
//! BARs are posted: sent without asking for a reply, like PCI posted writes;
//! the server handles messages in order, so a later read sees them). Regions
//! the server offers a file for are mapped by the kit and cost no message.
//! Interrupts are eventfds handed over with SET_IRQS. DMA memory is passed as
//! its file (kit buffers are memfds) with DMA_MAP, so the device reaches it
//! directly; memory without a file is served to the server's DMA_READ/WRITE
//! requests, which arrive on the twin socket (answered by a thread) or, with
//! a server that has no twin socket, interleaved with replies.

mod dma;

use crate::sock::{send_message, MessageReader, Received};
use crate::Error;
use dma::ClientDma;
use pcibox_kit::{Backend, DmaMemory, IrqInfo, IrqKind, RegionInfo};
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::result::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use vfio_user_wire::*;

/// How the client talks to its server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Pass DMA memory as file descriptors (direct device access). When off,
    /// every window is reached by the server through DMA_READ/WRITE messages.
    pub send_dma_fds: bool,
    /// Send BAR writes without waiting for a reply (posted writes).
    pub post_writes: bool,
    /// How long to wait for a reply (device reset can take a while).
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            send_dma_fds: true,
            post_writes: true,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Message counts of a client.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Commands sent.
    pub sent: AtomicU64,
    /// Of which without a reply (posted).
    pub posted: AtomicU64,
    /// Server→client DMA requests answered.
    pub dma_requests: AtomicU64,
}

#[derive(Debug)]
struct Conn {
    sock: UnixStream,
    /// Keeps what was read ahead of the current reply.
    reader: MessageReader,
    next_id: u16,
}

#[derive(Debug)]
struct ClientRegion {
    info: RegionInfo,
    fd: Option<OwnedFd>,
}

/// A vfio-user connection to one device, usable as a kit backend.
#[derive(Debug)]
pub struct Client {
    name: String,
    opts: ClientOptions,
    conn: Mutex<Conn>,
    regions: Vec<Option<ClientRegion>>,
    config_len: usize,
    max_fds: usize,
    max_xfer: u32,
    dma: Arc<ClientDma>,
    stats: Arc<ClientStats>,
    twin: Option<(UnixStream, JoinHandle<()>)>,
}

fn kit_err(e: Error) -> pcibox_kit::Error {
    pcibox_kit::Error::Backend(Box::new(e))
}

fn irq_index(kind: IrqKind) -> u32 {
    match kind {
        IrqKind::Intx => PCI_INTX_IRQ_INDEX,
        IrqKind::Msi => PCI_MSI_IRQ_INDEX,
        IrqKind::Msix => PCI_MSIX_IRQ_INDEX,
    }
}

/// The IOVA range a client hands out: 1 MiB up to the x86 interrupt window
/// at 0xfee0_0000, which every IOMMU reserves (vfio-user has no message for
/// the server's ranges).
pub const CLIENT_IOVA_RANGE: Range<u64> = 0x10_0000..0xfee0_0000;

impl Client {
    /// Connects to the server at `path` and negotiates.
    pub fn connect(path: &Path, opts: ClientOptions) -> Result<Client, Error> {
        let sock = UnixStream::connect(path).map_err(|e| Error::io("connect", e))?;
        Client::from_stream(sock, format!("vfio-user:{}", path.display()), opts)
    }

    /// Negotiates over an already connected socket.
    pub fn from_stream(
        sock: UnixStream,
        name: String,
        opts: ClientOptions,
    ) -> Result<Client, Error> {
        sock.set_read_timeout(Some(opts.timeout))
            .and_then(|_| sock.set_write_timeout(Some(opts.timeout)))
            .map_err(|e| Error::io("socket timeout", e))?;
        let mut client = Client {
            name,
            opts,
            conn: Mutex::new(Conn {
                sock,
                reader: MessageReader::new(),
                next_id: 0,
            }),
            regions: Vec::new(),
            config_len: 256,
            max_fds: 1,
            max_xfer: DEFAULT_MAX_DATA_XFER_SIZE,
            dma: Arc::new(ClientDma::default()),
            stats: Arc::new(ClientStats::default()),
            twin: None,
        };
        client.negotiate()?;
        Ok(client)
    }

    /// Message counts.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    fn negotiate(&mut self) -> Result<(), Error> {
        let ours = Capabilities {
            max_msg_fds: Some(MAX_MSG_FDS),
            max_data_xfer_size: Some(MAX_DATA_XFER_SIZE),
            twin_socket: Some(TwinSocket {
                supported: true,
                fd_index: None,
            }),
            ..Default::default()
        };
        let req = Request::Version(VersionRepr {
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
            caps: Some(ours),
        });
        let mut msg = self.transact(&req, &[])?;
        let Reply::Version(v) = Reply::parse(Command::Version, &msg.payload)? else {
            return Err(Error::Protocol("bad VERSION reply".into()));
        };
        if v.major != VERSION_MAJOR || v.minor > VERSION_MINOR {
            return Err(Error::Protocol(format!(
                "server speaks version {}.{}",
                v.major, v.minor
            )));
        }
        let caps = v.caps.unwrap_or_default();
        self.max_fds = caps.max_msg_fds().clamp(1, MAX_MSG_FDS) as usize;
        self.max_xfer = caps.max_data_xfer_size().clamp(4, MAX_DATA_XFER_SIZE);
        if let Some(t) = caps.twin_socket.filter(|t| t.supported) {
            let i = t
                .fd_index
                .ok_or_else(|| Error::Protocol("twin socket without fd_index".into()))?
                as usize;
            if i >= msg.fds.len() {
                return Err(Error::Protocol("twin socket fd missing".into()));
            }
            let sock = UnixStream::from(msg.fds.swap_remove(i));
            let ours = sock
                .try_clone()
                .map_err(|e| Error::io("dup twin socket", e))?;
            let dma = self.dma.clone();
            let stats = self.stats.clone();
            let thread = std::thread::Builder::new()
                .name("vfio-user-dma".into())
                .spawn(move || dma::serve_twin(sock, dma, stats))
                .map_err(|e| Error::io("spawn", e))?;
            self.twin = Some((ours, thread));
        }
        // Device and region layout.
        let msg = self.transact(
            &Request::DeviceGetInfo(DeviceInfoRepr {
                argsz: DeviceInfoRepr::LEN as u32,
                flags: 0,
                num_regions: 0,
                num_irqs: 0,
            }),
            &[],
        )?;
        let Reply::DeviceGetInfo(info) = Reply::parse(Command::DeviceGetInfo, &msg.payload)? else {
            return Err(Error::Protocol("bad DEVICE_GET_INFO reply".into()));
        };
        if info.flags & DEVICE_FLAG_PCI == 0 || info.num_regions <= PCI_CONFIG_REGION_INDEX {
            return Err(Error::Protocol("not a PCI device".into()));
        }
        for index in 0..=PCI_CONFIG_REGION_INDEX {
            let (r, mut fds) = self.region_query(index)?;
            if index == PCI_CONFIG_REGION_INDEX {
                self.config_len = match r.size {
                    256 | 4096 => r.size as usize,
                    other => return Err(Error::Protocol(format!("config space of {other} bytes"))),
                };
                continue;
            }
            let fd = (r.flags & REGION_INFO_FLAG_MMAP != 0 && !fds.is_empty())
                .then(|| fds.swap_remove(0));
            let mmap_areas = match (&fd, &r.sparse) {
                (None, _) => Vec::new(),
                (Some(_), Some(areas)) => {
                    areas.iter().map(|a| a.offset..a.offset + a.size).collect()
                }
                (Some(_), None) => std::iter::once(0..r.size).collect(),
            };
            self.regions.push((r.size > 0).then(|| ClientRegion {
                info: RegionInfo {
                    index,
                    size: r.size,
                    readable: r.flags & REGION_INFO_FLAG_READ != 0,
                    writable: r.flags & REGION_INFO_FLAG_WRITE != 0,
                    mmap_areas,
                    mmap_offset: r.offset,
                    msix_mappable: false,
                    io_port: false,
                },
                fd,
            }));
        }
        Ok(())
    }

    fn region_query(&self, index: u32) -> Result<(RegionInfoRepr, Vec<OwnedFd>), Error> {
        let req = RegionInfoRepr {
            argsz: 4096,
            flags: 0,
            index,
            size: 0,
            offset: 0,
            sparse: None,
            cap_type: None,
        };
        let msg = self.transact(&Request::GetRegionInfo(req), &[])?;
        match Reply::parse(Command::DeviceGetRegionInfo, &msg.payload)? {
            Reply::GetRegionInfo(r) if r.index == index => Ok((r, msg.fds)),
            _ => Err(Error::Protocol("bad region info reply".into())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a command and waits for its reply (answering server→client DMA
    /// requests that arrive meanwhile). An error reply is [`Error::Remote`].
    fn transact(&self, req: &Request<'_>, fds: &[BorrowedFd<'_>]) -> Result<Received, Error> {
        let mut conn = self.lock();
        let id = conn.next_id;
        conn.next_id = conn.next_id.wrapping_add(1);
        send_message(conn.sock.as_fd(), &req.to_message(id, false), fds)
            .map_err(|e| Error::io("send", e))?;
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        loop {
            let Conn { sock, reader, .. } = &mut *conn;
            let msg = reader.next(sock.as_fd()).map_err(|e| match e {
                crate::RecvError::Closed => Error::Closed,
                other => Error::Recv(other),
            })?;
            if let Kind::Command { .. } = msg.header.kind {
                // No twin socket: the server's DMA requests come this way.
                let reply = dma::answer(&self.dma, &self.stats, &msg);
                send_message(conn.sock.as_fd(), &reply, &[]).map_err(|e| Error::io("send", e))?;
                continue;
            }
            if msg.header.msg_id != id || msg.header.command != req.command() {
                return Err(Error::Protocol(format!(
                    "reply {} {:?} does not answer {id} {:?}",
                    msg.header.msg_id,
                    msg.header.command,
                    req.command()
                )));
            }
            if let Kind::Error(errno) = msg.header.kind {
                return Err(Error::Remote {
                    command: req.command(),
                    errno,
                });
            }
            return Ok(msg);
        }
    }

    /// Sends a command that wants no reply.
    fn post(&self, req: &Request<'_>) -> Result<(), Error> {
        let mut conn = self.lock();
        let id = conn.next_id;
        conn.next_id = conn.next_id.wrapping_add(1);
        send_message(conn.sock.as_fd(), &req.to_message(id, true), &[])
            .map_err(|e| Error::io("send", e))?;
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        self.stats.posted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read(&self, region: u32, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        if buf.len() > self.max_xfer as usize {
            return Err(Error::Protocol(
                "read larger than the server accepts".into(),
            ));
        }
        let req = Request::RegionRead(RegionAccessRepr {
            offset,
            region,
            count: buf.len() as u32,
            data: &[],
        });
        let msg = self.transact(&req, &[])?;
        match Reply::parse(Command::RegionRead, &msg.payload)? {
            Reply::RegionRead(r)
                if r.region == region && r.offset == offset && r.data.len() == buf.len() =>
            {
                buf.copy_from_slice(r.data);
                Ok(())
            }
            _ => Err(Error::Protocol("region read reply does not match".into())),
        }
    }

    fn write(&self, region: u32, offset: u64, data: &[u8], posted: bool) -> Result<(), Error> {
        let req = Request::RegionWrite(RegionAccessRepr {
            offset,
            region,
            count: data.len() as u32,
            data,
        });
        if posted {
            return self.post(&req);
        }
        self.transact(&req, &[]).map(|_| ())
    }

    fn set_irqs(&self, r: IrqSetRepr<'_>, fds: &[BorrowedFd<'_>]) -> Result<(), Error> {
        self.transact(&Request::SetIrqs(r), fds).map(|_| ())
    }

    fn region(&self, index: u32) -> pcibox_kit::Result<&ClientRegion> {
        self.regions
            .get(index as usize)
            .and_then(|r| r.as_ref())
            .ok_or(pcibox_kit::Error::Region {
                index,
                what: "no such region",
            })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some((sock, thread)) = self.twin.take() {
            let _ = sock.shutdown(std::net::Shutdown::Both);
            let _ = thread.join();
        }
    }
}

impl Backend for Client {
    fn name(&self) -> &str {
        &self.name
    }

    fn config_len(&self) -> usize {
        self.config_len
    }

    fn config_read(&self, offset: usize, buf: &mut [u8]) -> pcibox_kit::Result<()> {
        self.read(PCI_CONFIG_REGION_INDEX, offset as u64, buf)
            .map_err(kit_err)
    }

    fn config_write(&self, offset: usize, data: &[u8]) -> pcibox_kit::Result<()> {
        self.write(PCI_CONFIG_REGION_INDEX, offset as u64, data, false)
            .map_err(kit_err)
    }

    fn region_info(&self, index: u32) -> pcibox_kit::Result<Option<RegionInfo>> {
        Ok(self
            .regions
            .get(index as usize)
            .and_then(|r| r.as_ref())
            .map(|r| r.info.clone()))
    }

    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> pcibox_kit::Result<()> {
        self.region(index)?;
        self.read(index, offset, buf).map_err(kit_err)
    }

    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> pcibox_kit::Result<()> {
        self.region(index)?;
        self.write(index, offset, data, self.opts.post_writes)
            .map_err(kit_err)
    }

    fn region_mmap_fd(&self, index: u32) -> pcibox_kit::Result<BorrowedFd<'_>> {
        self.region(index)?
            .fd
            .as_ref()
            .map(|f| f.as_fd())
            .ok_or(pcibox_kit::Error::Region {
                index,
                what: "the server offers no mapping",
            })
    }

    fn irq_info(&self, kind: IrqKind) -> pcibox_kit::Result<IrqInfo> {
        let req = Request::GetIrqInfo(IrqInfoRepr {
            argsz: IrqInfoRepr::LEN as u32,
            flags: 0,
            index: irq_index(kind),
            count: 0,
        });
        let msg = self.transact(&req, &[]).map_err(kit_err)?;
        match Reply::parse(Command::DeviceGetIrqInfo, &msg.payload) {
            Ok(Reply::GetIrqInfo(i)) => Ok(IrqInfo {
                count: i.count,
                eventfd: i.flags & IRQ_INFO_EVENTFD != 0,
                maskable: i.flags & IRQ_INFO_MASKABLE != 0,
                automasked: i.flags & IRQ_INFO_AUTOMASKED != 0,
                noresize: i.flags & IRQ_INFO_NORESIZE != 0,
            }),
            Ok(_) => Err(kit_err(Error::Protocol("bad irq info reply".into()))),
            Err(e) => Err(kit_err(e.into())),
        }
    }

    fn irq_enable(&self, kind: IrqKind, fds: &[BorrowedFd<'_>]) -> pcibox_kit::Result<()> {
        // In chunks the server accepts in one message.
        for (n, chunk) in fds.chunks(self.max_fds).enumerate() {
            let r = IrqSetRepr {
                action: IrqAction::Trigger,
                data: IrqData::Eventfd,
                index: irq_index(kind),
                start: (n * self.max_fds) as u32,
                count: chunk.len() as u32,
            };
            self.set_irqs(r, chunk).map_err(kit_err)?;
        }
        Ok(())
    }

    fn irq_disable(&self, kind: IrqKind) -> pcibox_kit::Result<()> {
        let r = IrqSetRepr {
            action: IrqAction::Trigger,
            data: IrqData::None,
            index: irq_index(kind),
            start: 0,
            count: 0,
        };
        self.set_irqs(r, &[]).map_err(kit_err)
    }

    fn irq_mask(&self, kind: IrqKind, index: u32, _fd: BorrowedFd<'_>) -> pcibox_kit::Result<()> {
        let r = IrqSetRepr {
            action: IrqAction::Mask,
            data: IrqData::None,
            index: irq_index(kind),
            start: index,
            count: 1,
        };
        self.set_irqs(r, &[]).map_err(kit_err)
    }

    fn irq_unmask(&self, kind: IrqKind, index: u32, _fd: BorrowedFd<'_>) -> pcibox_kit::Result<()> {
        let r = IrqSetRepr {
            action: IrqAction::Unmask,
            data: IrqData::None,
            index: irq_index(kind),
            start: index,
            count: 1,
        };
        self.set_irqs(r, &[]).map_err(kit_err)
    }

    fn iova_ranges(&self) -> pcibox_kit::Result<Vec<Range<u64>>> {
        Ok(vec![CLIENT_IOVA_RANGE])
    }

    #[allow(unsafe_code)] // implements the trait's contract; see `Backend::dma_map`
    unsafe fn dma_map(&self, iova: u64, mem: &DmaMemory<'_>) -> pcibox_kit::Result<()> {
        let mut flags = DMA_FLAG_READ;
        if mem.device_writable {
            flags |= DMA_FLAG_WRITE;
        }
        let fd = mem.fd.filter(|_| self.opts.send_dma_fds);
        let r = DmaMapRepr {
            flags,
            offset: if fd.is_some() { mem.fd_offset } else { 0 },
            address: iova,
            size: mem.len,
        };
        // Record the window first: the server may ask for it at once.
        self.dma.insert(iova, mem).map_err(kit_err)?;
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        if let Err(e) = self.transact(&Request::DmaMap(r), &fds) {
            self.dma.remove(iova);
            return Err(kit_err(e));
        }
        Ok(())
    }

    fn dma_unmap(&self, iova: u64, len: u64) -> pcibox_kit::Result<()> {
        let r = DmaUnmapRepr {
            argsz: DmaUnmapRepr::LEN as u32,
            flags: 0,
            address: iova,
            size: len,
        };
        let res = self.transact(&Request::DmaUnmap(r), &[]);
        // The server released the window (or never had it): forget it.
        self.dma.remove(iova);
        res.map(|_| ()).map_err(kit_err)
    }

    fn reset(&self) -> pcibox_kit::Result<()> {
        self.transact(&Request::DeviceReset, &[])
            .map(|_| ())
            .map_err(kit_err)
    }
}

//! A client session: the per-client state (negotiation, the client's
//! interrupts, its DMA windows) and one command → one device operation →
//! one reply.
//!
//! A session is an independent object: whatever drives it — the blocking
//! transport of [`Session::serve`] on its own thread, or an event loop
//! feeding [`Session::handle`] — it holds all the client's state, and its
//! teardown runs when it is dropped, on every exit path.
//!
//! Two paths to the device. The client's requests take the session's
//! [`SessionDevice`] (the seam a firewall wraps), and every argument is
//! checked here first so the device is only called the way the kit's
//! `Backend` contract allows (config widths 1/2/4 inside config space,
//! region widths 1/2/4/8 naturally aligned inside the region, DMA windows
//! page aligned inside the IOVA ranges); everything else is an errno. The
//! teardown takes the trusted path ([`DeviceControl`]): interrupts off, bus
//! mastering off, DMA windows dropped, device reset — never through the
//! seam.

use super::seam::SessionDevice;
use super::stop::Stop;
use super::{backend_errno, irqs, regions, transport, ServerDma, ServerOptions, SessionStats};
use super::{NUM_IRQS, NUM_REGIONS};
use crate::sock::Received;
use pcibox_kit::{Chain, DeviceControl, Interrupts};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vfio_user_wire::*;

/// What to send back for one message.
#[derive(Debug)]
pub enum Response {
    /// A reply message and the descriptors that ride with it.
    Reply(Vec<u8>, Vec<OwnedFd>),
    /// An error reply (message id, command, errno).
    Error(u16, Command, u32),
    /// An error reply, then close the connection.
    Close(u16, Command, u32),
}

/// One client's session with a device: see the module docs. Made by
/// [`crate::Server::open_session`]; one per device at a time.
#[derive(Debug)]
pub struct Session {
    /// The untrusted path: every client request goes through it.
    device: Box<dyn SessionDevice>,
    /// The trusted path, for the teardown only.
    control: DeviceControl,
    /// Cleared when the session ends: the device takes the next client.
    busy: Arc<AtomicBool>,
    pub(super) opts: ServerOptions,
    pub(super) stop: Arc<Stop>,
    /// The client's DMA windows and server→client channel.
    dma: ServerDma,
    negotiated: bool,
    /// The client's interrupts, as the kit enabled them.
    irqs: Option<Interrupts>,
}

impl Session {
    pub(super) fn new(
        device: Box<dyn SessionDevice>,
        control: DeviceControl,
        busy: Arc<AtomicBool>,
        opts: ServerOptions,
        stop: Arc<Stop>,
        dma: ServerDma,
    ) -> Session {
        Session {
            device,
            control,
            busy,
            opts,
            stop,
            dma,
            negotiated: false,
            irqs: None,
        }
    }

    /// Serves the client on `stream` on this thread until it leaves (or
    /// the server is stopped): reads each message, handles it, sends the
    /// reply. Then the session ends with its teardown. Returns its counts.
    pub fn serve(mut self, stream: UnixStream) -> SessionStats {
        transport::serve(&mut self, stream)
    }

    /// Handles one message from the client and says what to send back (a
    /// command with the no-reply bit gets no reply, errors included; a
    /// `Close` is answered, then the connection closes).
    pub fn handle(&mut self, msg: Received) -> Response {
        let id = msg.header.msg_id;
        let cmd = msg.header.command;
        let err = |e: u32| Response::Error(id, cmd, e);
        if !matches!(msg.header.kind, Kind::Command { .. }) {
            // A client sends commands only (we never send it any on this socket).
            return err(errno::EINVAL);
        }
        if msg.fds_truncated {
            return err(errno::EINVAL);
        }
        let req = match Request::parse(cmd, &msg.payload) {
            Ok(r) => r,
            Err(e) => return err(e.errno()),
        };
        // Descriptors are accepted only where the command takes them.
        let max_fds = match &req {
            Request::DmaMap(_) => 1,
            Request::SetIrqs(r) if r.data == IrqData::Eventfd => r.count as usize,
            _ => 0,
        };
        if msg.fds.len() > max_fds {
            return err(errno::EINVAL);
        }
        if !self.negotiated && !matches!(req, Request::Version(_)) {
            return err(errno::EINVAL);
        }
        let req = match req {
            Request::Version(v) => return self.version(id, &v),
            other => other,
        };
        let ok = |reply: Reply<'_>| Response::Reply(reply.to_message(id), Vec::new());
        let dev = &*self.device;
        match req {
            Request::DeviceGetInfo(_) => ok(Reply::DeviceGetInfo(DeviceInfoRepr {
                argsz: DeviceInfoRepr::LEN as u32,
                flags: DEVICE_FLAG_RESET | DEVICE_FLAG_PCI,
                num_regions: NUM_REGIONS,
                num_irqs: NUM_IRQS,
            })),
            Request::GetRegionInfo(r) => {
                regions::region_info(dev, self.opts.share_mappings, id, &r)
            }
            Request::GetIrqInfo(r) => match irqs::irq_info(dev, &r) {
                Ok(info) => ok(Reply::GetIrqInfo(info)),
                Err(e) => err(e),
            },
            Request::SetIrqs(r) => match irqs::set_irqs(dev, &mut self.irqs, &r, msg.fds) {
                Ok(()) => ok(Reply::SetIrqs),
                Err(e) => err(e),
            },
            Request::RegionRead(r) => {
                let mut data = vec![0u8; r.count as usize];
                match regions::region_access(
                    dev,
                    r.region,
                    r.offset,
                    regions::Access::Read(&mut data),
                ) {
                    Ok(()) => ok(Reply::RegionRead(RegionAccessRepr { data: &data, ..r })),
                    Err(e) => err(e),
                }
            }
            Request::RegionWrite(r) => {
                match regions::region_access(
                    dev,
                    r.region,
                    r.offset,
                    regions::Access::Write(r.data),
                ) {
                    Ok(()) => ok(Reply::RegionWrite(RegionAccessRepr { data: &[], ..r })),
                    Err(e) => err(e),
                }
            }
            Request::WriteMulti(w) => {
                for e in &w.writes {
                    if let Err(e) = regions::region_access(
                        dev,
                        e.region,
                        e.offset,
                        regions::Access::Write(e.bytes()),
                    ) {
                        return err(e);
                    }
                }
                ok(Reply::WriteMulti(w.writes.len() as u64))
            }
            Request::DmaMap(r) => {
                let fd = msg.fds.into_iter().next();
                match self.dma.map(dev, &r, fd) {
                    Ok(()) => ok(Reply::DmaMap),
                    Err(e) => err(e),
                }
            }
            Request::DmaUnmap(r) => {
                // The wire already refused FLAG_ALL with a range (EINVAL).
                let done = match r.flags {
                    0 => self.dma.unmap(r.address, r.size),
                    DMA_UNMAP_FLAG_ALL => self.dma.unmap_all(),
                    _ => Err(errno::EOPNOTSUPP),
                };
                // The reply echoes the request's entry, as the spec says.
                match done {
                    Ok(()) => ok(Reply::DmaUnmap(Some(DmaUnmapRepr {
                        argsz: DmaUnmapRepr::LEN as u32,
                        ..r
                    }))),
                    Err(e) => err(e),
                }
            }
            Request::DeviceReset => match dev.reset() {
                Ok(()) => ok(Reply::DeviceReset),
                Err(e) => err(backend_errno(&e)),
            },
            // Server→client commands have no business arriving here
            // (and VERSION was answered above).
            Request::DmaRead(_) | Request::DmaWrite(_) | Request::Version(_) => err(errno::EINVAL),
            Request::GetRegionIoFds(_)
            | Request::DeviceFeature(_)
            | Request::MigDataRead(_)
            | Request::MigDataWrite(_) => err(errno::EOPNOTSUPP),
        }
    }

    fn version(&mut self, id: u16, v: &VersionRepr) -> Response {
        if self.negotiated {
            return Response::Error(id, Command::Version, errno::EINVAL);
        }
        if v.major != VERSION_MAJOR {
            return Response::Close(id, Command::Version, errno::EOPNOTSUPP);
        }
        let theirs = v.caps.clone().unwrap_or_default();
        let mut fds = Vec::new();
        let mut twin_server = None;
        let mut twin = None;
        if theirs.twin_socket_supported() {
            match UnixStream::pair() {
                Ok((ours, client_end)) => {
                    let t = Some(self.opts.io_timeout);
                    if ours.set_read_timeout(t).is_ok() && ours.set_write_timeout(t).is_ok() {
                        fds.push(OwnedFd::from(client_end));
                        twin_server = Some(ours);
                        twin = Some(TwinSocket {
                            supported: true,
                            fd_index: Some(0),
                        });
                    }
                }
                Err(e) => tracing::warn!("twin socket: {e}"),
            }
        }
        let caps = Capabilities {
            max_msg_fds: Some(MAX_MSG_FDS),
            max_data_xfer_size: Some(MAX_DATA_XFER_SIZE),
            max_dma_maps: Some(super::window::MAX_DMA_WINDOWS),
            pgsizes: Some(super::window::DMA_PAGE),
            twin_socket: twin,
            write_multiple: theirs.write_multiple.filter(|&w| w),
            migration: None,
            unknown: Vec::new(),
        };
        self.dma
            .start_session(twin_server, theirs.max_data_xfer_size());
        self.negotiated = true;
        let reply = Reply::Version(VersionRepr {
            major: VERSION_MAJOR,
            minor: v.minor.min(VERSION_MINOR),
            caps: Some(caps),
        });
        Response::Reply(reply.to_message(id), fds)
    }
}

impl Drop for Session {
    /// The client is gone: interrupts off, bus mastering off, DMA windows
    /// dropped, device reset — on the device itself, not through the
    /// session's device path.
    fn drop(&mut self) {
        self.control.quiesce();
        // The vectors are already off; this closes the client's eventfds.
        self.irqs = None;
        self.dma.end_session();
        let backend = self.control.backend();
        if let Err(e) = backend.reset() {
            tracing::warn!("{}: teardown: reset: {}", backend.name(), Chain(&e));
        }
        self.busy.store(false, Ordering::SeqCst);
    }
}

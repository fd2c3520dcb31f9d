//! The server: exports kit devices on Unix sockets.
//!
//! Three parts. The transport (`transport.rs`) reads whole messages from a
//! client (bounded, read ahead), hands each to the client's [`Session`] and
//! sends what it answers. The session (`session.rs`, with `regions.rs`,
//! `irqs.rs`, `window.rs`) owns everything of one client — negotiation, its
//! interrupts, its DMA windows — reaches the device through a
//! [`SessionDevice`] (the seam a config-space firewall wraps, `seam.rs`)
//! and, when dropped, tears down through the kit's privileged handle:
//! interrupts off, bus mastering off, DMA windows dropped, device reset.
//! The [`Server`] owns one device and serves its clients one at a time;
//! a [`ServerSet`] serves several devices at once, a thread per device
//! (so per live session), with one stop for all.

mod irqs;
mod regions;
mod seam;
mod session;
mod set;
mod stop;
mod transport;
mod window;

pub use seam::{DirectDevice, SessionDevice};
pub use session::{Response, Session};
pub use set::ServerSet;
pub use stop::StopHandle;
pub use window::ServerDma;

use crate::Error;
use pcibox_kit::{Backend, Device, DeviceControl};
use rustix::event::{PollFd, PollFlags};
use std::fmt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stop::Stop;
use vfio_user_wire::{errno, Command, PCI_NUM_IRQS, PCI_NUM_REGIONS};

const NUM_REGIONS: u32 = PCI_NUM_REGIONS;
const NUM_IRQS: u32 = PCI_NUM_IRQS;

/// How the server exports its device.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Offer region mappings to the client. Only regions whose whole range
    /// the backend lets be mapped *and* whose file is a memfd (a device
    /// model's memory) are offered: a VFIO device file would hand the client
    /// the whole device. Off by default: every region access is trapped.
    pub share_mappings: bool,
    /// How long a client may take to complete a message it started, or to
    /// take a reply, before it is disconnected.
    pub io_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            share_mappings: false,
            io_timeout: Duration::from_secs(5),
        }
    }
}

/// Counts for one client session, by command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Messages received, indexed by command number (unknown ones at 0).
    pub by_command: [u64; 19],
    /// Messages received in all.
    pub messages: u64,
    /// Error replies sent (or, for no-reply commands, errors dropped).
    pub errors: u64,
    /// Why the session ended.
    pub end: String,
}

impl SessionStats {
    /// Messages of one command.
    pub fn count(&self, c: Command) -> u64 {
        self.by_command
            .get(c.to_u16() as usize)
            .copied()
            .unwrap_or(0)
    }
}

impl fmt::Display for SessionStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "messages={} errors={}", self.messages, self.errors)?;
        for c in Command::ALL {
            let n = self.count(c);
            if n > 0 {
                write!(f, " {c:?}={n}")?;
            }
        }
        write!(f, " end={:?}", self.end)
    }
}

/// Makes a session's device path from the direct one (a firewall).
type Wrap = dyn Fn(DirectDevice) -> Box<dyn SessionDevice> + Send + Sync;

/// Told each session's counts when it ends.
type SessionEnd = dyn Fn(&SessionStats) + Send + Sync;

/// A vfio-user server for one device: one client at a time.
pub struct Server {
    /// The device as the kit sees it: its teardown runs when the server and
    /// the last session are gone.
    device: Arc<Device>,
    /// The privileged handle: sessions' direct path and trusted teardown.
    control: DeviceControl,
    opts: ServerOptions,
    dma: ServerDma,
    pub(crate) stop: Arc<Stop>,
    /// A session is open (one per device at a time).
    busy: Arc<AtomicBool>,
    wrap: Option<Arc<Wrap>>,
    on_session_end: Option<Box<SessionEnd>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("device", &self.device)
            .field("opts", &self.opts)
            .field("wrapped", &self.wrap.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for the device `backend` reaches (not yet listening). The
    /// server is privileged: it takes the backend itself, not a driver's
    /// [`Device`].
    pub fn new(backend: Box<dyn Backend>, opts: ServerOptions) -> Result<Server, Error> {
        let (device, control) = Device::with_control(backend)?;
        Ok(Server {
            device: Arc::new(device),
            control,
            opts,
            dma: ServerDma::default(),
            stop: Stop::new()?,
            busy: Arc::new(AtomicBool::new(false)),
            wrap: None,
            on_session_end: None,
        })
    }

    /// A handle that stops [`Server::run`] and the live session.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// The handle a device model uses to reach the client's memory.
    pub fn dma(&self) -> ServerDma {
        self.dma.clone()
    }

    /// The exported device. Whatever a device model maps on it for DMA
    /// shares one IOVA space with the client's windows: neither can take
    /// the other's addresses.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Calls `f` with the counts of each session when it ends.
    pub fn on_session_end(&mut self, f: impl Fn(&SessionStats) + Send + Sync + 'static) {
        self.on_session_end = Some(Box::new(f));
    }

    /// Puts `wrap` on every session's device path from now on: each new
    /// session's client requests go through `wrap(direct)` (a firewall)
    /// instead of straight to the device. The teardown never does.
    pub fn set_session_device(
        &mut self,
        wrap: impl Fn(DirectDevice) -> Box<dyn SessionDevice> + Send + Sync + 'static,
    ) {
        self.wrap = Some(Arc::new(wrap));
    }

    /// Opens the device's session for a new client. One at a time: while
    /// another session lives, `Err(Error::Busy)`.
    pub fn open_session(&self) -> Result<Session, Error> {
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(Error::Busy);
        }
        let direct = DirectDevice::new(self.device.clone(), self.control.clone());
        let device = match &self.wrap {
            Some(wrap) => wrap(direct),
            None => Box::new(direct),
        };
        Ok(Session::new(
            device,
            self.control.clone(),
            self.busy.clone(),
            self.opts.clone(),
            self.stop.clone(),
            self.dma.clone(),
        ))
    }

    /// Binds `path` (removing a stale socket file first) and serves clients
    /// one after another until stopped.
    pub fn listen(&mut self, path: &Path) -> Result<(), Error> {
        if path.exists() {
            std::fs::remove_file(path).map_err(|e| Error::io("remove stale socket", e))?;
        }
        let listener = UnixListener::bind(path).map_err(|e| Error::io("bind", e))?;
        self.run(&listener)
    }

    /// Serves clients of `listener` one after another until stopped.
    pub fn run(&mut self, listener: &UnixListener) -> Result<(), Error> {
        self.run_sessions(listener, None)
    }

    /// Serves clients of `listener` one after another until stopped or, with
    /// `max_sessions`, until that many sessions have ended. Between clients
    /// it `poll`s the listener and the stop; further clients wait in the
    /// listen backlog while one is served.
    pub fn run_sessions(
        &mut self,
        listener: &UnixListener,
        max_sessions: Option<u64>,
    ) -> Result<(), Error> {
        let mut sessions = 0u64;
        loop {
            if max_sessions.is_some_and(|max| sessions >= max) {
                return Ok(());
            }
            let mut fds = [
                PollFd::new(listener, PollFlags::IN),
                PollFd::new(&self.stop.fd, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::io("poll", e)),
            }
            if !fds[1].revents().is_empty() {
                return Ok(());
            }
            if fds[0].revents().is_empty() {
                continue;
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    sessions += 1;
                    let stats = self.serve_connection(stream);
                    tracing::info!("{}: session ended: {stats}", self.device.name());
                    if let Some(f) = &self.on_session_end {
                        f(&stats);
                    }
                }
                Err(e) => tracing::warn!("accept: {e}"),
            }
            if self.stop.stopped() {
                return Ok(());
            }
        }
    }

    /// Serves one client on `stream` on this thread until it leaves (or the
    /// server is stopped), then ends its session (the teardown). Returns the
    /// session's counts.
    pub fn serve_connection(&mut self, stream: UnixStream) -> SessionStats {
        match self.open_session() {
            Ok(session) => session.serve(stream),
            Err(e) => SessionStats {
                end: pcibox_kit::Chain(&e).to_string(),
                ..SessionStats::default()
            },
        }
    }
}

/// Errno for a backend failure.
pub(crate) fn backend_errno(e: &pcibox_kit::Error) -> u32 {
    use pcibox_kit::Error as E;
    match e {
        E::Unsupported { .. } => errno::EOPNOTSUPP,
        E::ConfigOffset { .. } | E::RegionBounds { .. } | E::Dma { .. } => errno::EINVAL,
        E::IovaRange { .. } => errno::ERANGE,
        E::IovaInUse { .. } => errno::EEXIST,
        _ => errno::EIO,
    }
}

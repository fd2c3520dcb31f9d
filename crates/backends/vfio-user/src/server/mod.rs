//! The server: exports one kit device on a Unix socket.
//!
//! One thread, one client at a time. Between clients it `poll`s the
//! listening socket and a stop eventfd; during a session it reads whole
//! messages from the client (bounded, read ahead), handles and answers each
//! in turn. Further clients wait in the listen backlog until the current one
//! leaves. When a client goes — cleanly or not — its interrupts are turned
//! off, bus mastering is cleared, its DMA windows are unmapped and the device
//! is reset, ready for the next client.

mod handle;
mod window;

pub use window::ServerDma;

use crate::sock::{send_message, MessageReader, RecvError};
use crate::Error;
use handle::{Handled, Session};
use pcibox_kit::{Backend, Chain, Device, DeviceControl};
use rustix::event::{EventfdFlags, PollFd, PollFlags};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vfio_user_wire::{errno, error_reply, Command, Header, Kind};

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

/// Stops a running server (from another thread). Clones share the same stop
/// flag.
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<Stop>);

#[derive(Debug)]
struct Stop {
    /// Readable once stopped (wakes the accept loop's `poll`).
    fd: OwnedFd,
    /// Set once stopped (checked between messages without a system call).
    flag: AtomicBool,
    /// The connection being served, shut down to wake its blocking read.
    current: Mutex<Option<UnixStream>>,
}

impl StopHandle {
    /// Asks the server to end the current session (cleaning up) and return
    /// from [`Server::run`].
    pub fn stop(&self) {
        self.0.flag.store(true, Ordering::SeqCst);
        let _ = rustix::io::write(&self.0.fd, &1u64.to_ne_bytes());
        let current = self.0.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = current.as_ref() {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
    }
}

/// A vfio-user server for one device.
#[derive(Debug)]
pub struct Server {
    /// The device as the kit sees it: its teardown runs when the server is
    /// dropped.
    device: Device,
    /// The raw backend, for forwarding the client's requests and for the
    /// trusted per-session teardown.
    control: DeviceControl,
    opts: ServerOptions,
    dma: ServerDma,
    stop: Arc<Stop>,
    on_session_end: Option<fn(&SessionStats)>,
}

impl Server {
    /// A server for the device `backend` reaches (not yet listening). The
    /// server is privileged: it takes the backend itself, not a driver's
    /// [`Device`].
    pub fn new(backend: Box<dyn Backend>, opts: ServerOptions) -> Result<Server, Error> {
        let (device, control) = Device::with_control(backend)?;
        let stop = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| Error::io("eventfd", e))?;
        Ok(Server {
            device,
            control,
            opts,
            dma: ServerDma::default(),
            stop: Arc::new(Stop {
                fd: stop,
                flag: AtomicBool::new(false),
                current: Mutex::new(None),
            }),
            on_session_end: None,
        })
    }

    /// A handle that stops [`Server::run`] / [`Server::serve_connection`].
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// The handle a device model uses to reach the client's memory.
    pub fn dma(&self) -> ServerDma {
        self.dma.clone()
    }

    /// The exported device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Calls `f` with the counts of each session when it ends.
    pub fn on_session_end(&mut self, f: fn(&SessionStats)) {
        self.on_session_end = Some(f);
    }

    fn stopped(&self) -> bool {
        self.stop.flag.load(Ordering::SeqCst)
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
    /// `max_sessions`, until that many sessions have ended.
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
                    if let Some(f) = self.on_session_end {
                        f(&stats);
                    }
                }
                Err(e) => tracing::warn!("accept: {e}"),
            }
            if self.stopped() {
                return Ok(());
            }
        }
    }

    /// Serves one client on `stream` until it leaves (or the server is
    /// stopped), then cleans up after it. Returns the session's counts.
    pub fn serve_connection(&mut self, stream: UnixStream) -> SessionStats {
        let mut session = Session::default();
        // No read timeout on the socket (a wait for the next message arms
        // no timer); the reader enforces `io_timeout` inside a message.
        let mut reader = MessageReader::with_stall_timeout(self.opts.io_timeout);
        let mut stats = SessionStats::default();
        let timeout = Some(self.opts.io_timeout);
        if stream.set_read_timeout(None).is_err() || stream.set_write_timeout(timeout).is_err() {
            stats.end = "cannot set socket timeouts".into();
            return stats;
        }
        // Registered so that `StopHandle::stop` can wake the blocking read.
        if let Ok(dup) = stream.try_clone() {
            *self.stop.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(dup);
        }
        stats.end = loop {
            // Blocking read of the next message, one `recvmsg` for a small
            // message and those queued behind it: no poll per message (the
            // stop handle shuts the socket down to wake us).
            if self.stopped() {
                break "server stopped".into();
            }
            let msg = match reader.next(stream.as_fd()) {
                Ok(msg) => msg,
                Err(RecvError::Closed) if self.stopped() => break "server stopped".into(),
                Err(RecvError::Closed) => break "client closed".into(),
                Err(RecvError::BadHeader { error, raw }) => {
                    // The size cannot be trusted: answer and close.
                    stats.messages += 1;
                    stats.errors += 1;
                    let h = Header::new_unchecked(&raw[..]);
                    let reply =
                        error_reply(h.msg_id(), Command::from_u16(h.command()), error.errno());
                    let _ = send_message(stream.as_fd(), &reply, &[]);
                    break format!("bad header: {error}");
                }
                Err(e) => break Chain(&e).to_string(),
            };
            stats.messages += 1;
            let cmd = msg.header.command.to_u16() as usize;
            stats.by_command[if cmd < stats.by_command.len() { cmd } else { 0 }] += 1;
            let no_reply = matches!(msg.header.kind, Kind::Command { no_reply: true });
            let handled = handle::handle(self, &mut session, msg);
            let (bytes, fds, close) = match handled {
                Handled::Reply(bytes, fds) => (Some(bytes), fds, false),
                Handled::Error(id, cmd, e) => {
                    stats.errors += 1;
                    (Some(error_reply(id, cmd, e).to_vec()), Vec::new(), false)
                }
                Handled::Close(id, cmd, e) => {
                    stats.errors += 1;
                    (Some(error_reply(id, cmd, e).to_vec()), Vec::new(), true)
                }
            };
            if let Some(bytes) = bytes.filter(|_| !no_reply || close) {
                let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
                if let Err(e) = send_message(stream.as_fd(), &bytes, &borrowed) {
                    break format!("send: {e}");
                }
            }
            if close {
                break "refused the client".into();
            }
        };
        *self.stop.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.end_session(&mut session);
        stats
    }

    /// The client is gone: interrupts off, bus mastering off, DMA windows
    /// dropped, device reset.
    fn end_session(&mut self, session: &mut Session) {
        let backend = self.control.backend();
        let name = self.device.name();
        if let Some(kind) = session.irq_kind.take() {
            if let Err(e) = backend.irq_disable(kind) {
                tracing::warn!("{name}: teardown: disabling {kind}: {}", Chain(&e));
            }
        }
        session.irq_fds.clear();
        let mut cmd = [0u8; 2];
        if backend.config_read(pcibox_kit::COMMAND, &mut cmd).is_ok() {
            let v = u16::from_le_bytes(cmd) & !pcibox_kit::COMMAND_BUS_MASTER;
            if let Err(e) = backend.config_write(pcibox_kit::COMMAND, &v.to_le_bytes()) {
                tracing::warn!("{name}: teardown: clearing bus master: {}", Chain(&e));
            }
        }
        self.dma.end_session(backend);
        if let Err(e) = backend.reset() {
            tracing::warn!("{name}: teardown: reset: {}", Chain(&e));
        }
        *session = Session::default();
    }
}

/// Errno for a backend failure.
pub(crate) fn backend_errno(e: &pcibox_kit::Error) -> u32 {
    match e {
        pcibox_kit::Error::Unsupported { .. } => errno::EOPNOTSUPP,
        pcibox_kit::Error::ConfigOffset { .. } | pcibox_kit::Error::RegionBounds { .. } => {
            errno::EINVAL
        }
        _ => errno::EIO,
    }
}

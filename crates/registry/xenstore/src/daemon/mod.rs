//! The daemon: xenstored's Unix-socket interface over the [`Store`].
//!
//! One thread, one `poll` loop. The main socket gives privileged (dom0)
//! connections; each per-domain socket gives unprivileged connections for
//! its domain, whose permissions and quotas are enforced. Every iteration
//! reads what is readable, runs whole requests through the store, appends
//! the resulting changes to the log as one record and queues the replies and
//! watch events; a syncer thread flushes the log meanwhile, and a message
//! leaves only once the changes it reveals are durable (a read of unchanged
//! data goes out at once). Sockets are non-blocking: a client
//! that does not read its replies stops being read once it has `outstanding`
//! replies pending, and is disconnected when its queued output (watch events)
//! passes a bound, so it never holds up anyone else. A guest's request stays
//! outstanding until the events it caused for privileged connections are
//! written ([`outstanding`]), so a privileged connection is never dropped
//! for what a guest did.

mod conn;
mod outstanding;

use crate::persist::{Lock, Persist, PersistError};
use crate::quota::Quotas;
use crate::store::{ConnId, Message, Output, Store};
use conn::{Client, Queued};
use outstanding::Outstanding;
use rustix::event::{poll, PollFd, PollFlags};
use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use xenstore_wire::{Header, HeaderRepr, MsgType, Packet, HEADER_LEN};

/// Daemon settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The privileged main socket.
    pub socket: PathBuf,
    /// Unprivileged sockets, one per domain.
    pub domain_sockets: Vec<(u16, PathBuf)>,
    /// Where the log and snapshot live; `None` keeps the tree in memory only.
    pub state_dir: Option<PathBuf>,
    /// Default quotas for unprivileged domains.
    pub quotas: Quotas,
    /// Log size that triggers a snapshot.
    pub compact_after: u64,
    /// Output bytes queued for one client before it is disconnected.
    pub max_queue: usize,
}

impl Config {
    /// Defaults for a main socket at `socket`.
    pub fn new(socket: PathBuf) -> Config {
        Config {
            socket,
            domain_sockets: Vec::new(),
            state_dir: None,
            quotas: Quotas::default(),
            compact_after: 4 << 20,
            max_queue: 1 << 20,
        }
    }
}

/// A daemon failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A socket could not be set up.
    #[error("cannot set up socket {path}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A daemon is listening on the socket already.
    #[error("{path}: already in use by a running xenstored")]
    SocketInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// `poll` failed.
    #[error("poll failed")]
    Poll(#[source] io::Error),
    /// The state could not be recovered or made durable.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// Replies a privileged client may have pending before it stops being read.
const PRIVILEGED_OUTSTANDING: u32 = 1024;

/// Requests taken from one client per loop iteration: every client gets its
/// turn before anyone's next request, so one that pipelines many requests
/// delays the others by one request each, not by its whole backlog (as
/// xenstored, which handles one request per connection per pass).
const REQUESTS_PER_TURN: usize = 1;

#[derive(Debug)]
struct Listener {
    socket: UnixListener,
    domid: u16,
    privileged: bool,
    /// The socket file, with its device and inode: removed when the daemon
    /// stops if it is still the one bound here.
    path: PathBuf,
    id: (u64, u64),
}

impl Listener {
    fn bind(path: &Path, mode: u32, domid: u16, privileged: bool) -> Result<Listener, DaemonError> {
        use std::os::unix::fs::MetadataExt;
        let socket = bind(path, mode)?;
        let meta = std::fs::symlink_metadata(path).map_err(|source| DaemonError::Socket {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Listener {
            socket,
            domid,
            privileged,
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// The running daemon.
#[derive(Debug)]
pub struct Daemon {
    store: Store,
    persist: Option<Persist>,
    listeners: Vec<Listener>,
    clients: BTreeMap<ConnId, Client>,
    max_queue: usize,
    /// Messages produced in this iteration, with the guest request each
    /// keeps outstanding.
    batch: Vec<(Message, Option<u64>)>,
    outstanding: Outstanding,
}

fn bind(path: &Path, mode: u32) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::Socket {
        path: path.to_path_buf(),
        source,
    };
    // A socket left behind by a previous run (e.g. after kill -9) is
    // replaced; one a daemon still listens on is not. (Anything else at the
    // path makes `bind` fail.)
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(DaemonError::SocketInUse {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!("{}: removing a stale socket", path.display());
                    std::fs::remove_file(path).map_err(err)?;
                }
                Err(e) => return Err(err(e)),
            }
        }
    }
    let l = UnixListener::bind(path).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    Ok(l)
}

impl Daemon {
    /// Recovers the state (if a state directory is set), binds the sockets
    /// and introduces the domains that have one (and were not released).
    pub fn bind(cfg: &Config) -> Result<Daemon, DaemonError> {
        // The state directory first (a second daemon on it touches no
        // socket), then the sockets (a daemon refused a socket creates no
        // state), then the state.
        let lock = cfg.state_dir.as_deref().map(Lock::take).transpose()?;
        let mut listeners = vec![Listener::bind(&cfg.socket, 0o600, 0, true)?];
        for (domid, path) in &cfg.domain_sockets {
            listeners.push(Listener::bind(path, 0o666, *domid, false)?);
        }
        let mut state = "in memory only (no --state-dir)".to_string();
        let (store, persist) = match lock {
            Some(lock) => {
                let dir = cfg.state_dir.clone().unwrap_or_default();
                let (p, rec) = Persist::open(lock, cfg.compact_after)?;
                state = if rec.created {
                    format!("state {}: a new registry", dir.display())
                } else {
                    format!(
                        "state {}: {} nodes ({} log records replayed)",
                        dir.display(),
                        rec.tree.len(),
                        rec.replayed,
                    )
                };
                let mut store = Store::with_state(rec.tree, rec.domains, cfg.quotas);
                store.set_space(p.space());
                (store, Some(p))
            }
            None => (Store::new(cfg.quotas), None),
        };
        let mut d = Daemon {
            store,
            persist,
            listeners,
            clients: BTreeMap::new(),
            max_queue: cfg.max_queue,
            batch: Vec::new(),
            outstanding: Outstanding::default(),
        };
        let mut out = Output::default();
        // A domain with a socket is introduced, unless the recovered state
        // says it was released (then it waits for an INTRODUCE, as before
        // the restart).
        for (domid, _) in &cfg.domain_sockets {
            if d.store.domains().get(domid).is_none_or(|s| s.introduced) {
                d.store.introduce(*domid, &mut out);
            }
        }
        d.finish(out)?;
        let domains: Vec<String> = cfg
            .domain_sockets
            .iter()
            .map(|(d, p)| format!("{d}={}", p.display()))
            .collect();
        tracing::info!(
            "listening on {} (domain sockets: {}); {state}",
            cfg.socket.display(),
            if domains.is_empty() {
                "none".to_string()
            } else {
                domains.join(" ")
            }
        );
        Ok(d)
    }

    /// The store (for tests and tools).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs until `stop` is set (checked at least every 100 ms).
    pub fn run_until(&mut self, stop: &AtomicBool) -> Result<(), DaemonError> {
        while !stop.load(Ordering::Relaxed) {
            self.step(Some(Duration::from_millis(100)))?;
        }
        Ok(())
    }

    /// Runs forever (until an error).
    pub fn run(&mut self) -> Result<(), DaemonError> {
        loop {
            self.step(None)?;
        }
    }

    /// Whether to take more requests from a client: fewer than its
    /// outstanding limit (a guest's: of its domain, see [`outstanding`]),
    /// and less than half the queue bound already queued (`extra`: produced
    /// but not yet queued), so its own replies can never get it
    /// disconnected; only events pushed by others can.
    fn can_take(&self, c: &Client, extra: usize) -> bool {
        let below = if c.privileged {
            c.pending < PRIVILEGED_OUTSTANDING
        } else {
            self.outstanding.of(c.domid) < self.store.quotas_for(c.domid).outstanding.max(1)
        };
        below && c.own_bytes() + extra < self.max_queue / 2
    }

    /// Every change up to this generation is durable.
    fn durable(&self) -> u64 {
        self.persist.as_ref().map_or(u64::MAX, Persist::durable)
    }

    /// One iteration: wait for readiness, read, handle, persist, write.
    pub fn step(&mut self, timeout: Option<Duration>) -> Result<(), DaemonError> {
        let ids: Vec<ConnId> = self.clients.keys().copied().collect();
        let durable = self.durable();
        let (listen_ready, client_ready) = {
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            for l in &self.listeners {
                fds.push(PollFd::new(&l.socket, PollFlags::IN));
            }
            if let Some(p) = &self.persist {
                fds.push(PollFd::from_borrowed_fd(p.wake_fd(), PollFlags::IN));
            }
            for id in &ids {
                let c = &self.clients[id];
                let mut flags = PollFlags::empty();
                if self.can_take(c, 0) {
                    flags |= PollFlags::IN;
                }
                if c.ready(durable) {
                    flags |= PollFlags::OUT;
                }
                fds.push(PollFd::new(&c.stream, flags));
            }
            // Requests already buffered (held back by the outstanding limit
            // earlier) must not wait for new input: do not sleep then.
            let buffered = ids.iter().any(|id| {
                let c = &self.clients[id];
                self.can_take(c, 0)
                    && !matches!(
                        Packet::new_checked(&c.inbuf[..]),
                        Err(xenstore_wire::Error::Truncated)
                    )
            });
            let timeout = if buffered {
                Some(Duration::ZERO)
            } else {
                timeout
            };
            let ts = timeout.map(|t| rustix::time::Timespec {
                tv_sec: t.as_secs() as i64,
                tv_nsec: i64::from(t.subsec_nanos()),
            });
            match poll(&mut fds, ts.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Ok(()),
                Err(e) => return Err(DaemonError::Poll(e.into())),
            }
            let n = self.listeners.len() + usize::from(self.persist.is_some());
            let listen: Vec<bool> = fds[..self.listeners.len()]
                .iter()
                .map(|f| !f.revents().is_empty())
                .collect();
            let clients: Vec<(ConnId, PollFlags)> = ids
                .iter()
                .zip(&fds[n..])
                .map(|(id, f)| (*id, f.revents()))
                .collect();
            (listen, clients)
        };

        if let Some(p) = &self.persist {
            p.check()?;
        }
        let mut out = Output::default();
        let mut dead: Vec<ConnId> = Vec::new();
        for (id, rev) in client_ready {
            let readable = rev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR);
            if readable && !self.clients.get_mut(&id).is_some_and(Client::read) {
                dead.push(id);
            }
        }
        // Hung-up clients go before new ones are counted against the limit.
        for id in dead.drain(..) {
            self.drop_client(id);
        }
        for (i, ready) in listen_ready.iter().enumerate() {
            if *ready {
                self.accept(i);
            }
        }
        // Handle whatever whole requests are buffered (also those left over
        // from earlier iterations by the outstanding limit).
        let ids: Vec<ConnId> = self.clients.keys().copied().collect();
        for id in ids {
            if !dead.contains(&id) && !self.process(id, &mut out) {
                dead.push(id);
            }
        }
        for id in dead {
            self.drop_client(id);
        }
        self.finish(out)
    }

    /// Logs the changes (flushed by the syncer), queues the messages and
    /// writes what may go out.
    fn finish(&mut self, out: Output) -> Result<(), DaemonError> {
        if let Some(p) = &mut self.persist {
            p.append(&out.changes, self.store.tree().generation() - 1)?;
            p.maybe_compact(&self.store);
        }
        for id in out.close {
            self.drop_client(id);
        }
        let mut dead = Vec::new();
        let batch = std::mem::take(&mut self.batch);
        let produced = out.messages.into_iter().map(|m| (m, None));
        for (msg, token) in batch.into_iter().chain(produced) {
            let Some(c) = self.clients.get_mut(&msg.to) else {
                if let Some(t) = token {
                    self.outstanding.done(t);
                }
                continue;
            };
            let id = msg.to;
            let reply = Header::new_checked(&msg.bytes[..])
                .map_or(true, |h| h.msg_type() != MsgType::WatchEvent as u32);
            c.push(Queued { msg, reply, token });
            if c.own_bytes() > self.max_queue && !dead.contains(&id) {
                tracing::warn!(
                    "disconnecting domain {} client: {} bytes of output unread",
                    c.domid,
                    c.own_bytes()
                );
                dead.push(id);
            }
        }
        let ids: Vec<ConnId> = self.clients.keys().copied().collect();
        for id in ids {
            if !dead.contains(&id) && !self.flush(id) {
                dead.push(id);
            }
        }
        for id in dead {
            self.drop_client(id);
        }
        Ok(())
    }

    fn accept(&mut self, i: usize) {
        loop {
            let l = &self.listeners[i];
            match l.socket.accept() {
                Ok((stream, _)) => {
                    let (domid, privileged) = (l.domid, l.privileged);
                    if !privileged && !self.store.is_introduced(domid) {
                        // Released domains are not served.
                        continue;
                    }
                    if !privileged {
                        let open = self
                            .clients
                            .values()
                            .filter(|c| c.domid == domid && !c.privileged)
                            .count();
                        if open >= self.store.quotas_for(domid).connections as usize {
                            tracing::debug!("domain {domid}: connection limit reached");
                            continue;
                        }
                    }
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let id = self.store.connect(domid, privileged);
                    self.clients
                        .insert(id, Client::new(stream, domid, privileged));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Handles up to [`REQUESTS_PER_TURN`] buffered whole requests, within
    /// the outstanding limit; `false` if the client broke the framing.
    fn process(&mut self, id: ConnId, out: &mut Output) -> bool {
        // Bytes of output produced for this client in this iteration.
        let mut produced = 0;
        for _ in 0..REQUESTS_PER_TURN {
            let Some(c) = self.clients.get(&id) else {
                return true;
            };
            if !self.can_take(c, produced) {
                return true;
            }
            let (h, total) = match Packet::new_checked(&c.inbuf[..]) {
                Ok(p) => (HeaderRepr::parse(&p.header()), p.total_len()),
                Err(xenstore_wire::Error::Truncated) => return true,
                Err(e) => {
                    tracing::warn!("disconnecting domain {} client: {e}", c.domid);
                    return false;
                }
            };
            let (domid, guest) = (c.domid, !c.privileged);
            let payload = c.inbuf[HEADER_LEN..total].to_vec();
            if let Some(c) = self.clients.get_mut(&id) {
                c.inbuf.drain(..total);
            }
            let before = out.messages.len();
            self.store.handle(id, &h, &payload, out);
            let new: Vec<Message> = out.messages.drain(before..).collect();
            produced += new
                .iter()
                .filter(|m| m.to == id)
                .map(|m| m.bytes.len())
                .sum::<usize>();
            // A guest's request is outstanding until its reply and the
            // events it caused for privileged connections are written.
            let waits = |m: &Message| {
                guest && (m.to == id || self.clients.get(&m.to).is_some_and(|c| c.privileged))
            };
            let token = self
                .outstanding
                .open(domid, new.iter().filter(|m| waits(m)).count() as u32);
            for m in new {
                let t = token.filter(|_| waits(&m));
                self.batch.push((m, t));
            }
        }
        true
    }

    /// Writes queued output that may go out (what it reveals is durable);
    /// `false` if the client is gone.
    fn flush(&mut self, id: ConnId) -> bool {
        let durable = self.durable();
        let outstanding = &mut self.outstanding;
        self.clients
            .get_mut(&id)
            .is_none_or(|c| c.flush(durable, |t| outstanding.done(t)))
    }

    fn drop_client(&mut self, id: ConnId) {
        if let Some(c) = self.clients.remove(&id) {
            for t in c.into_tokens() {
                self.outstanding.done(t);
            }
            self.store.disconnect(id);
        }
    }
}

/// An error and its causes, joined by ": " (for a log line).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A daemon running on its own thread, stopped when dropped (for tests,
/// benchmarks and tools embedding the registry).
#[derive(Debug)]
pub struct DaemonThread {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<(), DaemonError>>>,
}

impl Daemon {
    /// Binds as [`Daemon::bind`] does, then serves on a new thread.
    pub fn spawn(cfg: &Config) -> Result<DaemonThread, DaemonError> {
        let mut d = Daemon::bind(cfg)?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || d.run_until(&s));
        Ok(DaemonThread {
            stop,
            thread: Some(thread),
        })
    }
}

impl DaemonThread {
    /// Stops the daemon and returns how its loop ended.
    pub fn stop(mut self) -> Result<(), DaemonError> {
        self.halt()
    }

    fn halt(&mut self) -> Result<(), DaemonError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for DaemonThread {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

//! A blocking client for pcibox's own parts (the broker, driver domains,
//! tests), speaking the same protocol as libxenstore.
//!
//! Watch events that arrive while waiting for a reply are queued and handed
//! out by [`Client::wait_event`]. [`Client::reconnect`] reopens the socket
//! and re-registers every watch, so a restarted daemon is transparent apart
//! from a spurious event per watch and any transaction that was open (which
//! fails with `ENOENT` and is retried by [`Client::transaction`]).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xenstore_wire::{
    split_strings, Errno, HeaderRepr, Packet, Perm, Reply, Request, HEADER_LEN, PAYLOAD_MAX,
};

/// A client failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed.
    #[error("xenstore socket")]
    Io(#[from] io::Error),
    /// The daemon answered with an error.
    #[error("xenstore: {0}")]
    Xs(Errno),
    /// The daemon sent something unparseable.
    #[error("xenstore protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The errno name, if the daemon refused the request.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ClientError::Xs(e) => Some(*e),
            _ => None,
        }
    }
}

/// Result of client calls.
pub type Result<T> = std::result::Result<T, ClientError>;

/// A watch event: the path and the token.
pub type WatchEvent = (String, Vec<u8>);

/// The socket a client uses by default: `XENSTORED_PATH`, else
/// `$XENSTORED_RUNDIR/socket`, else `/var/run/xenstored/socket` (as
/// libxenstore and pyxs do).
pub fn default_socket() -> PathBuf {
    if let Some(p) = std::env::var_os("XENSTORED_PATH") {
        return PathBuf::from(p);
    }
    let dir = std::env::var_os("XENSTORED_RUNDIR")
        .map_or_else(|| PathBuf::from("/var/run/xenstored"), PathBuf::from);
    dir.join("socket")
}

/// A connection to a XenStore daemon.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    stream: UnixStream,
    next_req: u32,
    inbuf: Vec<u8>,
    events: VecDeque<WatchEvent>,
    watches: Vec<(String, Vec<u8>)>,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Client> {
        Ok(Client {
            path: path.to_path_buf(),
            stream: UnixStream::connect(path)?,
            next_req: 1,
            inbuf: Vec::new(),
            events: VecDeque::new(),
            watches: Vec::new(),
        })
    }

    /// Connects to [`default_socket`].
    pub fn open() -> Result<Client> {
        Client::connect(&default_socket())
    }

    /// Reconnects (e.g. after the daemon restarted) and re-registers the
    /// watches.
    pub fn reconnect(&mut self) -> Result<()> {
        self.stream = UnixStream::connect(&self.path)?;
        self.inbuf.clear();
        let watches = std::mem::take(&mut self.watches);
        for (p, t) in watches {
            self.watch(&p, &t)?;
        }
        Ok(())
    }

    /// Receives one message, waiting up to `deadline` (`None`: forever).
    /// `Ok(None)` on timeout.
    fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<(HeaderRepr, Vec<u8>)>> {
        loop {
            match Packet::new_checked(&self.inbuf[..]) {
                Ok(p) => {
                    let h = HeaderRepr::parse(&p.header());
                    let payload = p.payload().to_vec();
                    let total = p.total_len();
                    self.inbuf.drain(..total);
                    return Ok(Some((h, payload)));
                }
                Err(xenstore_wire::Error::Truncated) => {}
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
            let timeout = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
                None => None,
            };
            self.stream.set_read_timeout(timeout)?;
            let mut buf = [0u8; HEADER_LEN + PAYLOAD_MAX];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(ClientError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "daemon closed the connection",
                    )))
                }
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn queue_event(&mut self, payload: &[u8]) -> Result<()> {
        match Reply::parse(xenstore_wire::MsgType::WatchEvent as u32, payload) {
            Ok(Reply::WatchEvent { path, token }) => {
                self.events.push_back((path.to_string(), token.to_vec()));
                Ok(())
            }
            _ => Err(ClientError::Protocol("malformed watch event".into())),
        }
    }

    /// Sends a request in transaction `tx` (0: none) and returns the reply
    /// payload.
    pub fn request(&mut self, tx: u32, req: &Request<'_>) -> Result<Vec<u8>> {
        let req_id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1).max(1);
        let msg = req
            .emit(req_id, tx)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.stream.write_all(&msg)?;
        loop {
            let Some((h, payload)) = self.recv(None)? else {
                continue;
            };
            match Reply::parse(h.msg_type, &payload) {
                Ok(Reply::WatchEvent { .. }) => self.queue_event(&payload)?,
                Ok(Reply::Error(e)) if h.req_id == req_id => return Err(ClientError::Xs(e)),
                Ok(Reply::Data { .. }) if h.req_id == req_id => return Ok(payload),
                Ok(_) => {
                    return Err(ClientError::Protocol(format!(
                        "reply to request {} while waiting for {req_id}",
                        h.req_id
                    )))
                }
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
        }
    }

    fn ack(&mut self, tx: u32, req: &Request<'_>) -> Result<()> {
        self.request(tx, req).map(drop)
    }

    /// Reads a node.
    pub fn read(&mut self, tx: u32, path: &str) -> Result<Vec<u8>> {
        self.request(tx, &Request::Read { path })
    }

    /// Reads a node as text (`None` if it does not exist).
    pub fn read_string(&mut self, tx: u32, path: &str) -> Result<Option<String>> {
        match self.read(tx, path) {
            Ok(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            Err(ClientError::Xs(Errno::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a node, creating it and its parents.
    pub fn write(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<()> {
        self.ack(tx, &Request::Write { path, value })
    }

    /// Creates a node if missing.
    pub fn mkdir(&mut self, tx: u32, path: &str) -> Result<()> {
        self.ack(tx, &Request::Mkdir { path })
    }

    /// Removes a node and its subtree.
    pub fn rm(&mut self, tx: u32, path: &str) -> Result<()> {
        self.ack(tx, &Request::Rm { path })
    }

    /// Lists a node's children.
    pub fn directory(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        let payload = self.request(tx, &Request::Directory { path })?;
        let names = split_strings(&payload).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(names
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect())
    }

    /// Reads a node's permissions.
    pub fn get_perms(&mut self, tx: u32, path: &str) -> Result<Vec<Perm>> {
        let payload = self.request(tx, &Request::GetPerms { path })?;
        split_strings(&payload)
            .and_then(|f| f.iter().map(|p| Perm::parse(p)).collect())
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sets a node's permissions.
    pub fn set_perms(&mut self, tx: u32, path: &str, perms: &[Perm]) -> Result<()> {
        self.ack(
            tx,
            &Request::SetPerms {
                path,
                perms: perms.to_vec(),
            },
        )
    }

    /// Starts a transaction.
    pub fn transaction_start(&mut self) -> Result<u32> {
        let payload = self.request(0, &Request::TransactionStart)?;
        let text = payload.strip_suffix(b"\0").unwrap_or(&payload);
        std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ClientError::Protocol("bad transaction id".into()))
    }

    /// Ends a transaction; `Ok(false)` if the commit conflicted (`EAGAIN`).
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<bool> {
        match self.ack(tx, &Request::TransactionEnd { commit }) {
            Ok(()) => Ok(true),
            Err(ClientError::Xs(Errno::EAGAIN)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs `f` in a transaction, retrying on conflicts (up to 100 times).
    /// If `f` fails the transaction is aborted and the error returned.
    pub fn transaction<T>(
        &mut self,
        mut f: impl FnMut(&mut Client, u32) -> Result<T>,
    ) -> Result<T> {
        for _ in 0..100 {
            let tx = self.transaction_start()?;
            match f(self, tx) {
                Ok(v) => {
                    if self.transaction_end(tx, true)? {
                        return Ok(v);
                    }
                }
                Err(e) => {
                    let _ = self.transaction_end(tx, false);
                    return Err(e);
                }
            }
        }
        Err(ClientError::Xs(Errno::EAGAIN))
    }

    /// Registers a watch (it fires once straight away).
    pub fn watch(&mut self, path: &str, token: &[u8]) -> Result<()> {
        self.ack(0, &Request::Watch { path, token })?;
        self.watches.push((path.to_string(), token.to_vec()));
        Ok(())
    }

    /// Removes a watch.
    pub fn unwatch(&mut self, path: &str, token: &[u8]) -> Result<()> {
        self.ack(0, &Request::Unwatch { path, token })?;
        self.watches.retain(|(p, t)| !(p == path && t == token));
        Ok(())
    }

    /// The next watch event, waiting up to `timeout` (`None`: forever);
    /// `Ok(None)` on timeout.
    pub fn wait_event(&mut self, timeout: Option<Duration>) -> Result<Option<WatchEvent>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            let Some((h, payload)) = self.recv(deadline)? else {
                return Ok(None);
            };
            if h.msg_type == xenstore_wire::MsgType::WatchEvent as u32 {
                self.queue_event(&payload)?;
            } else {
                return Err(ClientError::Protocol(format!(
                    "unexpected reply to request {}",
                    h.req_id
                )));
            }
        }
    }

    /// A domain's home path.
    pub fn get_domain_path(&mut self, domid: u16) -> Result<String> {
        let p = self.request(0, &Request::GetDomainPath { domid })?;
        Ok(String::from_utf8_lossy(p.strip_suffix(b"\0").unwrap_or(&p)).into_owned())
    }

    /// Introduces a domain (privileged).
    pub fn introduce(&mut self, domid: u16) -> Result<()> {
        self.ack(
            0,
            &Request::Introduce {
                domid,
                mfn: 0,
                evtchn: 0,
            },
        )
    }

    /// Releases a domain (privileged).
    pub fn release(&mut self, domid: u16) -> Result<()> {
        self.ack(0, &Request::Release { domid })
    }
}

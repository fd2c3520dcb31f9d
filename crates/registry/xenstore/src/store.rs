//! The store: the tree, the domains, and the state of every connection
//! (watches, transactions). It turns one request into replies, watch events
//! for any connection, changes to persist, and connections to close; it does
//! no I/O itself, so the daemon, the tests and the fuzz target share it.

use crate::node::{Caller, Node};
use crate::ops::{Event, TxState, View};
use crate::persist;
use crate::quota::Quotas;
use crate::tree::{ChangeSet, Tree};
use crate::watch::Watch;
use std::collections::BTreeMap;
use std::sync::Arc;
use xenstore_wire::{
    join_strings, path, Errno, HeaderRepr, MsgType, Packet, Reply, Request, ABS_PATH_MAX,
};

/// A connection's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// First domain id reserved by Xen (`DOMID_FIRST_RESERVED`).
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;

#[derive(Debug)]
struct Conn {
    domid: u16,
    privileged: bool,
    watches: Vec<Watch>,
    txs: BTreeMap<u32, TxState>,
    next_tx: u32,
}

/// What the store knows about a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Domain {
    /// Introduced and not released.
    pub introduced: bool,
    /// `SET_TARGET`: the domain this one acts for.
    pub target: Option<u16>,
    /// Feature bitmap (`SET_FEATURE`); no optional features exist here.
    pub features: u32,
    /// Quotas overriding the defaults (`SET_QUOTA <domid>|…`).
    pub quotas: Option<Quotas>,
}

/// A change the daemon must make durable before sending the replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A node was written (`Some`) or removed (`None`).
    Node {
        /// Absolute path.
        path: String,
        /// The new node.
        node: Option<Arc<Node>>,
    },
    /// Only the children of a node changed (a log entry; the tree and the
    /// snapshot hold whole nodes): `removed` names were taken out, then
    /// `added` names appended.
    Children {
        /// Absolute path.
        path: String,
        /// Names removed.
        removed: Vec<String>,
        /// Names appended.
        added: Vec<String>,
    },
    /// A domain was introduced or released.
    Domain {
        /// The domain.
        domid: u16,
        /// Its new state.
        introduced: bool,
    },
}

/// A message for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The connection.
    pub to: ConnId,
    /// Header and payload.
    pub bytes: Vec<u8>,
    /// The generation of committed state the message reveals (0: none): it
    /// may only be sent once every change up to that generation is durable,
    /// so nobody learns of a change a crash could still undo.
    pub needs: u64,
}

/// The effects of handling requests.
#[derive(Debug, Default)]
pub struct Output {
    /// Messages to queue, in order, per connection.
    pub messages: Vec<Message>,
    /// Changes to persist before any of the messages are sent.
    pub changes: Vec<Change>,
    /// Connections the store has dropped (released domains).
    pub close: Vec<ConnId>,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    tree: Tree,
    domains: BTreeMap<u16, Domain>,
    conns: BTreeMap<ConnId, Conn>,
    quotas: Quotas,
    next_conn: u64,
    pending_events: Vec<Event>,
    /// What the request being handled depends on (see [`Message::needs`]).
    observed: u64,
    /// Room in the log, if it is limited.
    space: Option<Box<dyn Space>>,
}

/// Room to log changes in: before any change is made, the store asks for
/// the bytes its log record will take. If the answer is no, the request
/// fails with `ENOSPC` and nothing changes — so nothing is acknowledged that
/// could not be made durable, and reads go on.
pub trait Space: Send + std::fmt::Debug {
    /// Whether `bytes` more can be logged (and, if so, they are promised).
    fn reserve(&mut self, bytes: usize) -> bool;
}

/// Log bytes a domain being introduced or released takes (at most).
const DOMAIN_RECORD: usize = 4 + persist::frame::FRAME_HEADER_LEN;

/// `new` as a [`Change::Children`] against `old`, if only one child was
/// appended or removed (what creating or removing a node does to its parent).
fn children_delta(path: &str, old: Option<&Node>, new: Option<&Node>) -> Option<Change> {
    let (old, new) = (old?, new?);
    if old.value != new.value || old.perms != new.perms {
        return None;
    }
    let (o, n) = (&old.children, &new.children);
    let (removed, added) = if n.len() == o.len() + 1 && n[..o.len()] == o[..] {
        (Vec::new(), vec![n[o.len()].clone()])
    } else if n.len() + 1 == o.len() {
        let i = o.iter().zip(n).position(|(a, b)| a != b).unwrap_or(n.len());
        if o[i + 1..] != n[i..] {
            return None;
        }
        (vec![o[i].clone()], Vec::new())
    } else {
        return None;
    };
    Some(Change::Children {
        path: path.to_string(),
        removed,
        added,
    })
}

impl Output {
    fn push(&mut self, to: ConnId, bytes: Vec<u8>, needs: u64) {
        self.messages.push(Message { to, bytes, needs });
    }
}

impl Store {
    /// A store with the initial tree.
    pub fn new(quotas: Quotas) -> Store {
        Store::with_state(Tree::new(), BTreeMap::new(), quotas)
    }

    /// A store from recovered state.
    pub fn with_state(tree: Tree, domains: BTreeMap<u16, Domain>, quotas: Quotas) -> Store {
        Store {
            tree,
            domains,
            conns: BTreeMap::new(),
            quotas,
            next_conn: 1,
            pending_events: Vec::new(),
            observed: 0,
            space: None,
        }
    }

    /// Limits changes to what `space` has room to log.
    pub fn set_space(&mut self, space: Box<dyn Space>) {
        self.space = Some(space);
    }

    /// The committed tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The domains.
    pub fn domains(&self) -> &BTreeMap<u16, Domain> {
        &self.domains
    }

    /// The default quotas.
    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// The quotas of one domain.
    pub fn quotas_for(&self, domid: u16) -> Quotas {
        self.domains
            .get(&domid)
            .and_then(|d| d.quotas)
            .unwrap_or(self.quotas)
    }

    /// Opens a connection for `domid`.
    pub fn connect(&mut self, domid: u16, privileged: bool) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                domid,
                privileged,
                watches: Vec::new(),
                txs: BTreeMap::new(),
                next_tx: 1,
            },
        );
        id
    }

    /// Drops a connection with its watches and open transactions.
    pub fn disconnect(&mut self, id: ConnId) {
        self.conns.remove(&id);
    }

    /// Number of open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Number of watches a connection holds.
    pub fn watch_count(&self, id: ConnId) -> usize {
        self.conns.get(&id).map_or(0, |c| c.watches.len())
    }

    /// Number of open transactions of a connection.
    pub fn transaction_count(&self, id: ConnId) -> usize {
        self.conns.get(&id).map_or(0, |c| c.txs.len())
    }

    /// Marks a domain introduced (as `INTRODUCE` does) and fires
    /// `@introduceDomain` if it was not.
    pub fn introduce(&mut self, domid: u16, out: &mut Output) {
        let d = self.domains.entry(domid).or_default();
        if !d.introduced {
            d.introduced = true;
            out.changes.push(Change::Domain {
                domid,
                introduced: true,
            });
            self.observed = self.observed.max(self.tree.bump());
            self.fire_special(path::INTRODUCE_DOMAIN, out);
        }
    }

    /// Whether `domid` is introduced (dom0 always is).
    pub fn is_introduced(&self, domid: u16) -> bool {
        domid == 0 || self.domains.get(&domid).is_some_and(|d| d.introduced)
    }

    fn caller(&self, id: ConnId) -> Option<Caller> {
        let c = self.conns.get(&id)?;
        Some(Caller {
            domid: c.domid,
            privileged: c.privileged,
            target: self.domains.get(&c.domid).and_then(|d| d.target),
        })
    }

    /// Handles every whole message at the start of `bytes`; returns how many
    /// bytes were consumed, or `Err` if the peer broke the framing (payload
    /// over the limit), after which the connection must be closed.
    pub fn handle_bytes(
        &mut self,
        id: ConnId,
        bytes: &[u8],
        out: &mut Output,
    ) -> Result<usize, xenstore_wire::Error> {
        let mut used = 0;
        loop {
            match Packet::new_checked(&bytes[used..]) {
                Ok(p) => {
                    let h = HeaderRepr::parse(&p.header());
                    self.handle(id, &h, p.payload(), out);
                    used += p.total_len();
                }
                Err(xenstore_wire::Error::Truncated) => return Ok(used),
                Err(e) => return Err(e),
            }
        }
    }

    /// Handles `req` as a client would send it (request id `req_id`, in
    /// transaction `tx_id`).
    pub fn handle_request(
        &mut self,
        id: ConnId,
        req_id: u32,
        tx_id: u32,
        req: &Request<'_>,
        out: &mut Output,
    ) {
        let payload = req.payload();
        let h = HeaderRepr {
            msg_type: req.msg_type() as u32,
            req_id,
            tx_id,
            len: payload.len() as u32,
        };
        self.handle(id, &h, &payload, out);
    }

    /// Handles one request.
    pub fn handle(&mut self, id: ConnId, h: &HeaderRepr, payload: &[u8], out: &mut Output) {
        if !self.conns.contains_key(&id) {
            return;
        }
        self.observed = 0;
        let (ty, result) = match Request::parse(h.msg_type, payload) {
            Ok(req) => {
                let ty = req.msg_type();
                (ty, self.dispatch(id, h.tx_id, req, out))
            }
            Err(e) => (MsgType::Error, Err(e.errno())),
        };
        let reply = match &result {
            Ok(payload) => Reply::Data {
                msg_type: ty,
                payload,
            },
            Err(e) => Reply::Error(*e),
        };
        let msg = reply
            .emit(h.req_id, h.tx_id)
            .or_else(|_| Reply::Error(Errno::E2BIG).emit(h.req_id, h.tx_id));
        if let Ok(msg) = msg {
            out.push(id, msg, self.observed);
        }
        // A new watch fires once straight away, after its reply.
        if let (Ok(_), MsgType::Watch) = (&result, ty) {
            if let Some(w) = self.conns.get(&id).and_then(|c| c.watches.last()) {
                let ev = Reply::WatchEvent {
                    path: &w.given,
                    token: &w.token,
                };
                if let Ok(m) = ev.emit(0, 0) {
                    out.push(id, m, 0);
                }
            }
        }
        let events = std::mem::take(&mut self.pending_events);
        self.fire(&events, out);
    }

    fn canonical(&self, caller: &Caller, p: &str) -> Result<String, Errno> {
        let abs = if path::is_absolute(p) {
            p.to_string()
        } else {
            format!("{}/{p}", path::domain_home(caller.domid))
        };
        if abs.len() > ABS_PATH_MAX {
            return Err(Errno::EINVAL);
        }
        if !caller.privileged {
            // The length below any domain's home counts against path-max.
            let below = abs
                .strip_prefix("/local/domain/")
                .and_then(|r| r.split_once('/'))
                .map_or(abs.as_str(), |(_, rest)| rest);
            if below.len() > self.quotas_for(caller.domid).path_max as usize {
                return Err(Errno::EINVAL);
            }
        }
        Ok(abs)
    }

    /// Runs a node operation in the transaction `tx_id` (0: none). It
    /// works on a stage of its own: nothing is copied per request, and a
    /// failed request changes nothing but the record of what it looked at.
    fn node_op<R>(
        &mut self,
        id: ConnId,
        tx_id: u32,
        p: &str,
        f: impl FnOnce(&mut View<'_>, &str) -> Result<R, Errno>,
        out: &mut Output,
    ) -> Result<R, Errno> {
        let caller = self.caller(id).ok_or(Errno::EINVAL)?;
        let quotas = self.quotas_for(caller.domid);
        let abs = self.canonical(&caller, p)?;
        let tx = match tx_id {
            0 => None,
            t => {
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                Some(conn.txs.get_mut(&t).ok_or(Errno::ENOENT)?)
            }
        };
        let mut view = View::new(&self.tree, tx, caller, quotas);
        let r = f(&mut view, &abs);
        self.observed = self.observed.max(view.depends_on());
        if let Some(stage) = view.finish(r.is_ok()) {
            self.commit(stage.changes, stage.events, out)?;
        }
        r
    }

    /// Whether `bytes` more of log can be written (see [`Space`]).
    fn reserve(&mut self, bytes: usize) -> bool {
        self.space.as_mut().is_none_or(|s| s.reserve(bytes))
    }

    /// Applies `changes`, unless there is no room to log them (`ENOSPC`:
    /// then nothing changes).
    fn commit(
        &mut self,
        mut changes: ChangeSet,
        events: Vec<Event>,
        out: &mut Output,
    ) -> Result<(), Errno> {
        if changes.is_empty() {
            return Ok(());
        }
        // A directory gaining or losing a child is logged as that, not whole.
        let deltas: Vec<Option<Change>> = changes
            .iter()
            .map(|(p, n)| children_delta(p, self.tree.get(p), n.as_deref()))
            .collect();
        let need: usize = changes
            .iter()
            .zip(&deltas)
            .map(|((p, n), d)| match (d, n) {
                (Some(d), _) => persist::entry_len(d),
                (None, Some(n)) => persist::node_len(p, n),
                (None, None) => persist::entry_len(&Change::Node {
                    path: p.clone(),
                    node: None,
                }),
            })
            .sum();
        if !self.reserve(need + persist::frame::FRAME_HEADER_LEN) {
            return Err(Errno::ENOSPC);
        }
        let gen = self.tree.apply(&mut changes);
        self.observed = self.observed.max(gen);
        for ((p, node), delta) in changes.into_iter().zip(deltas) {
            out.changes
                .push(delta.unwrap_or(Change::Node { path: p, node }));
        }
        self.pending_events.extend(events);
        Ok(())
    }

    /// Whether committing `tx` would leave a domain owning more nodes than
    /// its quota. Each request in the transaction was checked against the
    /// tree as it was then; other transactions of the same domain may have
    /// committed since, so the count is checked again against the tree now
    /// (as xenstored does at commit).
    fn over_node_quota(&self, tx: &TxState) -> bool {
        tx.owned_delta.iter().any(|(d, delta)| {
            *delta > 0
                && i64::from(self.tree.owned_by(*d)) + delta > i64::from(self.quotas_for(*d).nodes)
        })
    }

    fn fire(&self, events: &[Event], out: &mut Output) {
        for ev in events {
            for (id, conn) in &self.conns {
                let caller = Caller {
                    domid: conn.domid,
                    privileged: conn.privileged,
                    target: self.domains.get(&conn.domid).and_then(|d| d.target),
                };
                if !caller.access(&ev.perms).can_read() {
                    continue;
                }
                for w in &conn.watches {
                    if let Some(epath) = w.matches(ev) {
                        let m = Reply::WatchEvent {
                            path: &epath,
                            token: &w.token,
                        }
                        .emit(0, 0);
                        if let Ok(m) = m {
                            out.push(*id, m, self.observed);
                        }
                    }
                }
            }
        }
    }

    /// Special events reach privileged watchers only.
    fn fire_special(&self, name: &str, out: &mut Output) {
        for (id, conn) in &self.conns {
            if !conn.privileged {
                continue;
            }
            for w in conn.watches.iter().filter(|w| w.path == name) {
                if let Ok(m) = (Reply::WatchEvent {
                    path: name,
                    token: &w.token,
                })
                .emit(0, 0)
                {
                    out.push(*id, m, self.observed);
                }
            }
        }
    }

    fn require_privileged(&self, id: ConnId) -> Result<(), Errno> {
        match self.conns.get(&id) {
            Some(c) if c.privileged => Ok(()),
            _ => Err(Errno::EACCES),
        }
    }

    fn dispatch(
        &mut self,
        id: ConnId,
        tx_id: u32,
        req: Request<'_>,
        out: &mut Output,
    ) -> Result<Vec<u8>, Errno> {
        let ok = || Ok(xenstore_wire::OK.to_vec());
        match req {
            Request::Read { path } => self.node_op(id, tx_id, path, |v, p| v.read(p), out),
            Request::Directory { path } => {
                self.node_op(id, tx_id, path, |v, p| v.directory(p), out)
            }
            Request::DirectoryPart { path, offset } => {
                self.node_op(id, tx_id, path, |v, p| v.directory_part(p, offset), out)
            }
            Request::GetPerms { path } => {
                let perms = self.node_op(id, tx_id, path, |v, p| v.get_perms(p), out)?;
                let strs: Vec<Vec<u8>> = perms.iter().map(|p| p.emit()).collect();
                Ok(join_strings(strs.iter().map(|s| &s[..])))
            }
            Request::Write { path, value } => {
                self.node_op(id, tx_id, path, |v, p| v.write(p, value), out)?;
                ok()
            }
            Request::Mkdir { path } => {
                self.node_op(id, tx_id, path, |v, p| v.mkdir(p), out)?;
                ok()
            }
            Request::Rm { path } => {
                self.node_op(id, tx_id, path, |v, p| v.rm(p), out)?;
                ok()
            }
            Request::SetPerms { path, perms } => {
                self.node_op(id, tx_id, path, |v, p| v.set_perms(p, perms), out)?;
                ok()
            }
            Request::Watch { path, token } => {
                self.watch(id, path, token)?;
                ok()
            }
            Request::Unwatch { path, token } => {
                let abs = self.watch_path(id, path)?.1;
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                let before = conn.watches.len();
                conn.watches
                    .retain(|w| !(w.path == abs && w.token == token));
                if conn.watches.len() == before {
                    return Err(Errno::ENOENT);
                }
                ok()
            }
            Request::ResetWatches => {
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                conn.watches.clear();
                conn.txs.clear();
                ok()
            }
            Request::TransactionStart => {
                if tx_id != 0 {
                    return Err(Errno::EBUSY);
                }
                let caller = self.caller(id).ok_or(Errno::EINVAL)?;
                let limit = self.quotas_for(caller.domid).transactions as usize;
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                if !conn.privileged && conn.txs.len() >= limit {
                    return Err(Errno::ENOSPC);
                }
                let mut t = conn.next_tx;
                while t == 0 || conn.txs.contains_key(&t) {
                    t = t.wrapping_add(1);
                }
                conn.next_tx = t.wrapping_add(1);
                conn.txs.insert(t, TxState::default());
                let mut reply = t.to_string().into_bytes();
                reply.push(0);
                Ok(reply)
            }
            Request::TransactionEnd { commit } => {
                let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
                let privileged = conn.privileged;
                let tx = conn.txs.remove(&tx_id).ok_or(Errno::ENOENT)?;
                if commit {
                    // A refusal reveals something changed: it waits for
                    // everything committed so far.
                    if tx.conflicts(&self.tree) {
                        self.observed = self.tree.generation() - 1;
                        return Err(Errno::EAGAIN);
                    }
                    if !privileged && self.over_node_quota(&tx) {
                        self.observed = self.tree.generation() - 1;
                        return Err(Errno::ENOSPC);
                    }
                    self.commit(tx.changes, tx.events, out)?;
                }
                ok()
            }
            Request::GetDomainPath { domid } => {
                let mut p = path::domain_home(domid).into_bytes();
                p.push(0);
                Ok(p)
            }
            Request::IsDomainIntroduced { domid } => Ok(if self.is_introduced(domid) {
                b"T\0".to_vec()
            } else {
                b"F\0".to_vec()
            }),
            Request::Introduce { domid, .. } => {
                self.require_privileged(id)?;
                if domid == 0 || domid >= DOMID_FIRST_RESERVED {
                    return Err(Errno::EINVAL);
                }
                if !self.is_introduced(domid) && !self.reserve(DOMAIN_RECORD) {
                    return Err(Errno::ENOSPC);
                }
                self.introduce(domid, out);
                ok()
            }
            Request::Release { domid } => {
                self.require_privileged(id)?;
                self.release(domid, out)?;
                ok()
            }
            Request::Resume { domid } => {
                self.require_privileged(id)?;
                if !self.is_introduced(domid) {
                    return Err(Errno::ENOENT);
                }
                ok()
            }
            Request::SetTarget { domid, target } => {
                self.require_privileged(id)?;
                self.domains.entry(domid).or_default().target = Some(target);
                ok()
            }
            Request::Control { args } => {
                self.require_privileged(id)?;
                self.control(&args)
            }
            Request::GetFeature { domid } => {
                self.require_privileged(id)?;
                let f = match domid {
                    Some(d) => self.domains.get(&d).map_or(0, |d| d.features),
                    None => 0,
                };
                Ok(format!("{f}\0").into_bytes())
            }
            Request::SetFeature { domid, features } => {
                self.require_privileged(id)?;
                // No optional features are implemented: only 0 is valid.
                if features != 0 {
                    return Err(Errno::EINVAL);
                }
                self.domains.entry(domid).or_default().features = 0;
                ok()
            }
            Request::GetQuota { domid, name } => {
                self.require_privileged(id)?;
                let Some(name) = name else {
                    return Ok(format!("{}\0", Quotas::NAMES.join(" ")).into_bytes());
                };
                let q = match domid {
                    Some(d) => self.quotas_for(d),
                    None => self.quotas,
                };
                let v = q.get(name).ok_or(Errno::EINVAL)?;
                Ok(format!("{v}\0").into_bytes())
            }
            Request::SetQuota { domid, name, value } => {
                self.require_privileged(id)?;
                match domid {
                    Some(d) => {
                        let mut q = self.quotas_for(d);
                        q.set(name, value).map_err(|_| Errno::EINVAL)?;
                        self.domains.entry(d).or_default().quotas = Some(q);
                    }
                    None => self.quotas.set(name, value).map_err(|_| Errno::EINVAL)?,
                }
                ok()
            }
        }
    }

    /// The absolute watch path and how events are presented.
    fn watch_path(
        &self,
        id: ConnId,
        given: &str,
    ) -> Result<(Caller, String, Option<String>), Errno> {
        let caller = self.caller(id).ok_or(Errno::EINVAL)?;
        if path::is_special(given) {
            return Ok((caller, given.to_string(), None));
        }
        let abs = self.canonical(&caller, given)?;
        let rel =
            (!path::is_absolute(given)).then(|| format!("{}/", path::domain_home(caller.domid)));
        Ok((caller, abs, rel))
    }

    fn watch(&mut self, id: ConnId, given: &str, token: &[u8]) -> Result<(), Errno> {
        let (caller, abs, relative_to) = self.watch_path(id, given)?;
        if !caller.privileged {
            let held: usize = self
                .conns
                .values()
                .filter(|c| c.domid == caller.domid && !c.privileged)
                .map(|c| c.watches.len())
                .sum();
            if held >= self.quotas_for(caller.domid).watches as usize {
                return Err(Errno::E2BIG);
            }
        }
        let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
        if conn
            .watches
            .iter()
            .any(|w| w.path == abs && w.token == token)
        {
            return Err(Errno::EEXIST);
        }
        conn.watches.push(Watch {
            given: given.to_string(),
            path: abs,
            token: token.to_vec(),
            relative_to,
        });
        Ok(())
    }

    fn release(&mut self, domid: u16, out: &mut Output) -> Result<(), Errno> {
        if domid == 0 {
            return Err(Errno::EINVAL);
        }
        if !self.domains.get(&domid).is_some_and(|d| d.introduced) {
            return Err(Errno::ENOENT);
        }
        if !self.reserve(DOMAIN_RECORD) {
            return Err(Errno::ENOSPC);
        }
        let d = self.domains.get_mut(&domid).ok_or(Errno::ENOENT)?;
        d.introduced = false;
        out.changes.push(Change::Domain {
            domid,
            introduced: false,
        });
        self.observed = self.observed.max(self.tree.bump());
        let gone: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.domid == domid && !c.privileged)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.conns.remove(&id);
            out.close.push(id);
        }
        self.fire_special(path::RELEASE_DOMAIN, out);
        Ok(())
    }

    fn control(&self, args: &[&[u8]]) -> Result<Vec<u8>, Errno> {
        match args.first().copied() {
            Some(b"check") => {
                self.tree.check().map_err(|e| {
                    tracing::error!("xenstored check: {e}");
                    Errno::EIO
                })?;
                Ok(xenstore_wire::OK.to_vec())
            }
            Some(b"print") => {
                let text: Vec<String> = args[1..]
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                tracing::info!("xenstored print: {}", text.join(" "));
                Ok(xenstore_wire::OK.to_vec())
            }
            Some(b"quota") => Ok(format!("{}\n\0", self.quotas).into_bytes()),
            Some(b"help") => Ok(b"check\nprint <string>\nquota\nhelp\n\0".to_vec()),
            _ => Err(Errno::EINVAL),
        }
    }
}

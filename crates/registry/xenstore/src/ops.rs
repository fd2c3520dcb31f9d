//! The node operations, run against a view: the committed tree seen through
//! a transaction's pending changes. A request outside a transaction runs in a
//! throw-away transaction that commits at once, so both paths share this code.

use crate::node::{Caller, Node};
use crate::quota::Quotas;
use crate::tree::{ChangeSet, Tree};
use std::collections::HashMap;
use std::sync::Arc;
use xenstore_wire::{path, Errno, Perm, PAYLOAD_MAX};

/// What happened to a path, for watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Created, written or permissions changed.
    Changed,
    /// Removed with everything below it.
    Removed,
}

/// A change to report to watchers once committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The absolute path.
    pub path: String,
    /// What happened.
    pub kind: EventKind,
    /// The node's permissions (after a change, before a removal): only
    /// callers that may read them are told.
    pub perms: Vec<Perm>,
}

/// The pending state of a transaction.
#[derive(Debug, Default)]
pub struct TxState {
    /// Pending node changes.
    pub changes: ChangeSet,
    /// Every committed node the transaction has touched, as first seen
    /// (`None`: absent), shared with the tree it was read from. Later reads
    /// see this version, so reads in a transaction are repeatable, and
    /// commit fails if any of them has changed since. It holds every path
    /// the transaction touched (a change always reads the node first), so
    /// its size is what `transaction-nodes` limits.
    pub seen: HashMap<String, Option<Arc<Node>>>,
    /// Watch events to fire on commit.
    pub events: Vec<Event>,
    /// Change in node ownership per domain.
    pub owned_delta: HashMap<u16, i64>,
}

impl TxState {
    /// Whether any committed node accessed has changed since: the
    /// transaction then fails with `EAGAIN`.
    pub fn conflicts(&self, base: &Tree) -> bool {
        self.seen
            .iter()
            .any(|(p, n)| base.get(p).map(|b| b.gen) != n.as_ref().map(|n| n.gen))
    }

    fn absorb(&mut self, stage: Stage) {
        self.changes.extend(stage.changes);
        self.events.extend(stage.events);
        for (d, n) in stage.owned_delta {
            *self.owned_delta.entry(d).or_insert(0) += n;
        }
    }
}

/// The effects of one request, kept apart until it succeeds: a failed
/// request leaves its transaction as it was without copying it.
#[derive(Debug, Default)]
pub struct Stage {
    /// Node changes.
    pub changes: ChangeSet,
    /// Watch events.
    pub events: Vec<Event>,
    /// Change in node ownership per domain.
    pub owned_delta: HashMap<u16, i64>,
}

/// The tree as one request sees it: the committed tree, seen through the
/// transaction's pending changes (if any) and the request's own.
#[derive(Debug)]
pub struct View<'a> {
    base: &'a Tree,
    tx: Option<&'a mut TxState>,
    stage: Stage,
    caller: Caller,
    quotas: Quotas,
    depends_on: u64,
}

/// The generation an answer about `node` (`None`: absent) depends on.
fn dependency(base: &Tree, node: Option<&Node>) -> u64 {
    node.map_or(base.last_removal(), |n| n.gen)
}

impl<'a> View<'a> {
    /// A view for `caller`, inside `tx` if given.
    pub fn new(
        base: &'a Tree,
        tx: Option<&'a mut TxState>,
        caller: Caller,
        quotas: Quotas,
    ) -> View<'a> {
        View {
            base,
            tx,
            stage: Stage::default(),
            caller,
            quotas,
            depends_on: 0,
        }
    }

    /// The newest generation of committed state the request has looked at:
    /// its answer may be sent once that is durable. An absent node counts
    /// as the latest removal.
    pub fn depends_on(&self) -> u64 {
        self.depends_on
    }

    /// Ends the request: in a transaction its effects join the transaction
    /// if `keep` (nodes it touched stay recorded either way, for conflict
    /// detection); outside one, they are returned to be committed.
    pub fn finish(self, keep: bool) -> Option<Stage> {
        match self.tx {
            Some(tx) => {
                if keep {
                    tx.absorb(self.stage);
                }
                None
            }
            None => keep.then_some(self.stage),
        }
    }

    /// The node at `p` as the request sees it. In a transaction the first
    /// look at a committed node records it; past `transaction-nodes` such
    /// nodes the request fails with `ENOSPC`.
    pub fn get(&mut self, p: &str) -> Result<Option<&Node>, Errno> {
        if self.stage.changes.contains_key(p) {
            return Ok(self.stage.changes.get(p).and_then(|n| n.as_deref()));
        }
        let base = self.base;
        let Some(tx) = self.tx.as_deref_mut() else {
            let node = base.get(p);
            self.depends_on = self.depends_on.max(dependency(base, node));
            return Ok(node);
        };
        if tx.changes.contains_key(p) {
            return Ok(tx.changes.get(p).and_then(|n| n.as_deref()));
        }
        if !tx.seen.contains_key(p) {
            if !self.caller.privileged && tx.seen.len() >= self.quotas.transaction_nodes as usize {
                return Err(Errno::ENOSPC);
            }
            tx.seen.insert(p.to_string(), base.get_shared(p).cloned());
        }
        let node = tx.seen.get(p).and_then(|n| n.as_deref());
        self.depends_on = self.depends_on.max(dependency(base, node));
        Ok(node)
    }

    /// A copy of the node at `p`, to modify.
    fn get_owned(&mut self, p: &str) -> Result<Option<Node>, Errno> {
        Ok(self.get(p)?.cloned())
    }

    /// Stores a node the caller wrote; its size counts against the quota.
    fn put(&mut self, p: &str, node: Option<Node>) -> Result<(), Errno> {
        if let Some(n) = &node {
            if !self.caller.privileged && n.size() > self.quotas.node_size as usize {
                return Err(Errno::ENOSPC);
            }
        }
        self.put_unchecked(p, node)
    }

    /// Stores a node changed as a side effect (a parent gaining or losing a
    /// child): as in xenstored, that does not count against the node-size
    /// quota, or no domain could add children below a busy directory.
    fn put_unchecked(&mut self, p: &str, node: Option<Node>) -> Result<(), Errno> {
        let old_owner = self.get(p)?.map(Node::owner);
        let delta = &mut self.stage.owned_delta;
        if let Some(o) = old_owner {
            *delta.entry(o).or_insert(0) -= 1;
        }
        if let Some(n) = &node {
            *delta.entry(n.owner()).or_insert(0) += 1;
        }
        self.stage.changes.insert(p.to_string(), node.map(Arc::new));
        Ok(())
    }

    fn owned(&self, domid: u16) -> i64 {
        let pending = |d: &HashMap<u16, i64>| d.get(&domid).copied().unwrap_or(0);
        i64::from(self.base.owned_by(domid))
            + self.tx.as_deref().map_or(0, |t| pending(&t.owned_delta))
            + pending(&self.stage.owned_delta)
    }

    /// The answer for a node that does not exist, as xenstored gives it:
    /// from the permissions of its nearest existing ancestor. `ENOENT` if the
    /// caller may read there (`write`: write), else `EACCES` — the answer for
    /// a node that exists but the caller may not access — so nobody learns
    /// what exists where they may not look. The ancestors looked at count as
    /// read (the answer depends on them).
    fn absent(&mut self, p: &str, write: bool) -> Errno {
        let caller = self.caller;
        let mut cur = p;
        while let Some(up) = path::parent(cur) {
            match self.get(up) {
                Err(e) => return e,
                Ok(Some(n)) => {
                    let a = caller.access(&n.perms);
                    let may = if write { a.can_write() } else { a.can_read() };
                    return if may { Errno::ENOENT } else { Errno::EACCES };
                }
                Ok(None) => cur = up,
            }
        }
        Errno::EACCES
    }

    fn readable(&mut self, p: &str) -> Result<&Node, Errno> {
        let caller = self.caller;
        if self.get(p)?.is_none() {
            return Err(self.absent(p, false));
        }
        let node = self.get(p)?.ok_or(Errno::ENOENT)?;
        if !caller.access(&node.perms).can_read() {
            return Err(Errno::EACCES);
        }
        Ok(node)
    }

    /// `READ`.
    pub fn read(&mut self, p: &str) -> Result<Vec<u8>, Errno> {
        Ok(self.readable(p)?.value.clone())
    }

    /// `DIRECTORY`: the children names, nul-separated.
    pub fn directory(&mut self, p: &str) -> Result<Vec<u8>, Errno> {
        let node = self.readable(p)?;
        let out = xenstore_wire::join_strings(node.children.iter().map(|c| c.as_bytes()));
        if out.len() > PAYLOAD_MAX {
            return Err(Errno::E2BIG);
        }
        Ok(out)
    }

    /// `DIRECTORY_PART`: `<gen>|` then the children from byte `offset` of
    /// the nul-separated list, as many whole names as fit; an extra nul
    /// marks the end of the list.
    pub fn directory_part(&mut self, p: &str, offset: u32) -> Result<Vec<u8>, Errno> {
        let node = self.readable(p)?;
        let all = xenstore_wire::join_strings(node.children.iter().map(|c| c.as_bytes()));
        let offset = offset as usize;
        if offset > all.len() || (offset > 0 && all[offset - 1] != 0) {
            return Err(Errno::EINVAL);
        }
        let mut out = format!("{}", node.gen).into_bytes();
        out.push(0);
        // Room for whole names plus the end marker.
        let room = PAYLOAD_MAX - out.len() - 1;
        let mut end = offset;
        while end < all.len() {
            let next = all[end..]
                .iter()
                .position(|&b| b == 0)
                .map_or(all.len(), |i| end + i + 1);
            if next - offset > room {
                break;
            }
            end = next;
        }
        if end == offset && end < all.len() {
            return Err(Errno::E2BIG);
        }
        out.extend_from_slice(&all[offset..end]);
        if end == all.len() {
            out.push(0);
        }
        Ok(out)
    }

    /// `GET_PERMS`.
    pub fn get_perms(&mut self, p: &str) -> Result<Vec<Perm>, Errno> {
        Ok(self.readable(p)?.perms.clone())
    }

    fn changed(&mut self, p: &str, kind: EventKind, perms: Vec<Perm>) {
        self.stage.events.push(Event {
            path: p.to_string(),
            kind,
            perms,
        });
    }

    /// Creates `p` and any missing parents; each new node inherits its
    /// parent's permissions, owned by the caller if unprivileged.
    fn create(&mut self, p: &str, value: &[u8]) -> Result<Node, Errno> {
        let mut missing = vec![p.to_string()];
        let mut anc = path::parent(p).ok_or(Errno::EINVAL)?.to_string();
        let mut parent = loop {
            if let Some(n) = self.get_owned(&anc)? {
                break n;
            }
            let up = path::parent(&anc).ok_or(Errno::ENOENT)?.to_string();
            missing.push(std::mem::replace(&mut anc, up));
        };
        if !self.caller.access(&parent.perms).can_write() {
            return Err(Errno::EACCES);
        }
        if !self.caller.privileged
            && self.owned(self.caller.domid) + missing.len() as i64 > i64::from(self.quotas.nodes)
        {
            return Err(Errno::ENOSPC);
        }
        let mut parent_path = anc;
        for (i, mp) in missing.iter().rev().enumerate() {
            let mut perms = parent.perms.clone();
            if !self.caller.privileged {
                if let Some(owner) = perms.first_mut() {
                    owner.domid = self.caller.domid;
                }
            }
            let child = Node {
                value: if i + 1 == missing.len() {
                    value.to_vec()
                } else {
                    Vec::new()
                },
                perms,
                children: Vec::new(),
                gen: 0,
            };
            parent.children.push(path::basename(mp).to_string());
            self.put_unchecked(&parent_path, Some(parent))?;
            parent_path = mp.clone();
            parent = child;
        }
        self.put(p, Some(parent.clone()))?;
        Ok(parent)
    }

    /// `WRITE`.
    pub fn write(&mut self, p: &str, value: &[u8]) -> Result<(), Errno> {
        let caller = self.caller;
        let node = match self.get_owned(p)? {
            Some(mut n) => {
                if !caller.access(&n.perms).can_write() {
                    return Err(Errno::EACCES);
                }
                n.value = value.to_vec();
                self.put(p, Some(n.clone()))?;
                n
            }
            None => self.create(p, value)?,
        };
        self.changed(p, EventKind::Changed, node.perms);
        Ok(())
    }

    /// `MKDIR`: nothing happens if the node exists (and the caller may
    /// write it: the answer must not depend on whether it exists).
    pub fn mkdir(&mut self, p: &str) -> Result<(), Errno> {
        let caller = self.caller;
        if let Some(n) = self.get(p)? {
            return match caller.access(&n.perms).can_write() {
                true => Ok(()),
                false => Err(Errno::EACCES),
            };
        }
        let node = self.create(p, &[])?;
        self.changed(p, EventKind::Changed, node.perms);
        Ok(())
    }

    /// `RM`: removes the node and its subtree. A missing node is fine if its
    /// parent exists (and the caller could write there: see
    /// [`View::absent`]).
    pub fn rm(&mut self, p: &str) -> Result<(), Errno> {
        let parent_path = path::parent(p).ok_or(Errno::EINVAL)?.to_string();
        let caller = self.caller;
        let Some(node) = self.get_owned(p)? else {
            return match self.absent(p, true) {
                Errno::ENOENT if self.get(&parent_path)?.is_some() => Ok(()),
                e => Err(e),
            };
        };
        if !caller.access(&node.perms).can_write() {
            return Err(Errno::EACCES);
        }
        let mut stack = vec![p.to_string()];
        while let Some(cur) = stack.pop() {
            if let Some(n) = self.get(&cur)? {
                stack.extend(n.children.iter().map(|c| path::join(&cur, c)));
            }
            self.put(&cur, None)?;
        }
        if let Some(mut parent) = self.get_owned(&parent_path)? {
            let name = path::basename(p);
            parent.children.retain(|c| c != name);
            self.put_unchecked(&parent_path, Some(parent))?;
        }
        self.changed(p, EventKind::Removed, node.perms);
        Ok(())
    }

    /// `SET_PERMS`: only the owner (or a privileged caller) may, and only a
    /// privileged caller may give the node another owner.
    pub fn set_perms(&mut self, p: &str, perms: Vec<Perm>) -> Result<(), Errno> {
        let caller = self.caller;
        let Some(mut node) = self.get_owned(p)? else {
            return Err(self.absent(p, true));
        };
        if !caller.owns(&node.perms) || !caller.access(&node.perms).can_write() {
            return Err(Errno::EACCES);
        }
        if !caller.privileged {
            if perms.len() > self.quotas.permissions as usize {
                return Err(Errno::ENOSPC);
            }
            if perms.first().map(|o| o.domid) != Some(node.owner()) {
                return Err(Errno::EPERM);
            }
        }
        node.perms = perms;
        self.put(p, Some(node.clone()))?;
        self.changed(p, EventKind::Changed, node.perms);
        Ok(())
    }
}

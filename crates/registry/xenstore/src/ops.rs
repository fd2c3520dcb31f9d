//! The node operations, run against a view: the committed tree seen through
//! a transaction's pending changes. A request outside a transaction runs in a
//! throw-away transaction that commits at once, so both paths share this code.

use crate::node::{Caller, Node};
use crate::quota::Quotas;
use crate::tree::{ChangeSet, Tree};
use std::collections::HashMap;
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
#[derive(Debug, Default, Clone)]
pub struct TxState {
    /// Pending node changes.
    pub changes: ChangeSet,
    /// Each committed node as first seen (`None`: absent). Later reads see
    /// this copy, so reads in a transaction are repeatable, and commit fails
    /// if any of them has changed since.
    pub seen: HashMap<String, Option<Node>>,
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
}

/// The tree as a transaction sees it.
#[derive(Debug)]
pub struct View<'a> {
    /// The committed tree.
    pub base: &'a Tree,
    /// The transaction's pending state.
    pub tx: &'a mut TxState,
    /// Who is asking.
    pub caller: Caller,
    /// The caller's quotas.
    pub quotas: Quotas,
}

impl View<'_> {
    fn check_tx_size(&self) -> Result<(), Errno> {
        if !self.caller.privileged && self.tx.seen.len() > self.quotas.transaction_nodes as usize {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    /// The node at `p` as the transaction sees it.
    pub fn get(&mut self, p: &str) -> Option<&Node> {
        if self.tx.changes.contains_key(p) {
            return self.tx.changes.get(p).and_then(Option::as_ref);
        }
        if !self.tx.seen.contains_key(p) {
            let node = self.base.get(p).cloned();
            self.tx.seen.insert(p.to_string(), node);
        }
        self.tx.seen.get(p).and_then(Option::as_ref)
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
        let old_owner = self.get(p).map(Node::owner);
        if let Some(o) = old_owner {
            *self.tx.owned_delta.entry(o).or_insert(0) -= 1;
        }
        if let Some(n) = &node {
            *self.tx.owned_delta.entry(n.owner()).or_insert(0) += 1;
        }
        self.tx.changes.insert(p.to_string(), node);
        self.check_tx_size()
    }

    fn owned(&self, domid: u16) -> i64 {
        i64::from(self.base.owned_by(domid)) + self.tx.owned_delta.get(&domid).copied().unwrap_or(0)
    }

    fn readable(&mut self, p: &str) -> Result<Node, Errno> {
        let caller = self.caller;
        let node = self.get(p).ok_or(Errno::ENOENT)?;
        if !caller.access(&node.perms).can_read() {
            return Err(Errno::EACCES);
        }
        Ok(node.clone())
    }

    /// `READ`.
    pub fn read(&mut self, p: &str) -> Result<Vec<u8>, Errno> {
        Ok(self.readable(p)?.value)
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
        Ok(self.readable(p)?.perms)
    }

    fn changed(&mut self, p: &str, kind: EventKind, perms: Vec<Perm>) {
        self.tx.events.push(Event {
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
        while self.get(&anc).is_none() {
            let up = path::parent(&anc).ok_or(Errno::ENOENT)?.to_string();
            missing.push(std::mem::replace(&mut anc, up));
        }
        let mut parent = self.get(&anc).cloned().ok_or(Errno::ENOENT)?;
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
        let node = match self.get(p) {
            Some(existing) => {
                if !caller.access(&existing.perms).can_write() {
                    return Err(Errno::EACCES);
                }
                let mut n = existing.clone();
                n.value = value.to_vec();
                self.put(p, Some(n.clone()))?;
                n
            }
            None => self.create(p, value)?,
        };
        self.changed(p, EventKind::Changed, node.perms);
        Ok(())
    }

    /// `MKDIR`: nothing happens if the node exists.
    pub fn mkdir(&mut self, p: &str) -> Result<(), Errno> {
        if self.get(p).is_some() {
            return Ok(());
        }
        let node = self.create(p, &[])?;
        self.changed(p, EventKind::Changed, node.perms);
        Ok(())
    }

    /// `RM`: removes the node and its subtree. A missing node is fine if its
    /// parent exists.
    pub fn rm(&mut self, p: &str) -> Result<(), Errno> {
        let parent_path = path::parent(p).ok_or(Errno::EINVAL)?.to_string();
        let caller = self.caller;
        let Some(node) = self.get(p).cloned() else {
            return match self.get(&parent_path) {
                Some(_) => Ok(()),
                None => Err(Errno::ENOENT),
            };
        };
        if !caller.access(&node.perms).can_write() {
            return Err(Errno::EACCES);
        }
        let mut stack = vec![p.to_string()];
        while let Some(cur) = stack.pop() {
            if let Some(n) = self.get(&cur) {
                stack.extend(n.children.iter().map(|c| path::join(&cur, c)));
            }
            self.put(&cur, None)?;
        }
        if let Some(mut parent) = self.get(&parent_path).cloned() {
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
        let mut node = self.get(p).cloned().ok_or(Errno::ENOENT)?;
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

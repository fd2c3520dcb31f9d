//! The tree: a map from absolute path to node, with per-domain ownership
//! counts for the node quota.

use crate::node::Node;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use xenstore_wire::{path, PermKind};

/// Changes to apply at once: `None` removes the node.
pub type ChangeSet = BTreeMap<String, Option<Arc<Node>>>;

/// The committed tree. Nodes (and their paths) are shared ([`Arc`]): a
/// transaction keeps the nodes it has seen by reference, not by copy, and a
/// copy of the whole tree (for a snapshot written on another thread) copies
/// pointers.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: HashMap<Arc<str>, Arc<Node>>,
    owned: HashMap<u16, u32>,
    next_gen: u64,
    /// Generation of the latest removal: what an answer that a node is
    /// absent depends on.
    last_removal: u64,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    /// A tree holding xenstored's initial layout: `/`, `/local`,
    /// `/local/domain` and `/tool`, all owned by dom0 with no default access.
    pub fn new() -> Tree {
        let mut t = Tree::empty();
        let mut changes = ChangeSet::new();
        let mut root = Node::new(0, PermKind::None);
        root.children = vec!["local".into(), "tool".into()];
        let mut local = Node::new(0, PermKind::None);
        local.children = vec!["domain".into()];
        changes.insert("/".into(), Some(Arc::new(root)));
        changes.insert("/local".into(), Some(Arc::new(local)));
        let empty = || Some(Arc::new(Node::new(0, PermKind::None)));
        changes.insert("/local/domain".into(), empty());
        changes.insert("/tool".into(), empty());
        t.apply(&mut changes);
        t
    }

    /// An empty tree (no root), for loading a snapshot into.
    pub fn empty() -> Tree {
        Tree {
            nodes: HashMap::new(),
            owned: HashMap::new(),
            next_gen: 1,
            last_removal: 0,
        }
    }

    /// The node at an absolute path.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// The node at an absolute path, shared.
    pub fn get_shared(&self, path: &str) -> Option<&Arc<Node>> {
        self.nodes.get(path)
    }

    /// How many nodes a domain owns.
    pub fn owned_by(&self, domid: u16) -> u32 {
        self.owned.get(&domid).copied().unwrap_or(0)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree has no nodes at all (not even a root).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The generation the next change will get.
    pub fn generation(&self) -> u64 {
        self.next_gen
    }

    /// The generation of the latest removal (0: none yet).
    pub fn last_removal(&self) -> u64 {
        self.last_removal
    }

    /// Takes a generation for a change that is not a node's (a domain
    /// introduced or released).
    pub fn bump(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen - 1
    }

    fn count(&mut self, owner: u16, delta: i64) {
        let c = self.owned.entry(owner).or_insert(0);
        *c = u32::try_from(i64::from(*c) + delta).unwrap_or(0);
    }

    /// Applies a change set; every changed node gets one new generation
    /// (set in `changes` too, whose nodes the tree then shares), which is
    /// returned.
    pub fn apply(&mut self, changes: &mut ChangeSet) -> u64 {
        let gen = self.bump();
        for (p, change) in changes.iter_mut() {
            if let Some(old) = self.nodes.remove(p.as_str()) {
                self.count(old.owner(), -1);
            }
            match change {
                Some(node) => {
                    Arc::make_mut(node).gen = gen;
                    self.count(node.owner(), 1);
                    self.nodes.insert(Arc::from(p.as_str()), node.clone());
                }
                None => self.last_removal = gen,
            }
        }
        gen
    }

    /// Sets or removes one node (replaying the log).
    pub fn set(&mut self, path: &str, node: Option<Arc<Node>>) {
        let mut one = ChangeSet::new();
        one.insert(path.to_string(), node);
        self.apply(&mut one);
    }

    /// Takes `removed` names out of a node's children, then appends the
    /// `added` ones it lacks (replaying the log); `false` if there is no
    /// such node.
    pub fn edit_children(&mut self, path: &str, removed: &[String], added: &[String]) -> bool {
        let gen = self.bump();
        let Some(node) = self.nodes.get_mut(path) else {
            return false;
        };
        let n = Arc::make_mut(node);
        n.children.retain(|c| !removed.contains(c));
        for a in added {
            if !n.children.contains(a) {
                n.children.push(a.clone());
            }
        }
        n.gen = gen;
        true
    }

    /// Every node, parents before children and children in creation order.
    pub fn walk(&self) -> Vec<(String, &Arc<Node>)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec!["/".to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p.as_str()) {
                for c in n.children.iter().rev() {
                    stack.push(path::join(&p, c));
                }
                out.push((p, n));
            }
        }
        out
    }

    /// Restores the invariants [`Tree::check`] checks after salvaging a
    /// damaged state (some changes lost): a root, every node named by its
    /// parent (missing parents are created empty, with the child's
    /// permissions), no child named that does not exist. Returns what it did.
    pub fn repair(&mut self) -> Vec<String> {
        let mut done = Vec::new();
        if !self.nodes.contains_key("/") {
            self.set("/", Some(Arc::new(Node::new(0, PermKind::None))));
            done.push("/: created the missing root".to_string());
        }
        let mut paths: Vec<String> = self.nodes.keys().map(|k| k.to_string()).collect();
        paths.sort_by_key(|p| (p.matches('/').count(), p.clone()));
        for p in &paths {
            let Some(parent) = path::parent(p) else {
                continue;
            };
            if !self.nodes.contains_key(parent) {
                let mut n = Node::new(0, PermKind::None);
                if let Some(child) = self.nodes.get(p.as_str()) {
                    n.perms = child.perms.clone();
                }
                self.set(parent, Some(Arc::new(n)));
                done.push(format!("{parent}: created the missing parent of {p}"));
            }
            let name = path::basename(p);
            if !self
                .get(parent)
                .is_some_and(|n| n.children.iter().any(|c| c == name))
            {
                self.edit_children(parent, &[], &[name.to_string()]);
                done.push(format!("{parent}: named its child {name}"));
            }
        }
        let paths: Vec<String> = self.nodes.keys().map(|k| k.to_string()).collect();
        for p in paths {
            let Some(node) = self.nodes.get(p.as_str()) else {
                continue;
            };
            let mut seen = std::collections::HashSet::new();
            let kept: Vec<String> = node
                .children
                .iter()
                .filter(|c| self.nodes.contains_key(path::join(&p, c).as_str()) && seen.insert(*c))
                .cloned()
                .collect();
            if kept.len() != node.children.len() {
                let gone = node.children.len() - kept.len();
                if let Some(n) = self.nodes.get_mut(p.as_str()) {
                    Arc::make_mut(n).children = kept;
                }
                done.push(format!("{p}: dropped {gone} children that do not exist"));
            }
        }
        done
    }

    /// Checks the tree's invariants: a root exists, every child named by a
    /// node exists, every node but the root is named by its parent, and the
    /// ownership counts match. Returns a description of the first breach.
    pub fn check(&self) -> Result<(), String> {
        if !self.nodes.contains_key("/") {
            return Err("no root".into());
        }
        let mut owned: HashMap<u16, u32> = HashMap::new();
        for (p, n) in &self.nodes {
            *owned.entry(n.owner()).or_insert(0) += 1;
            if n.perms.is_empty() {
                return Err(format!("{p}: no permissions"));
            }
            for c in &n.children {
                if !self.nodes.contains_key(path::join(p, c).as_str()) {
                    return Err(format!("{p}: missing child {c}"));
                }
            }
            if let Some(parent) = path::parent(p) {
                let named = self
                    .nodes
                    .get(parent)
                    .is_some_and(|pn| pn.children.iter().any(|c| c == path::basename(p)));
                if !named {
                    return Err(format!("{p}: not named by its parent"));
                }
            }
        }
        for (d, c) in &owned {
            if self.owned_by(*d) != *c {
                return Err(format!(
                    "domain {d}: owns {c}, counted {}",
                    self.owned_by(*d)
                ));
            }
        }
        Ok(())
    }
}

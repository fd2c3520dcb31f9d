//! A node of the tree and the permission check.

use xenstore_wire::{Perm, PermKind};

/// One node: its value, permissions and children (in creation order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The value (any bytes).
    pub value: Vec<u8>,
    /// Owner entry first (its letter is the default for unlisted domains).
    pub perms: Vec<Perm>,
    /// Names of the immediate children, in creation order.
    pub children: Vec<String>,
    /// Generation of the last change, for transaction conflict detection and
    /// `DIRECTORY_PART`'s generation count. Not persisted.
    pub gen: u64,
}

impl Node {
    /// An empty node owned by `owner` with default access `kind`.
    pub fn new(owner: u16, kind: PermKind) -> Node {
        Node {
            value: Vec::new(),
            perms: vec![Perm { kind, domid: owner }],
            children: Vec::new(),
            gen: 0,
        }
    }

    /// The owning domain.
    pub fn owner(&self) -> u16 {
        self.perms.first().map_or(0, |p| p.domid)
    }

    /// The size counted against the node-size quota: value, children names
    /// with their separators, and four bytes per permission entry.
    pub fn size(&self) -> usize {
        self.value.len()
            + self.children.iter().map(|c| c.len() + 1).sum::<usize>()
            + 4 * self.perms.len()
    }
}

/// Who is asking: the domain behind a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The domain id (0 for the main socket).
    pub domid: u16,
    /// Privileged connections bypass permissions and quotas.
    pub privileged: bool,
    /// A domain this one acts for (`SET_TARGET`).
    pub target: Option<u16>,
}

impl Caller {
    fn is(&self, domid: u16) -> bool {
        self.domid == domid || self.target == Some(domid)
    }

    /// The access this caller has to a node with `perms`.
    pub fn access(&self, perms: &[Perm]) -> PermKind {
        if self.privileged {
            return PermKind::Both;
        }
        let Some((owner, rest)) = perms.split_first() else {
            return PermKind::None;
        };
        if self.is(owner.domid) {
            return PermKind::Both;
        }
        // The caller's own entry wins over its target's; the owner's letter is
        // the default.
        rest.iter()
            .find(|p| p.domid == self.domid)
            .or_else(|| rest.iter().find(|p| self.target == Some(p.domid)))
            .map_or(owner.kind, |p| p.kind)
    }

    /// Whether the caller owns a node (or is privileged).
    pub fn owns(&self, perms: &[Perm]) -> bool {
        self.privileged || perms.first().is_some_and(|p| self.is(p.domid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: PermKind, domid: u16) -> Perm {
        Perm { kind, domid }
    }

    #[test]
    fn access_rules() {
        let perms = [
            p(PermKind::Read, 1),
            p(PermKind::Write, 2),
            p(PermKind::None, 3),
        ];
        let c = |domid, privileged| Caller {
            domid,
            privileged,
            target: None,
        };
        assert_eq!(c(0, true).access(&perms), PermKind::Both);
        assert_eq!(c(1, false).access(&perms), PermKind::Both, "owner");
        assert_eq!(c(2, false).access(&perms), PermKind::Write);
        assert_eq!(c(3, false).access(&perms), PermKind::None);
        assert_eq!(c(4, false).access(&perms), PermKind::Read, "default");
        let t = Caller {
            domid: 9,
            privileged: false,
            target: Some(2),
        };
        assert_eq!(t.access(&perms), PermKind::Write, "acts for its target");
        assert!(c(1, false).owns(&perms) && !c(2, false).owns(&perms));
    }
}

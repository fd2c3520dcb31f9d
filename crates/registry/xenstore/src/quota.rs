//! Quotas for unprivileged domains, with xenstored's defaults.

use std::fmt;

/// Limits applied to unprivileged connections. Privileged connections (the
/// main socket, dom0) are never limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Nodes a domain may own (`quota_nb_entry_per_domain`, 1000).
    pub nodes: u32,
    /// Watches a domain may hold (`quota_nb_watch_per_domain`, 128).
    pub watches: u32,
    /// Transactions open at once on one connection (`quota_max_transaction`, 10).
    pub transactions: u32,
    /// Requests a connection may have waiting for their reply to be read
    /// (`quota_req_outstanding`, 20); past it the daemon stops reading it.
    pub outstanding: u32,
    /// Bytes of one node: value, children names and permissions
    /// (`quota_max_entry_size`, 2048).
    pub node_size: u32,
    /// Permission entries on one node (`quota_nb_perms_per_node`, 5).
    pub permissions: u32,
    /// Length of a path below the domain's home (`quota_max_path_len`, 2048).
    pub path_max: u32,
    /// Nodes one transaction may touch (`quota_trans_nodes`, 1024).
    pub transaction_nodes: u32,
    /// Connections a domain may have open at once (pcibox's own, 16: with
    /// xenstored a domain has one ring; here it could otherwise open sockets
    /// until the daemon runs out of file descriptors).
    pub connections: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            nodes: 1000,
            watches: 128,
            transactions: 10,
            outstanding: 20,
            node_size: 2048,
            permissions: 5,
            path_max: 2048,
            transaction_nodes: 1024,
            connections: 16,
        }
    }
}

/// A quota name that does not exist, or a malformed `name=value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// Unknown name.
    #[error("unknown quota `{0}` (known: {names})", names = Quotas::NAMES.join(", "))]
    Unknown(String),
    /// Not `name=value` with a decimal value.
    #[error("quota `{0}` is not NAME=NUMBER")]
    Malformed(String),
}

impl Quotas {
    /// Names as used by `--quota NAME=VALUE` and `GET_QUOTA`/`SET_QUOTA`.
    pub const NAMES: [&'static str; 9] = [
        "nodes",
        "watches",
        "transactions",
        "outstanding",
        "node-size",
        "permissions",
        "path-max",
        "transaction-nodes",
        "connections",
    ];

    fn slot(&mut self, name: &str) -> Option<&mut u32> {
        Some(match name {
            "nodes" => &mut self.nodes,
            "watches" => &mut self.watches,
            "transactions" => &mut self.transactions,
            "outstanding" => &mut self.outstanding,
            "node-size" => &mut self.node_size,
            "permissions" => &mut self.permissions,
            "path-max" => &mut self.path_max,
            "transaction-nodes" => &mut self.transaction_nodes,
            "connections" => &mut self.connections,
            _ => return None,
        })
    }

    /// Reads a quota by name.
    pub fn get(&self, name: &str) -> Option<u32> {
        let mut copy = *self;
        copy.slot(name).map(|v| *v)
    }

    /// Sets a quota by name.
    pub fn set(&mut self, name: &str, value: u32) -> Result<(), QuotaError> {
        *self
            .slot(name)
            .ok_or_else(|| QuotaError::Unknown(name.to_string()))? = value;
        Ok(())
    }

    /// Applies `NAME=VALUE`.
    pub fn apply(&mut self, assignment: &str) -> Result<(), QuotaError> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| QuotaError::Malformed(assignment.to_string()))?;
        let value = value
            .parse()
            .map_err(|_| QuotaError::Malformed(assignment.to_string()))?;
        self.set(name, value)
    }
}

impl fmt::Display for Quotas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Quotas::NAMES
            .iter()
            .map(|n| format!("{n}={}", self.get(n).unwrap_or(0)))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_defaults_and_assignments() {
        let mut q = Quotas::default();
        for n in Quotas::NAMES {
            assert!(q.get(n).is_some(), "{n}");
        }
        assert_eq!(q.get("nodes"), Some(1000));
        q.apply("watches=3").unwrap();
        assert_eq!(q.watches, 3);
        assert!(matches!(q.apply("bogus=1"), Err(QuotaError::Unknown(_))));
        assert!(matches!(q.apply("nodes"), Err(QuotaError::Malformed(_))));
        assert!(matches!(q.apply("nodes=-1"), Err(QuotaError::Malformed(_))));
        assert!(q.to_string().contains("watches=3"));
    }
}

//! pcibox's registry: a XenStore-compatible store.
//!
//! - [`Store`]: the tree, permissions, transactions, watches, domains and
//!   quotas, driven one request at a time (no I/O).
//! - [`Tree`] and [`Node`]: the committed data.
//! - [`Quotas`]: limits for unprivileged domains, with xenstored's defaults.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod client;
pub mod daemon;
pub mod fuzzing;
mod node;
mod ops;
pub mod persist;
mod quota;
mod store;
mod tree;
mod watch;
pub mod xenbus;

pub use node::{Caller, Node};
pub use ops::{Event, EventKind};
pub use quota::{QuotaError, Quotas};
pub use store::{Change, ConnId, Domain, Message, Output, Space, Store, DOMID_FIRST_RESERVED};
pub use tree::{ChangeSet, Tree};
pub use watch::Watch;
pub use xenstore_wire as wire;

#[cfg(test)]
mod store_tests;

//! A user-space NVMe driver written against the pcibox kit only (no VFIO types): it runs on
//! whatever backend gives it a `pcibox_kit::Device`.
//!
//! - [`Controller::new`]: disable, admin queue, enable (CAP.TO bounded), IDENTIFY controller,
//!   active namespaces and the first namespace, then I/O queue pairs bound to MSI-X vectors
//!   (or polled, [`Options::polled`]).
//! - [`Controller::run`]: READ / WRITE / FLUSH with PRP lists, many commands in flight across
//!   queues, completions matched by command id, command timeouts, typed errors naming the
//!   command and the NVMe status.
//! - The block API ([`Controller::read`], [`Controller::write`], [`Controller::flush`],
//!   [`Controller::block_size`], [`Controller::capacity`]) and `partition_table::BlockSource`.
//! - [`IoQueue`]: one I/O queue pair as a `Send` handle ([`Controller::take_io_queue`]), with
//!   the same block API, so several threads submit and complete on queues of their own while
//!   the controller keeps the admin queue and teardown.
//!
//! See `docs/nvme.md`.

mod block;
mod controller;
mod error;
mod io;
mod ioqueue;
pub mod pattern;
mod queue;

pub use block::Transfer;
pub use controller::{Controller, Namespace};
pub use error::{Error, Result};
pub use io::{Op, OpKind, RunStats};
pub use ioqueue::IoQueue;

use serde::Serialize;
use std::time::Duration;

/// The memory page size the driver programs (CC.MPS = 0) and builds PRPs with.
pub const PAGE_SIZE: usize = 4096;

/// How to bring the controller up.
#[derive(Debug, Clone)]
pub struct Options {
    /// I/O queue pairs to create (0: admin only, e.g. for IDENTIFY).
    pub io_queues: u16,
    /// Entries per I/O queue (at most entries - 1 commands in flight per queue).
    pub queue_entries: u16,
    /// Poll completion queues instead of using MSI-X.
    pub polled: bool,
    /// How long a command may take.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            io_queues: 1,
            queue_entries: 64,
            polled: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Counters since the controller was enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// I/O commands completed.
    pub completions: u64,
    /// I/O interrupts consumed.
    pub interrupts: u64,
    /// Completions that arrived before one submitted earlier on the same queue.
    pub out_of_order: u64,
}

//! Driver statistics.

use serde::Serialize;
use std::collections::BTreeMap;

/// Counters kept by the driver, the per-vector interrupt (eventfd) counts
/// and the accumulated hardware statistics registers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Station address.
    pub mac: String,
    /// Link state when the statistics were read.
    pub link_up: bool,
    /// Link speed in Mb/s.
    pub speed_mbps: u32,
    /// Interrupt delivery: `msix`, `intx` or `poll`.
    pub irq_mode: String,
    /// Names of the interrupt vectors (`rx`, `tx`, `other` for MSI-X).
    pub vector_names: Vec<String>,
    /// Signals consumed from each vector's eventfd.
    pub vector_counts: Vec<u64>,
    /// Frames received and handed to the caller.
    pub rx_frames: u64,
    /// Receive descriptors dropped (damaged, split or oversized frames).
    pub rx_errors: u64,
    /// Receiver overrun interrupts (no free descriptor for a frame).
    pub rx_overruns: u64,
    /// Frames queued for transmission.
    pub tx_frames: u64,
    /// Bytes queued for transmission.
    pub tx_bytes: u64,
    /// Times a frame found the transmit ring full (a batch counts once: its
    /// rest is not tried).
    pub tx_ring_full: u64,
    /// Link status change interrupts.
    pub link_changes: u64,
    /// Hardware counters by datasheet name (see `e1000_spec::stats`).
    pub hw: BTreeMap<String, u64>,
}

impl Stats {
    /// The eventfd count of the vector named `name`, if there is one.
    pub fn vector_count(&self, name: &str) -> Option<u64> {
        let i = self.vector_names.iter().position(|n| n == name)?;
        self.vector_counts.get(i).copied()
    }
}

//! Per-queue handles: an [`IoQueue`] owns one I/O queue pair (its rings, SQ tail, CQ head and
//! phase, command slots and PRP list pages) and is `Send`, so each thread can submit and reap on
//! its own queue with no lock and no shared mutable state. What the controller and its handles
//! share ([`Shared`]) is read-only after bring-up or atomic: BAR0 (each queue writes only its own
//! doorbells), the MSI-X vectors (each queue waits only on its own), the namespace geometry, the
//! counters, and the kit device.
//!
//! Lifetimes: a handle holds an `Arc` of the shared state, so the device stays open while any
//! handle lives, and it owns its queue's memory, so the memory cannot go while the controller
//! might still write a completion into it. Dropping a handle gives its queue back to the
//! controller (parked in the shared state, adopted again at the controller's next call);
//! [`Controller::delete_io_queue`] takes the handle by value, deletes the queue in the
//! controller (DELETE I/O SQ, then CQ) and only then frees the memory. Once the controller is
//! shut down, a handle's calls fail with [`Error::Closed`].

use crate::error::{Error, Result};
use crate::queue::QueuePair;
use nvme_spec::Command;
use pcibox_kit::{Device, DmaBuffer, Interrupts, Region};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What I/O needs to know about the namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub nsid: u32,
    pub block_size: u32,
    pub capacity: u64,
}

/// State shared by a controller and its queue handles.
#[derive(Debug)]
pub(crate) struct Shared {
    /// BAR0: doorbells and CSTS.
    pub bar: Region,
    /// MSI-X vectors (vector 0 admin, vector q for I/O queue q), or `None` when polled.
    pub irqs: Option<Interrupts>,
    /// The namespace the block API works on.
    pub geometry: Option<Geometry>,
    /// Largest transfer of one command, in bytes.
    pub max_transfer: usize,
    /// How long a command may take.
    pub timeout: Duration,
    /// Set when the controller shuts down: handles stop submitting.
    pub closed: AtomicBool,
    /// Queues whose handles were dropped, waiting for the controller to adopt them.
    pub parked: Mutex<Vec<QueuePair>>,
    pub completions: AtomicU64,
    pub interrupts: AtomicU64,
    pub out_of_order: AtomicU64,
    // Last: the kit device outlives the region and vectors above.
    pub device: Device,
}

impl Shared {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn geometry(&self) -> Result<Geometry> {
        self.geometry.ok_or(Error::NoNamespace)
    }

    /// Takes the parked queues.
    pub(crate) fn unpark(&self) -> Vec<QueuePair> {
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *parked)
    }

    fn park(&self, qp: QueuePair) {
        self.parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(qp);
    }
}

/// One I/O queue pair taken out of its [`Controller`](crate::Controller) to be used on its own,
/// typically moved to a thread of its own (it is `Send`). It submits and completes
/// independently of the controller and of other handles: its own SQ tail, CQ head and phase,
/// its own MSI-X vector (or polled), its own bounce buffer for [`IoQueue::read`] and
/// [`IoQueue::write`]. It has the same block API as the controller.
///
/// ```no_run
/// # fn demo(mut ctrl: pcibox_nvme::Controller) -> pcibox_nvme::Result<()> {
/// let mut q = ctrl.take_io_queue()?;
/// let worker = std::thread::spawn(move || -> pcibox_nvme::Result<pcibox_nvme::IoQueue> {
///     q.write(0, &[0x5a; 4096])?;
///     q.flush()?;
///     Ok(q)
/// });
/// let q = worker.join().expect("worker")?;
/// ctrl.delete_io_queue(q)?; // or drop(q): the queue goes back to the controller
/// # Ok(()) }
/// ```
///
/// A handle cannot be shared mutably: two threads using the same handle do not compile.
///
/// ```compile_fail,E0499
/// # fn demo(mut q: pcibox_nvme::IoQueue) {
/// std::thread::scope(|s| {
///     s.spawn(|| q.flush());
///     s.spawn(|| q.flush());
/// });
/// # }
/// ```
///
/// Nor can it be used once its queue is deleted:
///
/// ```compile_fail,E0382
/// # fn demo(mut ctrl: pcibox_nvme::Controller) -> pcibox_nvme::Result<()> {
/// let mut q = ctrl.take_io_queue()?;
/// ctrl.delete_io_queue(q)?;
/// q.flush()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct IoQueue {
    /// Always `Some` until the handle is dropped or deleted (then the pair moves out).
    pub(crate) qp: Option<QueuePair>,
    pub(crate) bounds_check: bool,
    pub(crate) bounce: Option<DmaBuffer>,
    pub(crate) shared: Arc<Shared>,
}

// The point of the handle: it can be moved to another thread.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<IoQueue>();
};

impl IoQueue {
    pub(crate) fn new(qp: QueuePair, shared: Arc<Shared>) -> IoQueue {
        IoQueue {
            qp: Some(qp),
            bounds_check: true,
            bounce: None,
            shared,
        }
    }

    /// The queue pair, unless the controller is shut down.
    pub(crate) fn pair(&mut self) -> Result<&mut QueuePair> {
        match &mut self.qp {
            Some(qp) if !self.shared.is_closed() => Ok(qp),
            _ => Err(Error::Closed),
        }
    }

    /// The queue's ID (1-based; the SQ and CQ share it).
    pub fn qid(&self) -> u16 {
        self.qp.as_ref().map_or(0, |q| q.qid)
    }

    /// The MSI-X vector its completions signal, or `None` when polled.
    pub fn vector(&self) -> Option<usize> {
        self.qp.as_ref().and_then(|q| q.vector)
    }

    /// Commands that can be in flight at once on this queue (entries − 1).
    pub fn depth(&self) -> usize {
        self.qp.as_ref().map_or(0, |q| q.depth())
    }

    /// Turns the bounds check against the namespace size off (to see what the device says) or
    /// back on, for this handle.
    pub fn set_bounds_check(&mut self, on: bool) {
        self.bounds_check = on;
    }

    /// The kit device (e.g. to allocate DMA buffers for [`IoQueue::run`]).
    pub fn device(&self) -> &Device {
        &self.shared.device
    }

    /// Runs `ops` on this queue with up to `depth` commands in flight (at most
    /// [`IoQueue::depth`]), waiting on this queue's vector only. Stops submitting at the first
    /// failure, waits for what is in flight, and returns that failure.
    pub fn run<'a>(
        &mut self,
        ops: impl IntoIterator<Item = crate::Op<'a>>,
        depth: usize,
    ) -> Result<crate::RunStats> {
        let bounds_check = self.bounds_check;
        let shared = self.shared.clone();
        let qp = self.pair()?;
        crate::io::run(&shared, std::slice::from_mut(qp), bounds_check, ops, depth)
    }
}

impl Drop for IoQueue {
    fn drop(&mut self) {
        // The controller may still complete a command into this memory: hand it back rather
        // than free it (a shut-down controller writes nothing, so then it can go).
        if let Some(qp) = self.qp.take() {
            if !self.shared.is_closed() {
                self.shared.park(qp);
            }
        }
    }
}

impl crate::Controller {
    /// Gives back the queues of dropped handles.
    pub(crate) fn adopt_parked(&mut self) {
        let parked = self.shared.unpark();
        if !parked.is_empty() {
            self.io.extend(parked);
            self.io.sort_by_key(|q| q.qid);
        }
    }

    /// Takes the I/O queue with the lowest ID out of the controller as a handle of its own.
    /// The controller's own I/O ([`Controller::run`](crate::Controller::run), `read`, …) uses
    /// the queues it still holds; `Error::NoIoQueues` once every queue is taken.
    pub fn take_io_queue(&mut self) -> Result<IoQueue> {
        self.adopt_parked();
        if self.io.is_empty() {
            return Err(Error::NoIoQueues);
        }
        let qp = self.io.remove(0);
        Ok(IoQueue::new(qp, self.shared.clone()))
    }

    /// Takes every I/O queue the controller holds, one handle each.
    pub fn take_io_queues(&mut self) -> Vec<IoQueue> {
        self.adopt_parked();
        let shared = &self.shared;
        self.io
            .drain(..)
            .map(|qp| IoQueue::new(qp, shared.clone()))
            .collect()
    }

    /// Deletes `queue`'s SQ and CQ in the controller (which ends any command still in it), then
    /// frees its memory. A handle of another controller is refused (and goes back to its own).
    pub fn delete_io_queue(&mut self, mut queue: IoQueue) -> Result<()> {
        if !Arc::ptr_eq(&queue.shared, &self.shared) {
            return Err(Error::ForeignQueue { qid: queue.qid() });
        }
        let Some(qp) = queue.qp.take() else {
            return Err(Error::Closed);
        };
        let qid = qp.qid;
        let deleted = self
            .admin_command(Command::delete_io_sq(qid), "DELETE I/O SQ")
            .and_then(|_| self.admin_command(Command::delete_io_cq(qid), "DELETE I/O CQ"));
        if let Err(e) = deleted {
            // Half deleted, perhaps still live in the controller: never used again, but its
            // memory stays until the controller is shut down.
            self.retired.push(qp);
            return Err(e);
        }
        tracing::debug!(qid, "I/O queue deleted");
        Ok(())
    }
}

//! The I/O engine: READ / WRITE / FLUSH commands with PRP lists, many in flight across a set of
//! I/O queues (the controller's, or one handle's), completions matched by command id in whatever
//! order they arrive.

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::ioqueue::Shared;
use crate::queue::{Done, QueuePair};
use crate::PAGE_SIZE;
use nvme_spec::{Command, NvmOpcode};
use pcibox_kit::DmaSlice;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a block operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OpKind {
    /// Device to memory.
    Read,
    /// Memory to device.
    Write,
    /// Commit the volatile write cache.
    Flush,
}

impl OpKind {
    /// The command's name in errors.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "READ",
            OpKind::Write => "WRITE",
            OpKind::Flush => "FLUSH",
        }
    }
}

/// One command's worth of block I/O: `blocks` blocks at `lba`, to or from `buf` at `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    /// Read, write or flush.
    pub kind: OpKind,
    /// First block.
    pub lba: u64,
    /// Number of blocks (ignored for flush).
    pub blocks: u32,
    /// DMA buffer holding the data.
    pub buf: &'a DmaSlice,
    /// Byte offset of the data in `buf` (dword aligned, as PRP1 requires).
    pub offset: usize,
}

/// What one run of the engine did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Commands completed.
    pub completions: u64,
    /// Interrupts consumed while waiting (0 when polled).
    pub interrupts: u64,
    /// Most commands in flight at once.
    pub max_in_flight: usize,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Controller {
    /// Turns the bounds check against the namespace size off (to see what the device itself
    /// says: LBA Out of Range) or back on.
    pub fn set_bounds_check(&mut self, on: bool) {
        self.bounds_check = on;
    }

    /// Runs `ops` with up to `depth` commands in flight, spread round-robin over the I/O
    /// queues the controller holds (not those taken as handles). Stops submitting at the first
    /// failure, waits for what is in flight, and returns that failure.
    pub fn run<'a>(
        &mut self,
        ops: impl IntoIterator<Item = Op<'a>>,
        depth: usize,
    ) -> Result<RunStats> {
        self.adopt_parked();
        run(&self.shared, &mut self.io, self.bounds_check, ops, depth)
    }
}

/// Runs `ops` with up to `depth` commands in flight, round-robin over `queues`, waiting on their
/// vectors only (other threads may own the other queues and vectors).
pub(crate) fn run<'a>(
    shared: &Shared,
    queues: &mut [QueuePair],
    bounds_check: bool,
    ops: impl IntoIterator<Item = Op<'a>>,
    depth: usize,
) -> Result<RunStats> {
    if queues.is_empty() {
        return Err(Error::NoIoQueues);
    }
    if shared.is_closed() {
        return Err(Error::Closed);
    }
    let start = Instant::now();
    let vectors: Vec<usize> = queues.iter().filter_map(|q| q.vector).collect();
    let irq_before = interrupts(shared, &vectors);
    let ooo_before: u64 = queues.iter().map(|q| q.out_of_order).sum();
    let mut ops = ops.into_iter();
    let mut in_flight = 0usize;
    let mut stats = RunStats::default();
    let mut first_error: Option<Error> = None;
    let mut pending: Vec<Op<'a>> = Vec::new();
    let mut rr = 0usize;
    let mut done: Vec<Done> = Vec::new();
    let depth = depth.max(1);
    loop {
        // Submit while there is room.
        while first_error.is_none() && in_flight < depth {
            let Some(op) = pending.pop().or_else(|| ops.next()) else {
                break;
            };
            let Some(q) = pick_queue(queues, &mut rr) else {
                pending.push(op);
                break;
            };
            match submit_op(shared, &mut queues[q], &op, bounds_check) {
                Ok(bytes) => {
                    in_flight += 1;
                    stats.bytes += bytes;
                    stats.max_in_flight = stats.max_in_flight.max(in_flight);
                }
                Err(e) => first_error = Some(e),
            }
        }
        if in_flight == 0 {
            break;
        }
        // Reap every queue; wait when nothing was there.
        let mut got = 0;
        for q in queues.iter_mut() {
            got += q.reap(&shared.bar, &mut done)?;
        }
        for d in done.drain(..) {
            in_flight -= 1;
            stats.completions += 1;
            if !d.completion.status.is_success() && first_error.is_none() {
                first_error = Some(Error::Status {
                    command: d.inflight.name,
                    qid: d.completion.sq_id,
                    cid: d.cid,
                    status: d.completion.status,
                });
            }
        }
        if got == 0 {
            if let Some(err) = check_timeouts(shared, queues) {
                first_error.get_or_insert(err);
                break;
            }
            wait_a_little(shared, &vectors)?;
        }
    }
    // Completions seen: order the device's data writes before the caller reads buffers.
    std::sync::atomic::fence(Ordering::SeqCst);
    stats.interrupts = interrupts(shared, &vectors) - irq_before;
    stats.elapsed = start.elapsed();
    let ooo: u64 = queues.iter().map(|q| q.out_of_order).sum();
    shared
        .completions
        .fetch_add(stats.completions, Ordering::Relaxed);
    shared
        .interrupts
        .fetch_add(stats.interrupts, Ordering::Relaxed);
    shared
        .out_of_order
        .fetch_add(ooo - ooo_before, Ordering::Relaxed);
    match first_error {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// Index of the next queue (round-robin) with a free command id.
fn pick_queue(queues: &[QueuePair], rr: &mut usize) -> Option<usize> {
    let n = queues.len();
    for i in 0..n {
        let q = (*rr + i) % n;
        if queues[q].free_slots() > 0 {
            *rr = (q + 1) % n;
            return Some(q);
        }
    }
    None
}

/// Checks `op`, builds its PRPs and submits it on `q`. Returns the bytes it moves.
fn submit_op(shared: &Shared, q: &mut QueuePair, op: &Op<'_>, bounds_check: bool) -> Result<u64> {
    let ns = shared.geometry()?;
    let nsid = ns.nsid;
    if op.kind == OpKind::Flush {
        let cid = q.reserve().ok_or(Error::NoIoQueues)?;
        q.submit(&shared.bar, Command::flush(nsid), cid, "FLUSH")?;
        return Ok(0);
    }
    let bs = ns.block_size as usize;
    if op.blocks == 0 {
        return Err(Error::ZeroLength);
    }
    let capacity = ns.capacity;
    if bounds_check
        && op
            .lba
            .checked_add(op.blocks as u64)
            .is_none_or(|end| end > capacity)
    {
        return Err(Error::OutOfRange {
            nsid,
            lba: op.lba,
            count: op.blocks as u64,
            capacity,
        });
    }
    let bytes = op.blocks as usize * bs;
    if bytes > shared.max_transfer || op.blocks > 65536 {
        return Err(Error::TooLarge {
            bytes,
            max: shared.max_transfer,
        });
    }
    if op.offset % 4 != 0 {
        return Err(Error::Unaligned(format!(
            "data at buffer offset {} is not dword aligned (PRP entries need 4-byte alignment)",
            op.offset
        )));
    }
    if op
        .offset
        .checked_add(bytes)
        .is_none_or(|e| e > op.buf.len())
    {
        return Err(Error::BufferTooSmall {
            len: op.buf.len(),
            offset: op.offset,
            need: bytes,
        });
    }
    let addr = op.buf.iova_at(op.offset)?;
    let cid = q.reserve().ok_or(Error::NoIoQueues)?;
    let prp2 = match build_prps(q, cid, addr, bytes, shared.max_transfer) {
        Ok(p) => p,
        Err(e) => {
            q.unreserve(cid);
            return Err(e);
        }
    };
    let opcode = match op.kind {
        OpKind::Read => NvmOpcode::Read,
        _ => NvmOpcode::Write,
    };
    let cmd = Command::read_write(opcode, nsid, op.lba, op.blocks, addr, prp2);
    op.buf.sync_for_device();
    q.submit(&shared.bar, cmd, cid, op.kind.name())?;
    Ok(bytes as u64)
}

/// PRP2 for a transfer of `len` bytes at IOVA `addr`: 0 when it stays in one page, the next
/// page when it spans two, else the IOVA of a PRP list (command `cid`'s page) naming every
/// page after the first.
fn build_prps(q: &QueuePair, cid: u16, addr: u64, len: usize, max: usize) -> Result<u64> {
    let page = PAGE_SIZE as u64;
    let first_room = page - addr % page;
    if len as u64 <= first_room {
        return Ok(0);
    }
    let next = addr + first_room;
    let pages = (len as u64 - first_room).div_ceil(page);
    if pages == 1 {
        return Ok(next);
    }
    let (list, at) = q
        .prp_list(cid)
        .ok_or_else(|| Error::Protocol("I/O queue without PRP list pages".into()))?;
    if pages > (PAGE_SIZE / 8) as u64 {
        return Err(Error::TooLarge { bytes: len, max });
    }
    let mut entries = Vec::with_capacity(pages as usize * 8);
    for i in 0..pages {
        entries.extend_from_slice(&(next + i * page).to_le_bytes());
    }
    list.write(at, &entries)?;
    Ok(list.iova_at(at)?)
}

/// Interrupts consumed so far on `vectors`.
fn interrupts(shared: &Shared, vectors: &[usize]) -> u64 {
    let Some(irqs) = &shared.irqs else { return 0 };
    vectors
        .iter()
        .filter_map(|&v| irqs.vector(v))
        .map(|v| {
            let _ = v.poll();
            v.count()
        })
        .sum()
}

/// Blocks on `vectors` (interrupt mode) or yields (polled mode) for a short while.
fn wait_a_little(shared: &Shared, vectors: &[usize]) -> Result<()> {
    match &shared.irqs {
        Some(irqs) if !vectors.is_empty() => {
            irqs.wait_some(vectors, Some(Duration::from_millis(10)))?;
        }
        _ => std::thread::yield_now(),
    }
    Ok(())
}

/// The first command past its timeout, if any, or the controller gone, fatal or shut down:
/// all live commands are abandoned (their ids stay busy until the controller completes them or
/// is reset) and the error names it.
fn check_timeouts(shared: &Shared, queues: &mut [QueuePair]) -> Option<Error> {
    let abandon = |queues: &mut [QueuePair], e: Error| {
        for qp in queues.iter_mut() {
            qp.abandon_all();
        }
        Some(e)
    };
    if shared.is_closed() {
        return abandon(queues, Error::Closed);
    }
    for q in 0..queues.len() {
        if let Some((cid, inflight)) = queues[q].expired(shared.timeout) {
            let qid = queues[q].qid;
            return abandon(
                queues,
                Error::Timeout {
                    command: inflight.name,
                    qid,
                    cid,
                    after: inflight.since.elapsed(),
                },
            );
        }
    }
    // Only look at CSTS (a trapped register read) once something has waited a while.
    let slow = queues
        .iter()
        .any(|q| q.expired(Duration::from_millis(100)).is_some());
    if slow {
        if let Err(e) = crate::controller::check_alive(&shared.bar) {
            return abandon(queues, e);
        }
    }
    None
}

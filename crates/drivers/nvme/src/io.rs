//! The I/O engine: READ / WRITE / FLUSH commands with PRP lists, many in flight across the I/O
//! queues, completions matched by command id in whatever order they arrive.

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::queue::Done;
use crate::PAGE_SIZE;
use nvme_spec::{Command, NvmOpcode};
use pcibox_kit::DmaSlice;
use serde::Serialize;
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
    /// queues. Stops submitting at the first failure, waits for what is in flight, and returns
    /// that failure.
    pub fn run<'a>(
        &mut self,
        ops: impl IntoIterator<Item = Op<'a>>,
        depth: usize,
    ) -> Result<RunStats> {
        if self.io.is_empty() {
            return Err(Error::NoIoQueues);
        }
        let start = Instant::now();
        let irq_before = self.io_interrupts();
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
                let Some(q) = self.pick_queue(&mut rr) else {
                    pending.push(op);
                    break;
                };
                match self.submit_op(q, &op) {
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
            for q in 0..self.io.len() {
                got += self.io[q].reap(&self.bar, &mut done)?;
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
                if let Some(err) = self.check_timeouts() {
                    first_error.get_or_insert(err);
                    break;
                }
                self.wait_a_little()?;
            }
        }
        // Completions seen: order the device's data writes before the caller reads buffers.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        stats.interrupts = self.io_interrupts() - irq_before;
        stats.elapsed = start.elapsed();
        self.stats.completions += stats.completions;
        self.stats.interrupts += stats.interrupts;
        match first_error {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    /// Index of the next queue (round-robin) with a free command id.
    fn pick_queue(&self, rr: &mut usize) -> Option<usize> {
        let n = self.io.len();
        for i in 0..n {
            let q = (*rr + i) % n;
            if self.io[q].free_slots() > 0 {
                *rr = (q + 1) % n;
                return Some(q);
            }
        }
        None
    }

    /// Checks `op`, builds its PRPs and submits it on I/O queue `q`. Returns the bytes it moves.
    fn submit_op(&mut self, q: usize, op: &Op<'_>) -> Result<u64> {
        let ns = self.namespace.as_ref().ok_or(Error::NoNamespace)?;
        let nsid = ns.nsid;
        if op.kind == OpKind::Flush {
            let cid = self.io[q].reserve().ok_or(Error::NoIoQueues)?;
            self.io[q].submit(&self.bar, Command::flush(nsid), cid, "FLUSH")?;
            return Ok(0);
        }
        let bs = ns.info.block_size() as usize;
        if op.blocks == 0 {
            return Err(Error::ZeroLength);
        }
        let capacity = ns.info.nsze;
        if self.bounds_check
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
        if bytes > self.max_transfer || op.blocks > 65536 {
            return Err(Error::TooLarge {
                bytes,
                max: self.max_transfer,
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
        let cid = self.io[q].reserve().ok_or(Error::NoIoQueues)?;
        let prp2 = match self.build_prps(q, cid, addr, bytes) {
            Ok(p) => p,
            Err(e) => {
                self.io[q].unreserve(cid);
                return Err(e);
            }
        };
        let opcode = match op.kind {
            OpKind::Read => NvmOpcode::Read,
            _ => NvmOpcode::Write,
        };
        let cmd = Command::read_write(opcode, nsid, op.lba, op.blocks, addr, prp2);
        op.buf.sync_for_device();
        self.io[q].submit(&self.bar, cmd, cid, op.kind.name())?;
        Ok(bytes as u64)
    }

    /// PRP2 for a transfer of `len` bytes at IOVA `addr`: 0 when it stays in one page, the next
    /// page when it spans two, else the IOVA of a PRP list (command `cid`'s page) naming every
    /// page after the first.
    fn build_prps(&self, q: usize, cid: u16, addr: u64, len: usize) -> Result<u64> {
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
        let (list, at) = self.io[q]
            .prp_list(cid)
            .ok_or_else(|| Error::Protocol("I/O queue without PRP list pages".into()))?;
        if pages > (PAGE_SIZE / 8) as u64 {
            return Err(Error::TooLarge {
                bytes: len,
                max: self.max_transfer,
            });
        }
        let mut entries = Vec::with_capacity(pages as usize * 8);
        for i in 0..pages {
            entries.extend_from_slice(&(next + i * page).to_le_bytes());
        }
        list.write(at, &entries)?;
        Ok(list.iova_at(at)?)
    }

    /// Interrupts consumed so far on the I/O vectors.
    fn io_interrupts(&self) -> u64 {
        let Some(irqs) = &self.irqs else { return 0 };
        self.io
            .iter()
            .filter_map(|q| q.vector.and_then(|v| irqs.vector(v)))
            .map(|v| {
                let _ = v.poll();
                v.count()
            })
            .sum()
    }

    /// Blocks on the I/O vectors (interrupt mode) or yields (polled mode) for a short while.
    fn wait_a_little(&self) -> Result<()> {
        match &self.irqs {
            Some(irqs) if self.uses_interrupts() => {
                irqs.wait_any(Some(Duration::from_millis(10)))?;
            }
            _ => std::thread::yield_now(),
        }
        Ok(())
    }

    /// The first command past its timeout, if any: all live commands are abandoned (their ids
    /// stay busy until the controller completes them or is reset) and the error names it.
    fn check_timeouts(&mut self) -> Option<Error> {
        let limit = self.timeout;
        for q in 0..self.io.len() {
            if let Some((cid, inflight)) = self.io[q].expired(limit) {
                let qid = self.io[q].qid;
                for qp in &mut self.io {
                    qp.abandon_all();
                }
                return Some(Error::Timeout {
                    command: inflight.name,
                    qid,
                    cid,
                    after: inflight.since.elapsed(),
                });
            }
        }
        // Only look at CSTS (a trapped register read) once something has waited a while.
        let slow = self
            .io
            .iter()
            .any(|q| q.expired(Duration::from_millis(100)).is_some());
        if let Err(e) = if slow { self.check_alive() } else { Ok(()) } {
            for qp in &mut self.io {
                qp.abandon_all();
            }
            return Some(e);
        }
        None
    }
}

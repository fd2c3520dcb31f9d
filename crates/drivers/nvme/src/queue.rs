//! One submission/completion queue pair: the rings in DMA memory, the producer/consumer
//! indices, the phase tag, and the table of commands in flight (indexed by command id).
//!
//! Submission ring: the driver produces at `sq_tail` and rings the SQ tail doorbell; the
//! controller consumes and reports how far it got in each completion's SQ head field. The ring
//! is full when advancing the tail would make it equal to the last head the controller reported.
//!
//! Completion ring: the controller produces; the driver consumes at `cq_head`. An entry is new
//! when its phase tag equals `phase`, which starts at 1 and flips each time `cq_head` wraps. After
//! consuming, the driver writes `cq_head` to the CQ head doorbell so the slots can be reused.

use crate::error::{Error, Result};
use nvme_spec::regs::{cq_head_doorbell, sq_tail_doorbell};
use nvme_spec::{Command, Completion, CompletionEntry, CQE_SIZE, SQE_SIZE};
use pcibox_kit::{Device, DmaBuffer, Region};
use std::time::Instant;

/// A command in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inflight {
    /// Its name, for errors.
    pub name: &'static str,
    /// When it was submitted.
    pub since: Instant,
    /// Set once the caller stopped waiting: a late completion is dropped.
    pub abandoned: bool,
}

/// A completed command.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    pub cid: u16,
    pub completion: Completion,
    pub inflight: Inflight,
}

/// One SQ/CQ pair.
#[derive(Debug)]
pub(crate) struct QueuePair {
    pub qid: u16,
    entries: u16,
    sq: DmaBuffer,
    cq: DmaBuffer,
    sq_tail: u16,
    /// Last SQ head the controller reported.
    sq_head: u16,
    cq_head: u16,
    phase: bool,
    sq_db: u64,
    cq_db: u64,
    /// MSI-X vector index, or `None` when polled.
    pub vector: Option<usize>,
    /// Commands in flight by command id; `free` holds the ids not in use.
    slots: Vec<Option<Inflight>>,
    free: Vec<u16>,
    /// One PRP list page per command id (I/O queues only).
    pub prp_lists: Option<DmaBuffer>,
    /// Completions seen in an order other than their submission order.
    pub out_of_order: u64,
    submitted_seq: Vec<u64>,
    next_seq: u64,
    last_completed_seq: u64,
}

impl QueuePair {
    /// Allocates the rings (`entries` ≥ 2) and, for I/O queues, one PRP list page per slot.
    pub fn new(
        device: &Device,
        qid: u16,
        entries: u16,
        dstrd: u32,
        prp_lists: bool,
    ) -> Result<Self> {
        let sq = device.alloc_dma(entries as usize * SQE_SIZE)?;
        let cq = device.alloc_dma(entries as usize * CQE_SIZE)?;
        // At most entries - 1 commands can be outstanding (a full ring is tail + 1 == head).
        let depth = entries - 1;
        let prp_lists = if prp_lists {
            Some(device.alloc_dma(depth as usize * crate::PAGE_SIZE)?)
        } else {
            None
        };
        Ok(QueuePair {
            qid,
            entries,
            sq,
            cq,
            sq_tail: 0,
            sq_head: 0,
            cq_head: 0,
            phase: true,
            sq_db: sq_tail_doorbell(qid, dstrd),
            cq_db: cq_head_doorbell(qid, dstrd),
            vector: None,
            slots: vec![None; depth as usize],
            free: (0..depth).rev().collect(),
            prp_lists,
            out_of_order: 0,
            submitted_seq: vec![0; depth as usize],
            next_seq: 1,
            last_completed_seq: 0,
        })
    }

    pub fn sq_iova(&self) -> u64 {
        self.sq.iova()
    }
    pub fn cq_iova(&self) -> u64 {
        self.cq.iova()
    }

    /// Commands that can be in flight at once (entries − 1).
    pub fn depth(&self) -> usize {
        self.slots.len()
    }

    /// Commands that can still be submitted.
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Takes a command id; `None` when every slot is busy.
    pub fn reserve(&mut self) -> Option<u16> {
        self.free.pop()
    }

    /// Gives back a reserved id that was never submitted.
    pub fn unreserve(&mut self, cid: u16) {
        self.free.push(cid);
    }

    /// Writes `cmd` (with `cid` set) at the tail and rings the doorbell.
    pub fn submit(
        &mut self,
        bar: &Region,
        mut cmd: Command,
        cid: u16,
        name: &'static str,
    ) -> Result<()> {
        let next = (self.sq_tail + 1) % self.entries;
        if next == self.sq_head {
            // Cannot happen while in-flight ≤ entries - 1 and the controller reports heads;
            // a controller that does not is refused rather than overrun.
            self.unreserve(cid);
            return Err(Error::Protocol(format!(
                "queue {}: submission ring full (head {} tail {})",
                self.qid, self.sq_head, self.sq_tail
            )));
        }
        cmd.cid = cid;
        let off = self.sq_tail as usize * SQE_SIZE;
        self.sq.write(off, &cmd.to_bytes())?;
        self.slots[cid as usize] = Some(Inflight {
            name,
            since: Instant::now(),
            abandoned: false,
        });
        self.submitted_seq[cid as usize] = self.next_seq;
        self.next_seq += 1;
        self.sq_tail = next;
        // write_doorbell32 fences the entry's stores before the doorbell.
        bar.write_doorbell32(self.sq_db, self.sq_tail as u32)?;
        Ok(())
    }

    /// Consumes every new completion, rings the CQ head doorbell once, and returns them.
    pub fn reap(&mut self, bar: &Region, out: &mut Vec<Done>) -> Result<usize> {
        let mut n = 0;
        loop {
            let off = self.cq_head as usize * CQE_SIZE;
            let status_word: u16 = self.cq.read_le(off + 14)?;
            if (status_word & 1 != 0) != self.phase {
                break;
            }
            self.cq.sync_for_cpu();
            let mut raw = [0u8; CQE_SIZE];
            self.cq.read(off, &mut raw)?;
            let completion = Completion::parse(&CompletionEntry::new_checked(&raw[..])?);
            self.cq_head += 1;
            if self.cq_head == self.entries {
                self.cq_head = 0;
                self.phase = !self.phase;
            }
            n += 1;
            if completion.sq_head < self.entries {
                self.sq_head = completion.sq_head;
            }
            let cid = completion.cid;
            let Some(inflight) = self.slots.get_mut(cid as usize).and_then(Option::take) else {
                tracing::warn!(
                    qid = self.qid,
                    cid,
                    "completion for no command in flight: dropped"
                );
                continue;
            };
            self.free.push(cid);
            let seq = self.submitted_seq[cid as usize];
            if seq < self.last_completed_seq {
                self.out_of_order += 1;
            }
            self.last_completed_seq = self.last_completed_seq.max(seq);
            if inflight.abandoned {
                tracing::debug!(
                    qid = self.qid,
                    cid,
                    "late completion of an abandoned command"
                );
                continue;
            }
            out.push(Done {
                cid,
                completion,
                inflight,
            });
        }
        if n > 0 {
            bar.write_doorbell32(self.cq_db, self.cq_head as u32)?;
        }
        Ok(n)
    }

    /// The oldest live command that has waited at least `limit`.
    pub fn expired(&self, limit: std::time::Duration) -> Option<(u16, Inflight)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(cid, s)| s.map(|s| (cid as u16, s)))
            .filter(|(_, s)| !s.abandoned && s.since.elapsed() >= limit)
            .min_by_key(|(_, s)| s.since)
    }

    /// Stops waiting for every live command (after a timeout); its slot stays busy until the
    /// controller completes it or is reset.
    pub fn abandon_all(&mut self) {
        for s in self.slots.iter_mut().flatten() {
            s.abandoned = true;
        }
    }

    /// Address of command `cid`'s PRP list page.
    pub fn prp_list(&self, cid: u16) -> Option<(&DmaBuffer, usize)> {
        self.prp_lists
            .as_ref()
            .map(|b| (b, cid as usize * crate::PAGE_SIZE))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The ring logic against the kit's fake device, the test playing the controller through
    //! DMA: phase tags across a wrap, completions out of order, a full ring, stale entries.

    use super::*;
    use nvme_spec::regs::cq_head_doorbell;
    use nvme_spec::Status;
    use pcibox_model::fake::Fake;

    fn setup() -> (Fake, Device, Region) {
        let fake =
            Fake::new(0x1b36, 0x0010).with_region(0, 0x2000, std::iter::once(0..0x2000).collect());
        let dev = Device::new(Box::new(fake.clone())).unwrap();
        let bar = dev.region(0).unwrap();
        (fake, dev, bar)
    }

    /// Device side: posts a completion for `cid` at CQ slot `slot` with `phase`, having
    /// consumed the submission ring up to the driver's tail.
    fn post(fake: &Fake, q: &QueuePair, slot: u16, cid: u16, phase: bool, sc: u8) {
        let c = Completion {
            cid,
            phase,
            sq_head: q.sq_tail,
            status: Status::from_field(sc as u16),
            ..Completion::default()
        };
        let mut b = [0u8; CQE_SIZE];
        c.emit(&mut b).unwrap();
        fake.dma_write(q.cq_iova() + slot as u64 * CQE_SIZE as u64, &b)
            .unwrap();
    }

    #[test]
    fn phase_wrap_and_out_of_order() {
        let (fake, dev, bar) = setup();
        let mut q = QueuePair::new(&dev, 1, 4, 0, true).unwrap();
        // Three slots (entries - 1); the fourth reservation fails.
        let cids: Vec<u16> = (0..3).map(|_| q.reserve().unwrap()).collect();
        assert!(q.reserve().is_none());
        for &cid in &cids {
            q.submit(&bar, Command::flush(1), cid, "FLUSH").unwrap();
        }
        // The device saw the entries with their command ids at SQ slots 0..3.
        for (slot, &cid) in cids.iter().enumerate() {
            let raw = fake.dma_read(q.sq_iova() + slot as u64 * 64, 64).unwrap();
            assert_eq!(u16::from_le_bytes([raw[2], raw[3]]), cid);
        }
        assert_eq!(bar.read32(sq_tail_doorbell(1, 0)).unwrap(), 3);
        // Completions in reverse order, phase 1.
        for (slot, &cid) in cids.iter().rev().enumerate() {
            post(&fake, &q, slot as u16, cid, true, 0);
        }
        let mut done = Vec::new();
        assert_eq!(q.reap(&bar, &mut done).unwrap(), 3);
        assert_eq!(
            done.iter().map(|d| d.cid).collect::<Vec<_>>(),
            cids.iter().rev().copied().collect::<Vec<_>>()
        );
        assert_eq!(q.out_of_order, 2);
        assert_eq!(bar.read32(cq_head_doorbell(1, 0)).unwrap(), 3);
        // Nothing new: the entry at slot 3 still has phase 0.
        assert_eq!(q.reap(&bar, &mut done).unwrap(), 0);

        // Three more: CQ slots 3 (phase 1), then 0 and 1 after the wrap (phase 0).
        done.clear();
        let cids: Vec<u16> = (0..3).map(|_| q.reserve().unwrap()).collect();
        for &cid in &cids {
            q.submit(&bar, Command::flush(1), cid, "FLUSH").unwrap();
        }
        post(&fake, &q, 3, cids[0], true, 0);
        post(&fake, &q, 0, cids[1], false, 0);
        assert_eq!(q.reap(&bar, &mut done).unwrap(), 2);
        // Slot 1 still holds an old phase-1 entry: not new after the wrap.
        assert_eq!(q.reap(&bar, &mut done).unwrap(), 0);
        post(&fake, &q, 1, cids[2], false, 0x80);
        assert_eq!(q.reap(&bar, &mut done).unwrap(), 1);
        let last = done.last().unwrap();
        assert_eq!(last.completion.status.name(), "LBA Out of Range");
        assert_eq!(bar.read32(cq_head_doorbell(1, 0)).unwrap(), 2);
        assert_eq!(q.free_slots(), 3);
    }

    #[test]
    fn unknown_and_abandoned_completions_are_dropped() {
        let (fake, dev, bar) = setup();
        let mut q = QueuePair::new(&dev, 1, 8, 0, true).unwrap();
        let cid = q.reserve().unwrap();
        q.submit(&bar, Command::flush(1), cid, "FLUSH").unwrap();
        // A completion for an id never submitted: consumed, reported to nobody.
        post(&fake, &q, 0, 5, true, 0);
        let mut done = Vec::new();
        assert_eq!(q.reap(&bar, &mut done).unwrap(), 1);
        assert!(done.is_empty());
        // The real one, after the caller gave up on it: the slot comes back, no report.
        q.abandon_all();
        assert!(q.expired(std::time::Duration::ZERO).is_none());
        post(&fake, &q, 1, cid, true, 0);
        assert_eq!(q.reap(&bar, &mut done).unwrap(), 1);
        assert!(done.is_empty());
        assert_eq!(q.free_slots(), 7);
        // PRP list pages: one per slot.
        assert!(q.prp_list(6).is_some());
    }
}

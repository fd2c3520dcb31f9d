//! The receive and transmit descriptor rings: descriptors in one DMA buffer,
//! one pool buffer per descriptor slot.
//!
//! Index bookkeeping (see `e1000_spec::ring`): the device consumes
//! descriptors from its head register towards the tail register; software
//! produces at the tail and finds completed descriptors (DD set) from
//! `next_to_clean`. One slot always stays empty so `head == tail` means the
//! device owns nothing.

use crate::error::{Error, Result};
use e1000_spec::desc::{RxDesc, RxDescRepr, TxDesc, TxDescRepr, DESC_LEN};
use e1000_spec::regs;
use e1000_spec::ring::Ring;
use pcibox_kit::{Device, DmaBuffer, DmaPool, PoolBuffer, Region};

/// Offset of the status byte in both descriptor formats we use.
const STATUS_BYTE: usize = 12;
/// DD ("descriptor done") in that byte, for both rings.
const DD: u8 = 1;

/// Size of every packet buffer (RCTL.BSIZE = 2048, the reset value).
pub const BUF_SIZE: usize = 2048;

fn alloc_ring(dev: &Device, len: u32) -> Result<(Ring, DmaBuffer, DmaPool, Vec<PoolBuffer>)> {
    let ring = Ring::new(len)
        .filter(|_| len <= 4096)
        .ok_or(Error::RingLength(len))?;
    let desc = dev.alloc_dma(ring.bytes() as usize)?;
    let pool = dev.dma_pool(BUF_SIZE, len as usize)?;
    let mut bufs = Vec::with_capacity(len as usize);
    for _ in 0..len {
        bufs.push(pool.alloc().ok_or(Error::RingLength(len))?);
    }
    Ok((ring, desc, pool, bufs))
}

/// What one pass over the receive ring found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RxBatch {
    /// Frames handed to the caller.
    pub frames: usize,
    /// Descriptors dropped: damaged frames, frames spanning descriptors,
    /// lengths larger than the buffer.
    pub errors: usize,
}

/// The receive ring (legacy descriptors).
#[derive(Debug)]
pub(crate) struct RxRing {
    ring: Ring,
    desc: DmaBuffer,
    bufs: Vec<PoolBuffer>,
    _pool: DmaPool,
    /// The slot where the device writes back next.
    next_to_clean: u32,
}

impl RxRing {
    pub(crate) fn new(dev: &Device, len: u32) -> Result<RxRing> {
        let (ring, desc, pool, bufs) = alloc_ring(dev, len)?;
        Ok(RxRing {
            ring,
            desc,
            bufs,
            _pool: pool,
            next_to_clean: 0,
        })
    }

    /// Writes a fresh descriptor for every slot and points the device at the
    /// ring with all but one slot posted.
    pub(crate) fn program(&mut self, regs: &Region) -> Result<()> {
        for i in 0..self.ring.len() {
            self.prepare(i)?;
        }
        self.next_to_clean = 0;
        let iova = self.desc.iova();
        regs.write32(regs::RDBAL.into(), iova as u32)?;
        regs.write32(regs::RDBAH.into(), (iova >> 32) as u32)?;
        regs.write32(regs::RDLEN.into(), self.ring.bytes())?;
        regs.write32(regs::RDH.into(), 0)?;
        self.desc.sync_for_device();
        // Slots 0..len-1 belong to the device; the last one stays empty.
        regs.write_doorbell32(regs::RDT.into(), self.ring.len() - 1)?;
        Ok(())
    }

    fn prepare(&self, slot: u32) -> Result<()> {
        let mut d = [0u8; DESC_LEN];
        RxDesc::new_unchecked(&mut d[..]).prepare(self.bufs[slot as usize].iova());
        self.desc.write(self.ring.offset(slot), &d)?;
        Ok(())
    }

    /// The device has written back the next descriptor.
    pub(crate) fn ready(&self) -> Result<bool> {
        let status: u8 = self
            .desc
            .read_le(self.ring.offset(self.next_to_clean) + STATUS_BYTE)?;
        Ok(status & DD != 0)
    }

    /// Takes up to `max` written-back descriptors, hands each good frame to
    /// `sink`, gives the slots back to the device and moves the tail.
    pub(crate) fn clean(
        &mut self,
        regs: &Region,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<RxBatch> {
        let mut batch = RxBatch::default();
        let mut frame = vec![0u8; BUF_SIZE];
        let mut taken = 0;
        while taken < max && self.ready()? {
            let slot = self.next_to_clean;
            self.desc.sync_for_cpu();
            let mut raw = [0u8; DESC_LEN];
            self.desc.read(self.ring.offset(slot), &mut raw)?;
            let d = RxDescRepr::parse(&RxDesc::new_checked(&raw[..])?)?;
            let len = usize::from(d.length);
            // The device controls these fields: check before trusting them.
            let whole = d.status.contains(e1000_spec::desc::RxStatus::EOP);
            if whole && !d.errors.frame_damaged() && (1..=BUF_SIZE).contains(&len) {
                self.bufs[slot as usize].read(0, &mut frame[..len])?;
                sink(&frame[..len]);
                batch.frames += 1;
            } else {
                tracing::debug!(slot, len, ?d.status, ?d.errors, "dropping receive descriptor");
                batch.errors += 1;
            }
            self.prepare(slot)?;
            self.next_to_clean = self.ring.next(slot);
            taken += 1;
        }
        if taken > 0 {
            self.desc.sync_for_device();
            // The slot just before next_to_clean becomes the empty one:
            // the device owns everything from its head up to it.
            let tail = self.ring.advance(self.next_to_clean, self.ring.len() - 1);
            regs.write_doorbell32(regs::RDT.into(), tail)?;
        }
        Ok(batch)
    }
}

/// The transmit ring (legacy descriptors, one buffer per frame).
#[derive(Debug)]
pub(crate) struct TxRing {
    ring: Ring,
    desc: DmaBuffer,
    bufs: Vec<PoolBuffer>,
    _pool: DmaPool,
    /// Oldest descriptor not yet seen done.
    next_to_clean: u32,
    /// Where the next frame goes (the value last written to TDT).
    tail: u32,
}

impl TxRing {
    pub(crate) fn new(dev: &Device, len: u32) -> Result<TxRing> {
        let (ring, desc, pool, bufs) = alloc_ring(dev, len)?;
        Ok(TxRing {
            ring,
            desc,
            bufs,
            _pool: pool,
            next_to_clean: 0,
            tail: 0,
        })
    }

    pub(crate) fn program(&mut self, regs: &Region) -> Result<()> {
        self.desc.zero();
        self.next_to_clean = 0;
        self.tail = 0;
        let iova = self.desc.iova();
        regs.write32(regs::TDBAL.into(), iova as u32)?;
        regs.write32(regs::TDBAH.into(), (iova >> 32) as u32)?;
        regs.write32(regs::TDLEN.into(), self.ring.bytes())?;
        regs.write32(regs::TDH.into(), 0)?;
        regs.write32(regs::TDT.into(), 0)?;
        Ok(())
    }

    /// Frames queued and not yet seen done.
    pub(crate) fn in_flight(&self) -> u32 {
        self.ring.in_flight(self.next_to_clean, self.tail)
    }

    /// Walks completed descriptors (DD set) from `next_to_clean`; returns
    /// how many were reclaimed.
    pub(crate) fn reclaim(&mut self) -> Result<u32> {
        let mut n = 0;
        while self.in_flight() > 0 {
            let off = self.ring.offset(self.next_to_clean);
            let status: u8 = self.desc.read_le(off + STATUS_BYTE)?;
            if status & DD == 0 {
                break;
            }
            self.desc.write_le(off + STATUS_BYTE, 0u8)?;
            self.next_to_clean = self.ring.next(self.next_to_clean);
            n += 1;
        }
        Ok(n)
    }

    /// Largest frame one buffer carries.
    pub(crate) fn max_frame(&self) -> usize {
        BUF_SIZE
    }

    /// Queues as many of `frames` as there are free slots, rings the
    /// doorbell once, and returns how many were queued.
    pub(crate) fn push(&mut self, regs: &Region, frames: &[&[u8]]) -> Result<usize> {
        for f in frames {
            if f.is_empty() || f.len() > BUF_SIZE {
                return Err(Error::FrameSize {
                    len: f.len(),
                    max: BUF_SIZE,
                });
            }
        }
        self.reclaim()?;
        let free = self.ring.free(self.next_to_clean, self.tail) as usize;
        let n = frames.len().min(free);
        for f in &frames[..n] {
            let slot = self.tail;
            let buf = &self.bufs[slot as usize];
            buf.write(0, f)?;
            let mut d = [0u8; DESC_LEN];
            // Length fits u16: checked against BUF_SIZE above.
            TxDescRepr::single_frame(buf.iova(), f.len() as u16)
                .emit(&mut TxDesc::new_unchecked(&mut d[..]));
            self.desc.write(self.ring.offset(slot), &d)?;
            self.tail = self.ring.next(slot);
        }
        if n > 0 {
            // Descriptors and data before the doorbell (write_doorbell32 fences).
            regs.write_doorbell32(regs::TDT.into(), self.tail)?;
        }
        Ok(n)
    }
}

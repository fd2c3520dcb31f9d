//! The receive and transmit descriptor rings: descriptors in one DMA buffer,
//! one pool buffer per descriptor slot, and one frame-sized staging buffer
//! per ring through which frames are lent to the caller.
//!
//! Index bookkeeping (see `e1000_spec::ring`): the device consumes
//! descriptors from its head register towards the tail register; software
//! produces at the tail and finds completed descriptors (DD set) from
//! `next_to_clean`. One slot always stays empty so `head == tail` means the
//! device owns nothing.
//!
//! Frames are lent, not allocated: a received frame is copied once (volatile,
//! as for all memory the device may write) from its DMA buffer into the
//! ring's staging buffer and the caller borrows it there; a frame to send is
//! written by the caller into the staging buffer and copied once into the
//! slot's DMA buffer. The kit gives no reference into DMA memory, so this one
//! copy each way is the floor; no `Vec` is made per frame.
//!
//! Doorbells are batched: received slots go back to the device (RDT) when
//! half the ring is waiting, when the ring is found empty, or before
//! the driver sleeps; queued frames reach the device (TDT) at
//! [`TxRing::kick`].

use crate::error::{Error, Result};
use e1000_spec::desc::{RxDesc, RxDescRepr, RxStatus, TxDesc, TxDescRepr, DESC_LEN};
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
    /// Where received frames are lent from.
    staging: Box<[u8]>,
    /// The slot where the device writes back next.
    next_to_clean: u32,
    /// Slots cleaned and prepared again but not yet given back through RDT.
    to_return: u32,
    /// Give slots back once this many wait.
    return_batch: u32,
    /// Frames handed to the caller.
    pub frames: u64,
    /// Descriptors dropped.
    pub errors: u64,
}

impl RxRing {
    pub(crate) fn new(dev: &Device, len: u32) -> Result<RxRing> {
        let (ring, desc, pool, bufs) = alloc_ring(dev, len)?;
        Ok(RxRing {
            ring,
            desc,
            bufs,
            _pool: pool,
            staging: vec![0u8; BUF_SIZE].into_boxed_slice(),
            next_to_clean: 0,
            to_return: 0,
            return_batch: (len / 2).max(1),
            frames: 0,
            errors: 0,
        })
    }

    /// Writes a fresh descriptor for every slot and points the device at the
    /// ring with all but one slot posted.
    pub(crate) fn program(&mut self, regs: &Region) -> Result<()> {
        for i in 0..self.ring.len() {
            self.prepare(i)?;
        }
        self.next_to_clean = 0;
        self.to_return = 0;
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

    /// The device has written back the next descriptor (a frame, or one to
    /// drop).
    pub(crate) fn ready(&self) -> Result<bool> {
        let status: u8 = self
            .desc
            .read_le(self.ring.offset(self.next_to_clean) + STATUS_BYTE)?;
        Ok(status & DD != 0)
    }

    /// The next written-back descriptor's frame length, if it holds a good
    /// frame; `Ok(None)` for one to drop.
    fn inspect(&self, slot: u32) -> Result<Option<usize>> {
        self.desc.sync_for_cpu();
        let mut raw = [0u8; DESC_LEN];
        self.desc.read(self.ring.offset(slot), &mut raw)?;
        let d = RxDescRepr::parse(&RxDesc::new_checked(&raw[..])?)?;
        let len = usize::from(d.length);
        // The device controls these fields: check before trusting them.
        let whole = d.status.contains(RxStatus::EOP);
        if whole && !d.errors.frame_damaged() && (1..=BUF_SIZE).contains(&len) {
            Ok(Some(len))
        } else {
            tracing::debug!(slot, len, ?d.status, ?d.errors, "dropping receive descriptor");
            Ok(None)
        }
    }

    /// Prepares the slot at `next_to_clean` again, moves on, and gives the
    /// waiting slots back once enough wait.
    fn recycle(&mut self, regs: &Region) -> Result<()> {
        self.prepare(self.next_to_clean)?;
        self.next_to_clean = self.ring.next(self.next_to_clean);
        self.to_return += 1;
        if self.to_return >= self.return_batch {
            self.give_back(regs)?;
        }
        Ok(())
    }

    /// Hands every cleaned slot back to the device with one RDT write.
    pub(crate) fn give_back(&mut self, regs: &Region) -> Result<()> {
        if self.to_return == 0 {
            return Ok(());
        }
        self.to_return = 0;
        self.desc.sync_for_device();
        // The slot just before next_to_clean becomes the empty one: the
        // device owns everything from its head up to it.
        let tail = self.ring.advance(self.next_to_clean, self.ring.len() - 1);
        regs.write_doorbell32(regs::RDT.into(), tail)?;
        Ok(())
    }

    /// Drops damaged descriptors at the head; true when a good frame is
    /// next. When none is, the cleaned slots go back to the device.
    pub(crate) fn pending(&mut self, regs: &Region) -> Result<bool> {
        while self.ready()? {
            if self.inspect(self.next_to_clean)?.is_some() {
                return Ok(true);
            }
            self.errors += 1;
            self.recycle(regs)?;
        }
        self.give_back(regs)?;
        Ok(false)
    }

    /// Lends the next good frame to `f` (dropping damaged descriptors on the
    /// way); `Ok(None)` when none has arrived, after giving the cleaned slots
    /// back to the device.
    pub(crate) fn rx<R>(&mut self, regs: &Region, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        while self.ready()? {
            let slot = self.next_to_clean;
            let Some(len) = self.inspect(slot)? else {
                self.errors += 1;
                self.recycle(regs)?;
                continue;
            };
            self.bufs[slot as usize].read(0, &mut self.staging[..len])?;
            self.frames += 1;
            self.recycle(regs)?;
            return Ok(Some(f(&self.staging[..len])));
        }
        self.give_back(regs)?;
        Ok(None)
    }

    /// Takes up to `max` frames, handing each to `sink`, and gives the slots
    /// back with one RDT write.
    pub(crate) fn clean(
        &mut self,
        regs: &Region,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<RxBatch> {
        let errors = self.errors;
        let mut frames = 0;
        while frames < max && self.rx(regs, &mut *sink)?.is_some() {
            frames += 1;
        }
        self.give_back(regs)?;
        Ok(RxBatch {
            frames,
            errors: (self.errors - errors) as usize,
        })
    }
}

/// The transmit ring (legacy descriptors, one buffer per frame).
#[derive(Debug)]
pub(crate) struct TxRing {
    ring: Ring,
    desc: DmaBuffer,
    bufs: Vec<PoolBuffer>,
    _pool: DmaPool,
    /// Where frames to send are written by the caller.
    staging: Box<[u8]>,
    /// Oldest descriptor not yet seen done.
    next_to_clean: u32,
    /// Where the next frame goes.
    tail: u32,
    /// The value last written to TDT.
    kicked: u32,
    /// Frames queued.
    pub frames: u64,
    /// Bytes queued.
    pub bytes: u64,
    /// Frames refused because the ring was full.
    pub ring_full: u64,
}

impl TxRing {
    pub(crate) fn new(dev: &Device, len: u32) -> Result<TxRing> {
        let (ring, desc, pool, bufs) = alloc_ring(dev, len)?;
        Ok(TxRing {
            ring,
            desc,
            bufs,
            _pool: pool,
            staging: vec![0u8; BUF_SIZE].into_boxed_slice(),
            next_to_clean: 0,
            tail: 0,
            kicked: 0,
            frames: 0,
            bytes: 0,
            ring_full: 0,
        })
    }

    pub(crate) fn program(&mut self, regs: &Region) -> Result<()> {
        self.desc.zero();
        self.next_to_clean = 0;
        self.tail = 0;
        self.kicked = 0;
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
        // Only descriptors the device was told about can be done.
        while self.ring.in_flight(self.next_to_clean, self.kicked) > 0 {
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

    /// Free slots, after reclaiming what the device is done with.
    pub(crate) fn space(&mut self) -> Result<u32> {
        let free = self.ring.free(self.next_to_clean, self.tail);
        if free > 0 {
            return Ok(free);
        }
        self.reclaim()?;
        Ok(self.ring.free(self.next_to_clean, self.tail))
    }

    /// Largest frame one buffer carries.
    pub(crate) fn max_frame(&self) -> usize {
        BUF_SIZE
    }

    /// Lends `f` a zeroed `len`-byte frame to fill and queues it, without
    /// telling the device (see [`TxRing::kick`]). `Ok(None)`, with nothing
    /// queued and `f` not called, when the ring is full.
    pub(crate) fn queue<R>(
        &mut self,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>> {
        if !self.room_for(len)? {
            return Ok(None);
        }
        let frame = &mut self.staging[..len];
        frame.fill(0);
        let r = f(frame);
        self.bufs[self.tail as usize].write(0, &self.staging[..len])?;
        self.post(len)?;
        Ok(Some(r))
    }

    /// Queues a copy of `frame` (one copy, straight into the slot's buffer);
    /// false when the ring is full.
    fn queue_bytes(&mut self, frame: &[u8]) -> Result<bool> {
        if !self.room_for(frame.len())? {
            return Ok(false);
        }
        self.bufs[self.tail as usize].write(0, frame)?;
        self.post(frame.len())?;
        Ok(true)
    }

    /// Checks the length; false (counted) when no slot is free.
    fn room_for(&mut self, len: usize) -> Result<bool> {
        if len == 0 || len > BUF_SIZE {
            return Err(Error::FrameSize { len, max: BUF_SIZE });
        }
        if self.space()? == 0 {
            self.ring_full += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// Writes the descriptor for the `len`-byte frame in the tail slot's
    /// buffer and moves the tail.
    fn post(&mut self, len: usize) -> Result<()> {
        let slot = self.tail;
        let mut d = [0u8; DESC_LEN];
        // Length fits u16: checked against BUF_SIZE by room_for.
        TxDescRepr::single_frame(self.bufs[slot as usize].iova(), len as u16)
            .emit(&mut TxDesc::new_unchecked(&mut d[..]));
        self.desc.write(self.ring.offset(slot), &d)?;
        self.tail = self.ring.next(slot);
        self.frames += 1;
        self.bytes += len as u64;
        Ok(())
    }

    /// Tells the device about every frame queued since the last kick (one
    /// TDT write; none if nothing was queued).
    pub(crate) fn kick(&mut self, regs: &Region) -> Result<()> {
        if self.kicked != self.tail {
            // Descriptors and data before the doorbell (write_doorbell32 fences).
            regs.write_doorbell32(regs::TDT.into(), self.tail)?;
            self.kicked = self.tail;
        }
        Ok(())
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
        let mut n = 0;
        for f in frames {
            if !self.queue_bytes(f)? {
                break;
            }
            n += 1;
        }
        self.kick(regs)?;
        Ok(n)
    }
}

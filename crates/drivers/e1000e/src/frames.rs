//! The frame interface: one frame at a time, lent in place, never an
//! allocation per frame and never a sleep while a ring is full. This is what
//! both the smoltcp adapter (`phy.rs`) and a bridge such as a netback consume.
//!
//! - [`E1000e::rx`] lends the next received frame to a closure (`None` when
//!   none has arrived); damaged descriptors are dropped and counted on the
//!   way.
//! - [`E1000e::tx`] lends a zeroed frame of the asked length to a closure
//!   that fills it, queues it and rings the doorbell; `None`, without calling
//!   the closure, when the ring is full. [`E1000e::tx_queue`] queues without
//!   the doorbell and [`E1000e::tx_kick`] rings it once for all queued.
//! - [`E1000e::wait_for`] sleeps until a frame or a transmit slot is there
//!   (interrupts, or polling); [`E1000e::interrupt_fds`] for an event loop.
//! - [`E1000e::split`] gives the two halves ([`Rx`], [`Tx`]) to use at once.
//!
//! Frames are lent from a staging buffer per ring (one volatile copy from or
//! to the slot's DMA buffer; see `rings.rs`).

use crate::error::Result;
use crate::nic::E1000e;
use crate::rings::{RxRing, TxRing};
use pcibox_kit::Region;

/// What [`E1000e::wait_for`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// A received descriptor to take.
    Rx,
    /// A free transmit slot.
    TxSpace,
    /// Either.
    Either,
}

/// The receive half of an [`E1000e`] ([`E1000e::split`]).
#[derive(Debug)]
pub struct Rx<'a> {
    ring: &'a mut RxRing,
    regs: &'a Region,
}

/// The transmit half of an [`E1000e`] ([`E1000e::split`]).
#[derive(Debug)]
pub struct Tx<'a> {
    ring: &'a mut TxRing,
    regs: &'a Region,
}

impl<'a> Rx<'a> {
    pub(crate) fn new(ring: &'a mut RxRing, regs: &'a Region) -> Self {
        Rx { ring, regs }
    }

    /// Lends the next received frame to `f` and returns what it returns;
    /// `Ok(None)` (and `f` not called) when no frame has arrived. See
    /// [`E1000e::rx`].
    pub fn rx<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.ring.rx(self.regs, f)
    }

    /// A good frame is waiting: the next [`Rx::rx`] lends it. Drops the
    /// damaged descriptors before it.
    pub fn pending(&mut self) -> Result<bool> {
        self.ring.pending(self.regs)
    }
}

impl<'a> Tx<'a> {
    pub(crate) fn new(ring: &'a mut TxRing, regs: &'a Region) -> Self {
        Tx { ring, regs }
    }

    /// Lends `f` a zeroed frame of `len` bytes to fill, queues it and rings
    /// the doorbell; `Ok(None)` (and `f` not called) when the ring is full.
    /// See [`E1000e::tx`].
    pub fn tx<R>(&mut self, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<Option<R>> {
        let r = self.ring.queue(len, f)?;
        if r.is_some() {
            self.ring.kick(self.regs)?;
        }
        Ok(r)
    }

    /// Like [`Tx::tx`] without the doorbell: the frame waits for
    /// [`Tx::kick`].
    pub fn queue<R>(&mut self, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<Option<R>> {
        self.ring.queue(len, f)
    }

    /// Tells the device about every queued frame with one doorbell write.
    pub fn kick(&mut self) -> Result<()> {
        self.ring.kick(self.regs)
    }

    /// Free transmit slots (reclaiming finished ones when there are none).
    pub fn space(&mut self) -> Result<u32> {
        self.ring.space()
    }
}

impl E1000e {
    /// Lends the next received frame to `f` — borrowed for the call, from
    /// the ring's staging buffer, no allocation — and returns what `f`
    /// returns; `Ok(None)` when no frame has arrived (then `f` is not called
    /// and the slots taken so far go back to the device). Damaged
    /// descriptors are dropped and counted (`rx_errors`) on the way.
    ///
    /// ```no_run
    /// # fn demo(nic: &mut pcibox_e1000e::E1000e) -> pcibox_e1000e::Result<()> {
    /// while let Some(ethertype) = nic.rx(|frame| frame.get(12..14).map(|t| [t[0], t[1]]))? {
    ///     println!("{ethertype:02x?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn rx<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.split().0.rx(f)
    }

    /// A good received frame is waiting (damaged ones before it dropped).
    pub fn rx_pending(&mut self) -> Result<bool> {
        self.split().0.pending()
    }

    /// Lends `f` a zeroed frame of `len` bytes (1..=[`E1000e::max_frame`],
    /// else `Error::FrameSize`) to fill in place, queues it and rings the
    /// doorbell. `Ok(None)` when the transmit ring is full — `f` is not
    /// called, nothing waits; [`E1000e::wait_for`]`(Ready::TxSpace, …)`
    /// sleeps until a slot frees.
    pub fn tx<R>(&mut self, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<Option<R>> {
        self.split().1.tx(len, f)
    }

    /// Like [`E1000e::tx`] without the doorbell: queue a batch, then
    /// [`E1000e::tx_kick`] once.
    pub fn tx_queue<R>(&mut self, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<Option<R>> {
        self.split().1.queue(len, f)
    }

    /// Tells the device about every frame queued by [`E1000e::tx_queue`]
    /// (one doorbell write).
    pub fn tx_kick(&mut self) -> Result<()> {
        self.split().1.kick()
    }

    /// Free transmit slots (reclaiming finished ones when there are none).
    pub fn tx_space(&mut self) -> Result<u32> {
        self.split().1.space()
    }
}

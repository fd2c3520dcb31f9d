//! smoltcp's [`phy::Device`] as a thin adapter over the driver's frame
//! interface (`frames.rs`): a receive token lends the frame straight from
//! the ring (no queue, no `Vec` per frame), a transmit token has the frame
//! filled in place; when the transmit ring is full smoltcp gets no token and
//! tries again at its next poll, instead of the adapter sleeping.

use crate::error::{Error, Result};
use crate::frames::{Ready, Rx, Tx};
use crate::nic::E1000e;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant as SmolInstant;
use std::time::Duration;

/// A smoltcp device over an [`E1000e`].
#[derive(Debug)]
pub struct NetDevice<'a> {
    nic: &'a mut E1000e,
    /// The first driver error a token met (tokens cannot return errors).
    rx_error: Option<Error>,
    tx_error: Option<Error>,
    /// smoltcp found the transmit ring full since the last wait.
    tx_blocked: bool,
    /// Frames smoltcp gave us that could not be queued.
    pub tx_dropped: u64,
}

impl<'a> NetDevice<'a> {
    /// Wraps a driver.
    pub fn new(nic: &'a mut E1000e) -> Self {
        NetDevice {
            nic,
            rx_error: None,
            tx_error: None,
            tx_blocked: false,
            tx_dropped: 0,
        }
    }

    /// The driver underneath.
    pub fn nic(&mut self) -> &mut E1000e {
        self.nic
    }

    /// Returns (and clears) the first error a token met.
    pub fn take_error(&mut self) -> Result<()> {
        match self.rx_error.take().or_else(|| self.tx_error.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits up to `timeout` for a received frame — or a transmit slot, if
    /// smoltcp found the ring full — through the driver's
    /// [`E1000e::wait_for`]. Returns at once if one is there.
    pub fn wait(&mut self, timeout: Duration) -> Result<()> {
        let what = if std::mem::take(&mut self.tx_blocked) {
            Ready::Either
        } else {
            Ready::Rx
        };
        self.nic.wait_for(what, timeout)?;
        Ok(())
    }
}

/// A received frame, lent from the ring when consumed.
#[derive(Debug)]
pub struct RxToken<'b> {
    rx: Rx<'b>,
    error: &'b mut Option<Error>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(mut self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        // Exactly one of `f` (not called) and `out` (its result) ends up set.
        let mut f = Some(f);
        let mut out = None;
        let taken = self.rx.rx(|frame| out = f.take().map(|f| f(frame)));
        if let Err(e) = taken {
            self.error.get_or_insert(e);
        }
        match (out, f) {
            (Some(r), _) => r,
            // `receive` saw a good frame pending, so only a driver error gets
            // here: smoltcp drops the empty frame.
            (None, Some(f)) => f(&[]),
            (None, None) => unreachable!("the frame closure ran without a result"),
        }
    }
}

/// Permission to send one frame, filled in place in the transmit ring.
#[derive(Debug)]
pub struct TxToken<'b> {
    tx: Tx<'b>,
    error: &'b mut Option<Error>,
    dropped: &'b mut u64,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(mut self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // Exactly one of `f` (not called) and `out` (its result) ends up set.
        let mut f = Some(f);
        let mut out = None;
        let queued = self.tx.tx(len, |frame| out = f.take().map(|f| f(frame)));
        match queued {
            Ok(Some(())) => {}
            // Ring full after all (a receive token's reply may come second
            // to another frame) or an error: the frame is lost.
            Ok(None) => *self.dropped += 1,
            Err(e) => {
                self.error.get_or_insert(e);
                *self.dropped += 1;
            }
        }
        match (out, f) {
            (Some(r), _) => r,
            (None, Some(f)) => f(&mut vec![0u8; len]),
            (None, None) => unreachable!("the frame closure ran without a result"),
        }
    }
}

impl phy::Device for NetDevice<'_> {
    type RxToken<'b>
        = RxToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: SmolInstant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        match self.nic.rx_pending() {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                self.rx_error.get_or_insert(e);
                return None;
            }
        }
        let (rx, tx) = self.nic.split();
        Some((
            RxToken {
                rx,
                error: &mut self.rx_error,
            },
            TxToken {
                tx,
                error: &mut self.tx_error,
                dropped: &mut self.tx_dropped,
            },
        ))
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<TxToken<'_>> {
        match self.nic.tx_space() {
            Ok(0) => {
                self.tx_blocked = true;
                None
            }
            Ok(_) => {
                let (_, tx) = self.nic.split();
                Some(TxToken {
                    tx,
                    error: &mut self.tx_error,
                    dropped: &mut self.tx_dropped,
                })
            }
            Err(e) => {
                self.tx_error.get_or_insert(e);
                None
            }
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

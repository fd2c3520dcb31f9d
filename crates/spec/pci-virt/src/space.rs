//! The virtual config space: private copy, policy, reads, writes and the
//! outcome of a write.

use crate::handler::{Ctx, Handler};
use crate::policy::{Policy, Rule, Source};
use crate::Error;

/// Something the owner of the space must act on after a write. The private
/// copy ([`VirtualConfig::bytes`]) holds the full new state; parse it with
/// the `pci` crate's representations when an event needs more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The command register changed (memory/I/O decode, bus master, INTx
    /// disable, …).
    CommandChanged {
        /// Before the write.
        old: u16,
        /// After it.
        new: u16,
    },
    /// A BAR's address changed, other than by a sizing probe. A 64-bit
    /// BAR moved with two dword writes reports each half as it lands.
    BarMoved {
        /// The BAR slot (the lower slot of a 64-bit pair).
        bar: u8,
        /// The new base address.
        addr: u64,
    },
    /// The expansion ROM's address or enable bit changed (not by sizing).
    RomChanged {
        /// The new base address.
        addr: u32,
        /// Whether decoding is enabled.
        enabled: bool,
    },
    /// MSI enable or multiple message enable changed.
    MsiControl {
        /// MSI enable.
        enabled: bool,
        /// log2 of the vectors granted.
        vectors_log2: u8,
    },
    /// The MSI message address or data changed.
    MsiMessage {
        /// Message address.
        address: u64,
        /// Message data.
        data: u16,
    },
    /// The MSI per-vector mask bits changed.
    MsiMask {
        /// The new mask bits.
        mask: u32,
    },
    /// MSI-X enable or the function mask changed.
    MsixControl {
        /// MSI-X enable.
        enabled: bool,
        /// Function mask.
        function_mask: bool,
    },
    /// The PM power state changed (0 = D0 … 3 = D3hot).
    PowerState {
        /// The state before.
        from: u8,
        /// The state now.
        to: u8,
    },
    /// Initiate Function-Level Reset was written 1 (the bit reads 0).
    FlrRequested,
}

/// A write the owner must perform on the device: the pass-through part of
/// an access. All values are in access byte order (little-endian, the low
/// `len` bytes meaningful).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// Where the access starts.
    pub offset: u16,
    /// Its length (1, 2 or 4).
    pub len: u8,
    /// The written value of the bits in `mask` (0 elsewhere).
    pub value: u32,
    /// The bits the device takes from `value`: pass-through bits that are
    /// writable or write-1-to-clear.
    pub mask: u32,
    /// Every write-1-to-clear bit of the access, pass-through or not: they
    /// must be written 0 unless in `mask`, or a read-modify-write would
    /// clear them.
    pub w1c: u32,
}

impl Forward {
    /// The value to write to the device given its `current` value at the
    /// same offset and length: `value` in the masked bits, 0 in the other
    /// write-1-to-clear bits, `current` elsewhere.
    pub fn apply(&self, current: u32) -> u32 {
        (current & !self.mask & !self.w1c) | (self.value & self.mask)
    }

    /// Whether `apply` needs the device's current value (some bytes of the
    /// access are not fully covered by `mask | w1c`).
    pub fn needs_current(&self) -> bool {
        let full = if self.len >= 4 {
            u32::MAX
        } else {
            (1u32 << (8 * u32::from(self.len))) - 1
        };
        (self.mask | self.w1c) & full != full
    }
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The pass-through part, if any, for the owner to write to the device.
    pub forward: Option<Forward>,
    /// What the owner must act on, in register order.
    pub events: Vec<Event>,
    /// Bits (access byte order) the write tried to set but that are
    /// read-only, and values a handler refused (restored). Writing 0 over a
    /// read-only 1 is not counted: it is how drivers leave bits alone. For
    /// pass-through read-only bits the private copy holds the device's
    /// value from when the space was made.
    pub denied: u32,
    /// Bits (access byte order) that were absorbed by the private copy
    /// instead of reaching the device.
    pub virtualised: u32,
}

/// A virtual config space of 256 or 4096 bytes.
#[derive(Debug, Clone)]
pub struct VirtualConfig {
    pub(crate) copy: Vec<u8>,
    pub(crate) policy: Policy,
    pub(crate) handlers: Vec<Handler>,
}

/// Checks an access of `len` bytes at `offset` in a space of `size`.
fn check(offset: usize, len: usize, size: usize) -> Result<(), Error> {
    if !matches!(len, 1 | 2 | 4) {
        return Err(Error::BadWidth { len });
    }
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(Error::OutOfRange { offset, len, size });
    }
    Ok(())
}

/// Little-endian value of up to four bytes.
pub(crate) fn le(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

impl VirtualConfig {
    /// A space holding `bytes`, every bit read-only from `source`.
    pub(crate) fn with_bytes(bytes: Vec<u8>, source: Source) -> Self {
        let policy = Policy::new(bytes.len(), source);
        VirtualConfig {
            copy: bytes,
            policy,
            handlers: Vec::new(),
        }
    }

    /// The size in bytes (256 or 4096).
    pub fn len(&self) -> usize {
        self.copy.len()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The private copy: virtual bits as the guest sees them, pass-through
    /// bits as last known (the device's at creation, then as written).
    pub fn bytes(&self) -> &[u8] {
        &self.copy
    }

    /// The policy of every bit.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Applies `rule` to the bits `mask` (little-endian, `width` of 1–4
    /// bytes) of the register at `offset`. Hidden bits are cleared in the
    /// copy.
    pub fn set_rule(
        &mut self,
        offset: usize,
        width: usize,
        mask: u32,
        rule: Rule,
    ) -> Result<(), Error> {
        if !(1..=4).contains(&width) {
            return Err(Error::BadWidth { len: width });
        }
        let size = self.len();
        if offset.checked_add(width).is_none_or(|end| end > size) {
            return Err(Error::OutOfRange {
                offset,
                len: width,
                size,
            });
        }
        self.rule(offset, width, mask, rule);
        Ok(())
    }

    /// [`set_rule`](Self::set_rule) for registers known to be in range;
    /// bytes past the end are skipped.
    pub(crate) fn rule(&mut self, offset: usize, width: usize, mask: u32, rule: Rule) {
        for i in 0..width.min(4) {
            let at = offset + i;
            if at >= self.len() {
                break;
            }
            let m = (mask >> (8 * i)) as u8;
            self.policy.set(at, m, rule);
            if rule.source == Source::Hidden {
                self.copy[at] &= !m;
            }
        }
    }

    /// Applies `rule` to every bit of `offset..end` (clamped to the space).
    pub(crate) fn set_range(&mut self, offset: usize, end: usize, rule: Rule) {
        for at in offset..end.min(self.len()) {
            self.policy.set(at, 0xff, rule);
            if rule.source == Source::Hidden {
                self.copy[at] = 0;
            }
        }
    }

    /// Whether a read of `len` bytes at `offset` has pass-through bits, so
    /// that the owner must read the device first.
    pub fn needs_device(&self, offset: usize, len: usize) -> Result<bool, Error> {
        check(offset, len, self.len())?;
        Ok((offset..offset + len).any(|at| self.policy.virtual_bits(at) != 0xff))
    }

    /// A read of `buf.len()` (1, 2 or 4) bytes at `offset`. On entry `buf`
    /// holds the device's bytes there (anything, if [`needs_device`] says
    /// no); pass-through bits keep them, virtual bits are replaced from the
    /// private copy and hidden bits read 0.
    ///
    /// [`needs_device`]: VirtualConfig::needs_device
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        check(offset, buf.len(), self.len())?;
        for (i, b) in buf.iter_mut().enumerate() {
            let v = self.policy.virtual_bits(offset + i);
            *b = (*b & !v) | (self.copy[offset + i] & v);
        }
        Ok(())
    }

    /// The whole space as read, given the device's bytes (`device` shorter
    /// than the space reads as 0 past its end).
    pub fn view(&self, device: &[u8]) -> Vec<u8> {
        (0..self.len())
            .map(|at| {
                let v = self.policy.virtual_bits(at);
                (device.get(at).copied().unwrap_or(0) & !v) | (self.copy[at] & v)
            })
            .collect()
    }

    /// A write of `data` (1, 2 or 4 bytes) at `offset`, as a driver makes
    /// it: the policy decides bit by bit, then the handlers of the touched
    /// registers run.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<WriteOutcome, Error> {
        let len = data.len();
        check(offset, len, self.len())?;
        let mut old = [0u8; 4];
        old[..len].copy_from_slice(&self.copy[offset..offset + len]);
        let mut out = WriteOutcome::default();
        let (mut fwd, mut w1c_all) = (0u32, 0u32);
        for (i, &d) in data.iter().enumerate() {
            let at = offset + i;
            let (w, c) = (self.policy.writable(at), self.policy.w1c(at));
            let v = self.policy.virtual_bits(at);
            let before = self.copy[at];
            self.copy[at] = ((before & !w) | (d & w)) & !(d & c);
            let shift = 8 * i;
            out.denied |= u32::from(d & !before & !(w | c)) << shift;
            out.virtualised |= u32::from((w | c) & v) << shift;
            fwd |= u32::from((w | c) & !v) << shift;
            w1c_all |= u32::from(c) << shift;
        }
        let mut cx = Ctx::new(&mut self.copy, offset, old, len);
        for h in &mut self.handlers {
            if h.touches(offset, len) {
                h.on_write(&mut cx);
            }
        }
        let (events, refused) = cx.finish();
        out.events = events;
        out.denied |= refused;
        out.virtualised &= !refused;
        fwd &= !refused;
        if fwd != 0 {
            out.forward = Some(Forward {
                offset: offset as u16,
                len: len as u8,
                value: le(data) & fwd,
                mask: fwd,
                w1c: w1c_all,
            });
        }
        Ok(out)
    }

    /// The device side of a model: sets bytes of the private copy whatever
    /// the policy (raising status, pending or PME bits). No handler runs.
    pub fn poke(&mut self, offset: usize, data: &[u8]) -> Result<(), Error> {
        let size = self.len();
        let dst = offset
            .checked_add(data.len())
            .and_then(|end| self.copy.get_mut(offset..end))
            .ok_or(Error::OutOfRange {
                offset,
                len: data.len(),
                size,
            })?;
        dst.copy_from_slice(data);
        Ok(())
    }

    /// The little-endian word of the private copy at `at` (0 past the end).
    pub(crate) fn copy16(&self, at: usize) -> u16 {
        self.copy
            .get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    }

    /// The little-endian dword of the private copy at `at` (0 past the end).
    pub(crate) fn copy32(&self, at: usize) -> u32 {
        self.copy
            .get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Writes `bytes` into the private copy at `at` (callers stay in range).
    pub(crate) fn put(&mut self, at: usize, bytes: &[u8]) {
        if let Some(dst) = self.copy.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
}

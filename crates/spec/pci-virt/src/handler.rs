//! Handlers: what happens after the policy applied a write to the command
//! register, a BAR, the expansion ROM or a PM, MSI, MSI-X or PCI Express
//! capability. They compare the touched registers before and after, report
//! [`Event`]s, refuse values the register cannot hold (restoring the old
//! bits, which then count as denied) and clear self-clearing bits. They
//! only ever change writable bits of the bytes the access touched.

use crate::space::Event;
use pci::bar_bits;
use pci::cap_reg::{exp, msi, msix, pm};
use pci::reg;

/// The state a handler sees: the private copy after the policy applied the
/// access, and the access's bytes before it.
pub(crate) struct Ctx<'a> {
    copy: &'a mut [u8],
    at: usize,
    old: [u8; 4],
    len: usize,
    events: Vec<Event>,
    refused: u32,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(copy: &'a mut [u8], at: usize, old: [u8; 4], len: usize) -> Self {
        Ctx {
            copy,
            at,
            old,
            len,
            events: Vec::new(),
            refused: 0,
        }
    }

    /// The events and the refused bits (access byte order).
    pub(crate) fn finish(self) -> (Vec<Event>, u32) {
        (self.events, self.refused)
    }

    fn inside(&self, b: usize) -> bool {
        (self.at..self.at + self.len).contains(&b)
    }

    /// Whether the access touched any of `width` bytes at `r`.
    fn touched(&self, r: usize, width: usize) -> bool {
        (r..r + width).any(|b| self.inside(b))
    }

    fn new_byte(&self, b: usize) -> u8 {
        self.copy.get(b).copied().unwrap_or(0)
    }

    fn old_byte(&self, b: usize) -> u8 {
        if self.inside(b) {
            self.old[b - self.at]
        } else {
            self.new_byte(b)
        }
    }

    fn value(&self, r: usize, width: usize, f: impl Fn(&Self, usize) -> u8) -> u32 {
        (0..width).fold(0, |acc, i| acc | u32::from(f(self, r + i)) << (8 * i))
    }

    fn new32(&self, r: usize) -> u32 {
        self.value(r, 4, Self::new_byte)
    }
    fn new16(&self, r: usize) -> u16 {
        self.value(r, 2, Self::new_byte) as u16
    }
    fn old16(&self, r: usize) -> u16 {
        self.value(r, 2, Self::old_byte) as u16
    }

    /// Whether any of `width` bytes at `r` differ from before the access.
    fn changed(&self, r: usize, width: usize) -> bool {
        (r..r + width).any(|b| self.old_byte(b) != self.new_byte(b))
    }

    /// Restores the bits `mask` of the 16-bit register at `r` to their old
    /// value and records them as refused.
    fn refuse16(&mut self, r: usize, mask: u16) {
        for i in 0..2 {
            let b = r + i;
            let m = (mask >> (8 * i)) as u8;
            if !self.inside(b) || m == 0 {
                continue;
            }
            let old = self.old[b - self.at];
            self.copy[b] = (self.copy[b] & !m) | (old & m);
            self.refused |= u32::from(m) << (8 * (b - self.at));
        }
    }

    /// Clears the bits `mask` of the 16-bit register at `r` in the copy.
    fn clear16(&mut self, r: usize, mask: u16) {
        for i in 0..2 {
            if let Some(b) = self.copy.get_mut(r + i) {
                *b &= !((mask >> (8 * i)) as u8);
            }
        }
    }

    fn event(&mut self, e: Event) {
        self.events.push(e);
    }
}

/// A BAR's address from its register(s).
pub(crate) fn bar_addr(lo: u32, hi: u32) -> u64 {
    if lo & bar_bits::IO != 0 {
        u64::from(lo & bar_bits::IO_ADDR_MASK)
    } else {
        u64::from(lo & bar_bits::MEM_ADDR_MASK) | (u64::from(hi) << 32)
    }
}

/// Whether `v` holds every writable bit of a non-empty mask `w` (what a
/// sizing probe leaves behind).
fn probing(v: u32, w: u32) -> bool {
    w != 0 && v & w == w
}

/// One handler and the registers it watches.
#[derive(Debug, Clone)]
pub(crate) enum Handler {
    /// The command register.
    Command,
    /// A BAR: the writable (size) masks of its register(s), and the
    /// address last reported.
    Bar {
        index: u8,
        lo: u32,
        hi: Option<u32>,
        last: u64,
    },
    /// The expansion ROM: its writable mask and the last reported state.
    Rom { mask: u32, last: (u32, bool) },
    /// MSI at `at`, `len` bytes long.
    Msi { at: usize, len: usize },
    /// MSI-X at `at`.
    Msix { at: usize },
    /// PM at `at`; `allowed` has bit n set when Dn may be entered.
    Pm { at: usize, allowed: u8 },
    /// PCI Express at `at`.
    Pcie { at: usize },
}

impl Handler {
    /// The bytes the handler watches.
    fn span(&self) -> (usize, usize) {
        match *self {
            Handler::Command => (reg::COMMAND, 2),
            Handler::Bar { index, hi, .. } => {
                let n = if hi.is_some() { 8 } else { 4 };
                (reg::BAR0 + 4 * usize::from(index), n)
            }
            Handler::Rom { .. } => (reg::ROM, 4),
            Handler::Msi { at, len } => (at, len),
            Handler::Msix { at } => (at + msix::CONTROL, 2),
            Handler::Pm { at, .. } => (at + pm::PMCSR, 2),
            Handler::Pcie { at } => (at + exp::DEVCTL, 2),
        }
    }

    /// Whether an access of `len` bytes at `at` touches the handler.
    pub(crate) fn touches(&self, at: usize, len: usize) -> bool {
        let (start, n) = self.span();
        at < start + n && start < at + len
    }

    /// Runs the handler after a write that touched it.
    pub(crate) fn on_write(&mut self, cx: &mut Ctx<'_>) {
        match self {
            Handler::Command => {
                let (old, new) = (cx.old16(reg::COMMAND), cx.new16(reg::COMMAND));
                if old != new {
                    cx.event(Event::CommandChanged { old, new });
                }
            }
            Handler::Bar {
                index,
                lo,
                hi,
                last,
            } => {
                let r = reg::BAR0 + 4 * usize::from(*index);
                let v = cx.new32(r);
                let h = hi.map_or(0, |_| cx.new32(r + 4));
                let sizing = probing(v, *lo) || hi.is_some_and(|w| probing(h, w));
                let addr = bar_addr(v, h);
                if !sizing && addr != *last {
                    *last = addr;
                    cx.event(Event::BarMoved { bar: *index, addr });
                }
            }
            Handler::Rom { mask, last } => {
                let v = cx.new32(reg::ROM);
                let addr_mask = *mask & bar_bits::ROM_ADDR_MASK;
                let now = (v & addr_mask, v & bar_bits::ROM_ENABLE != 0);
                if !probing(v, addr_mask) && now != *last {
                    *last = now;
                    cx.event(Event::RomChanged {
                        addr: now.0,
                        enabled: now.1,
                    });
                }
            }
            Handler::Msi { at, .. } => on_msi(cx, *at),
            Handler::Msix { at } => {
                let r = *at + msix::CONTROL;
                let bits = msix::ENABLE | msix::FUNCTION_MASK;
                let new = cx.new16(r);
                if (cx.old16(r) ^ new) & bits != 0 {
                    cx.event(Event::MsixControl {
                        enabled: new & msix::ENABLE != 0,
                        function_mask: new & msix::FUNCTION_MASK != 0,
                    });
                }
            }
            Handler::Pm { at, allowed } => {
                let r = *at + pm::PMCSR;
                let to = (cx.new16(r) & pm::STATE_MASK) as u8;
                if *allowed & (1 << to) == 0 {
                    cx.refuse16(r, pm::STATE_MASK);
                }
                let from = (cx.old16(r) & pm::STATE_MASK) as u8;
                let to = (cx.new16(r) & pm::STATE_MASK) as u8;
                if from != to {
                    cx.event(Event::PowerState { from, to });
                }
            }
            Handler::Pcie { at } => {
                let r = *at + exp::DEVCTL;
                if cx.new16(r) & exp::DEVCTL_FLR != 0 {
                    cx.clear16(r, exp::DEVCTL_FLR);
                    cx.event(Event::FlrRequested);
                }
            }
        }
    }
}

/// MSI: refuses more vectors than capable, reports control, message and
/// mask changes.
fn on_msi(cx: &mut Ctx<'_>, at: usize) {
    let r = at + msi::CONTROL;
    let ctl = cx.new16(r);
    let mmc = (ctl >> msi::MMC_SHIFT) & 7;
    if (ctl & msi::MME_MASK) >> msi::MME_SHIFT > mmc {
        cx.refuse16(r, msi::MME_MASK);
    }
    let ctl = cx.new16(r);
    if (cx.old16(r) ^ ctl) & (msi::ENABLE | msi::MME_MASK) != 0 {
        cx.event(Event::MsiControl {
            enabled: ctl & msi::ENABLE != 0,
            vectors_log2: ((ctl & msi::MME_MASK) >> msi::MME_SHIFT) as u8,
        });
    }
    let is_64 = ctl & msi::IS_64 != 0;
    let (data, mask) = if is_64 {
        (msi::DATA_64, msi::MASK_64)
    } else {
        (msi::DATA_32, msi::MASK_32)
    };
    let msg = at + msi::ADDRESS;
    let msg_len = data + 2 - msi::ADDRESS;
    if cx.touched(msg, msg_len) && cx.changed(msg, msg_len) {
        let hi = if is_64 {
            cx.new32(at + msi::ADDRESS_HI)
        } else {
            0
        };
        cx.event(Event::MsiMessage {
            address: (u64::from(hi) << 32) | u64::from(cx.new32(msg)),
            data: cx.new16(at + data),
        });
    }
    if ctl & msi::PVM != 0 && cx.touched(at + mask, 4) && cx.changed(at + mask, 4) {
        let mask = cx.new32(at + mask);
        cx.event(Event::MsiMask { mask });
    }
}

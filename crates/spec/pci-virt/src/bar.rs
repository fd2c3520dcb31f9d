//! BAR and expansion ROM emulation, as bit policy: the address bits at and
//! above the size are writable, everything below (type bits, the size's
//! own zero bits) is read-only. Writing all ones therefore reads back the
//! size mask with the type bits, and any other write just moves the
//! virtual address.

use crate::handler::{bar_addr, Handler};
use crate::policy::{Access, Rule};
use crate::{Error, VirtualConfig};
use pci::{bar_bits, reg, Bar, MemKind};

/// The emulated register(s) of one BAR: writable mask and initial value of
/// the low dword and, for a 64-bit BAR, of the high dword.
struct Layout {
    lo_write: u32,
    lo: u32,
    hi: Option<(u32, u32)>,
}

/// The layout of `bar` with `size` bytes in slot `index` of six.
fn layout(index: u8, bar: &Bar, size: u64) -> Result<Layout, Error> {
    let err = |why| Err(Error::Bar { index, why });
    if index > 5 {
        return err("no such slot (0-5)");
    }
    if !size.is_power_of_two() {
        return err("size is not a power of two");
    }
    match *bar {
        Bar::Io { port } => {
            if !(4..=1 << 31).contains(&size) {
                return err("I/O size outside 4 bytes to 2 GiB");
            }
            let w = !(size as u32 - 1) & bar_bits::IO_ADDR_MASK;
            Ok(Layout {
                lo_write: w,
                lo: (port & w) | bar_bits::IO,
                hi: None,
            })
        }
        Bar::Memory {
            addr,
            mem,
            prefetchable,
        } => {
            let pf = if prefetchable { bar_bits::PREFETCH } else { 0 };
            let (max, ty) = match mem {
                MemKind::Bits32 => (1u64 << 31, 0),
                MemKind::Below1M => (1 << 20, bar_bits::MEM_TYPE_1M),
                MemKind::Bits64 => (1 << 63, bar_bits::MEM_TYPE_64),
                MemKind::Reserved => return err("reserved memory type"),
            };
            if !(16..=max).contains(&size) {
                return err("memory size below 16 bytes or above what the type can decode");
            }
            let w = !(size - 1) & !0xf;
            if mem != MemKind::Bits64 {
                if addr > u64::from(u32::MAX) {
                    return err("address above 4 GiB in a 32-bit BAR");
                }
                return Ok(Layout {
                    lo_write: w as u32,
                    lo: (addr as u32 & w as u32) | ty | pf,
                    hi: None,
                });
            }
            if index == 5 {
                return err("a 64-bit BAR needs the next slot");
            }
            let a = addr & w;
            Ok(Layout {
                lo_write: w as u32,
                lo: a as u32 | ty | pf,
                hi: Some(((w >> 32) as u32, (a >> 32) as u32)),
            })
        }
        Bar::Unused | Bar::Upper | Bar::Broken64 { .. } => err("not an I/O or memory BAR"),
    }
}

impl VirtualConfig {
    /// Emulates BAR `index` (and `index + 1` for a 64-bit BAR) as `bar`
    /// with `size` bytes, starting at `bar`'s address rounded down to the
    /// size. Returns how many slots it took.
    pub(crate) fn install_bar(&mut self, index: u8, bar: &Bar, size: u64) -> Result<u8, Error> {
        let l = layout(index, bar, size)?;
        let r = reg::BAR0 + 4 * usize::from(index);
        let mut regs = vec![(r, l.lo_write, l.lo)];
        if let Some((w, v)) = l.hi {
            regs.push((r + 4, w, v));
        }
        for &(at, w, v) in &regs {
            self.put(at, &v.to_le_bytes());
            self.set_rule(at, 4, u32::MAX, Rule::virt(Access::ReadOnly))?;
            self.set_rule(at, 4, w, Rule::virt(Access::ReadWrite))?;
        }
        self.handlers.push(Handler::Bar {
            index,
            lo: l.lo_write,
            hi: l.hi.map(|h| h.0),
            last: bar_addr(l.lo, l.hi.map_or(0, |h| h.1)),
        });
        Ok(regs.len() as u8)
    }

    /// Emulates the expansion ROM register with `size` bytes (2 KiB to
    /// 2 GiB), keeping what `current` holds of its address and enable bit.
    pub(crate) fn install_rom(&mut self, size: u64, current: u32) -> Result<(), Error> {
        if !size.is_power_of_two() || !(0x800..=1 << 31).contains(&size) {
            return Err(Error::Bar {
                index: 6,
                why: "expansion ROM size is not a power of two from 2 KiB to 2 GiB",
            });
        }
        let w = (!(size as u32 - 1) & bar_bits::ROM_ADDR_MASK) | bar_bits::ROM_ENABLE;
        let v = current & w;
        self.put(reg::ROM, &v.to_le_bytes());
        self.set_rule(reg::ROM, 4, u32::MAX, Rule::virt(Access::ReadOnly))?;
        self.set_rule(reg::ROM, 4, w, Rule::virt(Access::ReadWrite))?;
        self.handlers.push(Handler::Rom {
            mask: w,
            last: (v & bar_bits::ROM_ADDR_MASK, v & bar_bits::ROM_ENABLE != 0),
        });
        Ok(())
    }
}

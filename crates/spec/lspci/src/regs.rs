//! Reading a capability's registers as lspci does: offsets relative to the
//! capability, values widened to `u32`, and `has` for lspci's
//! `config_fetch` (whether the bytes could be read at all). Reads past the
//! buffer give 0; callers check `has` first where lspci would stop.

use pci::ConfigSpace;

/// One capability at `at` in `c`.
#[derive(Clone, Copy)]
pub(super) struct Regs<'a> {
    pub c: &'a ConfigSpace<Vec<u8>>,
    pub at: usize,
}

impl Regs<'_> {
    pub fn b(&self, off: usize) -> u32 {
        self.c.byte(self.at + off).map_or(0, u32::from)
    }
    pub fn w(&self, off: usize) -> u32 {
        self.w16(off).into()
    }
    pub fn w16(&self, off: usize) -> u16 {
        self.c.word(self.at + off).unwrap_or(0)
    }
    pub fn d(&self, off: usize) -> u32 {
        self.c.dword(self.at + off).unwrap_or(0)
    }
    /// Whether `len` (at least 1) bytes from `off` could be read.
    pub fn has(&self, off: usize, len: usize) -> bool {
        self.c.byte(self.at + off + len.max(1) - 1).is_some()
    }
}

//! Config-space access on [`Device`]: 8/16/32-bit reads and writes with
//! checked, naturally aligned offsets, and a few command-register helpers.
//!
//! Capability walks belong to the `pci` crate: [`Device::config_space`]
//! returns a snapshot as `pci`'s checked view (capabilities, BARs, MSI/MSI-X
//! representations); [`Device::find_capability`] is its walk.

use crate::device::{Device, COMMAND, COMMAND_BUS_MASTER, COMMAND_MEMORY};
use crate::error::{Error, Result};
use crate::mmap::Width;

impl Device {
    /// Size of the device's config space in bytes (256 or 4096).
    pub fn config_len(&self) -> usize {
        self.shared.backend.config_len()
    }

    fn config_check(&self, offset: usize, width: usize) -> Result<()> {
        let size = self.config_len();
        let ok = width <= 4
            && offset % width == 0
            && offset.checked_add(width).is_some_and(|e| e <= size);
        if ok {
            Ok(())
        } else {
            Err(Error::ConfigOffset {
                offset,
                width,
                size,
            })
        }
    }

    /// Reads a naturally aligned 1-, 2- or 4-byte value of config space.
    pub fn config_read<W: Width>(&self, offset: usize) -> Result<W> {
        self.config_check(offset, W::BYTES)?;
        let mut b = [0u8; 8];
        self.shared
            .backend
            .config_read(offset, &mut b[..W::BYTES])?;
        Ok(W::from_le(&b))
    }

    /// Writes a naturally aligned 1-, 2- or 4-byte value of config space.
    pub fn config_write<W: Width>(&self, offset: usize, value: W) -> Result<()> {
        self.config_check(offset, W::BYTES)?;
        let mut b = [0u8; 8];
        value.to_le(&mut b);
        self.shared.backend.config_write(offset, &b[..W::BYTES])
    }

    /// Reads a byte of config space.
    pub fn config_read8(&self, offset: usize) -> Result<u8> {
        self.config_read(offset)
    }
    /// Reads a 16-bit word of config space.
    pub fn config_read16(&self, offset: usize) -> Result<u16> {
        self.config_read(offset)
    }
    /// Reads a 32-bit dword of config space.
    pub fn config_read32(&self, offset: usize) -> Result<u32> {
        self.config_read(offset)
    }
    /// Writes a byte of config space.
    pub fn config_write8(&self, offset: usize, v: u8) -> Result<()> {
        self.config_write(offset, v)
    }
    /// Writes a 16-bit word of config space.
    pub fn config_write16(&self, offset: usize, v: u16) -> Result<()> {
        self.config_write(offset, v)
    }
    /// Writes a 32-bit dword of config space.
    pub fn config_write32(&self, offset: usize, v: u32) -> Result<()> {
        self.config_write(offset, v)
    }

    /// The whole config space, read a dword at a time (what the backend
    /// shows; for `pci`'s views and capability walk).
    pub fn config_bytes(&self) -> Result<Vec<u8>> {
        let len = self.config_len();
        let mut out = vec![0u8; len];
        for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
            self.shared.backend.config_read(i * 4, chunk)?;
        }
        Ok(out)
    }

    /// A snapshot of the whole config space as the `pci` crate's checked
    /// view: `caps()`, `ext_caps()`, `find_cap(id)`, `bars()`, and the
    /// capability parsers (`pci::MsixRepr::parse(view.as_bytes(), off)` …).
    pub fn config_space(&self) -> Result<pci::ConfigSpace<Vec<u8>>> {
        Ok(pci::ConfigSpace::new_checked(self.config_bytes()?)?)
    }

    /// The offset of the first standard capability with `id`
    /// (`pci::cap_id::…`), walked (bounded) by the `pci` crate.
    pub fn find_capability(&self, id: u8) -> Result<Option<u8>> {
        Ok(self.config_space()?.find_cap(id))
    }

    /// Vendor and device ID.
    pub fn ids(&self) -> Result<(u16, u16)> {
        Ok((self.config_read16(0)?, self.config_read16(2)?))
    }

    /// Sets or clears bits of the command register (read-modify-write).
    pub fn update_command(&self, set: u16, clear: u16) -> Result<u16> {
        let v = (self.config_read16(COMMAND)? & !clear) | set;
        self.config_write16(COMMAND, v)?;
        Ok(v)
    }

    /// Enables memory-space decoding and bus mastering (DMA, MSI), which
    /// VFIO leaves off. Call before starting DMA.
    pub fn enable_memory_and_bus_master(&self) -> Result<()> {
        self.update_command(COMMAND_MEMORY | COMMAND_BUS_MASTER, 0)
            .map(|_| ())
    }

    /// Enables or disables bus mastering.
    pub fn set_bus_master(&self, on: bool) -> Result<()> {
        let (set, clear) = if on {
            (COMMAND_BUS_MASTER, 0)
        } else {
            (0, COMMAND_BUS_MASTER)
        };
        self.update_command(set, clear).map(|_| ())
    }
}

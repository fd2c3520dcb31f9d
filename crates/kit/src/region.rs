//! Device regions (BARs): volatile 8–64-bit access through a mapping where
//! the backend allows one, through the backend's read/write otherwise.
//!
//! Ordering: accesses through one `Region` are volatile and happen in
//! program order with respect to each other. Before writing a doorbell that
//! tells the device to look at descriptors in DMA memory, call
//! [`doorbell_fence`] (or use [`Region::write_doorbell32`]) so the
//! descriptor stores are visible to the device first. After reading a
//! completion flag from DMA memory and before reading the rest of the entry,
//! call [`crate::DmaSlice::sync_for_cpu`].

use crate::backend::RegionInfo;
use crate::device::{Device, Shared};
use crate::error::{Chain, Error, Result};
use crate::mmap::{Mmap, Width};
use std::ops::Range;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

/// A full memory fence: all earlier loads and stores (DMA memory, MMIO) are
/// globally visible before any later one. Use between writing descriptors
/// and ringing a doorbell.
#[inline]
pub fn doorbell_fence() {
    fence(Ordering::SeqCst);
}

/// One region of a device.
#[derive(Debug)]
pub struct Region {
    shared: Arc<Shared>,
    info: RegionInfo,
    /// Mapped areas, sorted by start offset.
    maps: Vec<(Range<u64>, Mmap)>,
}

impl Device {
    /// Opens region `index`, mapping every area the backend allows; other
    /// parts (e.g. an MSI-X table not mappable) use the read/write path.
    /// If a mapping fails the area falls back to read/write (logged).
    pub fn region(&self, index: u32) -> Result<Region> {
        self.open_region(index, true)
    }

    /// Opens region `index` without any mapping: every access goes through
    /// the backend's read/write (the trapped path).
    pub fn region_unmapped(&self, index: u32) -> Result<Region> {
        self.open_region(index, false)
    }

    fn open_region(&self, index: u32, map: bool) -> Result<Region> {
        let info = self.region_info(index)?;
        let mut maps = Vec::new();
        // I/O-port BARs are never mapped; the read/write path serves them.
        if map && !info.mmap_areas.is_empty() && !info.io_port {
            let fd = self.shared.backend.region_mmap_fd(index)?;
            for area in &info.mmap_areas {
                if area.start >= area.end || area.end > info.size {
                    continue;
                }
                let len = (area.end - area.start) as usize;
                match Mmap::map(fd, info.mmap_offset + area.start, len, info.writable) {
                    Ok(m) => maps.push((area.clone(), m)),
                    Err(e) => tracing::warn!(
                        "{}: region {index} area {:#x}..{:#x}: mmap failed, using read/write: {}",
                        self.name(),
                        area.start,
                        area.end,
                        Chain(&e)
                    ),
                }
            }
            maps.sort_by_key(|(r, _)| r.start);
        }
        Ok(Region {
            shared: self.shared.clone(),
            info,
            maps,
        })
    }
}

impl Region {
    /// The region's description.
    pub fn info(&self) -> &RegionInfo {
        &self.info
    }

    /// Region index.
    pub fn index(&self) -> u32 {
        self.info.index
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.info.size
    }

    /// The parts of the region served by a mapping (empty: all trapped).
    pub fn mapped_ranges(&self) -> Vec<Range<u64>> {
        self.maps.iter().map(|(r, _)| r.clone()).collect()
    }

    /// True if `offset` is served by a mapping.
    pub fn is_mapped_at(&self, offset: u64) -> bool {
        self.find(offset, 1).is_some()
    }

    fn check(&self, offset: u64, width: usize) -> Result<()> {
        let w = width as u64;
        if offset % w != 0 || offset.checked_add(w).is_none_or(|e| e > self.info.size) {
            return Err(Error::RegionBounds {
                index: self.info.index,
                offset,
                width,
                size: self.info.size,
            });
        }
        Ok(())
    }

    fn find(&self, offset: u64, width: usize) -> Option<(&Mmap, usize)> {
        let i = self
            .maps
            .partition_point(|(r, _)| r.start <= offset)
            .checked_sub(1)?;
        let (r, m) = &self.maps[i];
        (offset + width as u64 <= r.end).then(|| (m, (offset - r.start) as usize))
    }

    /// Volatile read of a naturally aligned value.
    pub fn read<W: Width>(&self, offset: u64) -> Result<W> {
        self.check(offset, W::BYTES)?;
        if !self.info.readable {
            return Err(Error::Region {
                index: self.info.index,
                what: "not readable",
            });
        }
        if let Some((m, off)) = self.find(offset, W::BYTES) {
            if let Some(v) = m.read::<W>(off) {
                return Ok(v);
            }
        }
        let mut b = [0u8; 8];
        self.shared
            .backend
            .region_read(self.info.index, offset, &mut b[..W::BYTES])?;
        Ok(W::from_le(&b))
    }

    /// Volatile write of a naturally aligned value.
    pub fn write<W: Width>(&self, offset: u64, value: W) -> Result<()> {
        self.check(offset, W::BYTES)?;
        if !self.info.writable {
            return Err(Error::Region {
                index: self.info.index,
                what: "not writable",
            });
        }
        if let Some((m, off)) = self.find(offset, W::BYTES) {
            if m.write(off, value) {
                return Ok(());
            }
        }
        let mut b = [0u8; 8];
        value.to_le(&mut b);
        self.shared
            .backend
            .region_write(self.info.index, offset, &b[..W::BYTES])
    }

    /// Reads a byte.
    pub fn read8(&self, offset: u64) -> Result<u8> {
        self.read(offset)
    }
    /// Reads a 16-bit value.
    pub fn read16(&self, offset: u64) -> Result<u16> {
        self.read(offset)
    }
    /// Reads a 32-bit value.
    pub fn read32(&self, offset: u64) -> Result<u32> {
        self.read(offset)
    }
    /// Reads a 64-bit value (one access through a mapping; backends without
    /// 8-byte accesses may split it).
    pub fn read64(&self, offset: u64) -> Result<u64> {
        self.read(offset)
    }
    /// Writes a byte.
    pub fn write8(&self, offset: u64, v: u8) -> Result<()> {
        self.write(offset, v)
    }
    /// Writes a 16-bit value.
    pub fn write16(&self, offset: u64, v: u16) -> Result<()> {
        self.write(offset, v)
    }
    /// Writes a 32-bit value.
    pub fn write32(&self, offset: u64, v: u32) -> Result<()> {
        self.write(offset, v)
    }
    /// Writes a 64-bit value.
    pub fn write64(&self, offset: u64, v: u64) -> Result<()> {
        self.write(offset, v)
    }

    /// [`doorbell_fence`], then a 32-bit write: ring a doorbell after
    /// writing descriptors to DMA memory.
    pub fn write_doorbell32(&self, offset: u64, v: u32) -> Result<()> {
        doorbell_fence();
        self.write(offset, v)
    }
}

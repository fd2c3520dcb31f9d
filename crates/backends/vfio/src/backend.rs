//! [`VfioDevice`]: one device opened through the legacy container/group API
//! with the type1v2 IOMMU, implementing the kit's `Backend`.

use crate::claim::{group_blockers, VFIO_PCI};
use crate::error::{Error, Result};
use crate::ioctl;
use crate::Bdf;
use pcibox_kit::{Backend, DmaMemory, IrqInfo, IrqKind, RegionInfo};
use pcibox_sysfs::Sysfs;
use rustix::fs::{Mode, OFlags};
use std::ffi::CString;
use std::mem::{offset_of, size_of};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use vfio_bindings::bindings::vfio as b;

const CONFIG_REGION: u32 = b::VFIO_PCI_CONFIG_REGION_INDEX;

/// One region's info as VFIO reports it.
#[derive(Debug, Clone)]
struct VfioRegion {
    info: RegionInfo,
    /// Offset of the region in the device fd.
    offset: u64,
}

/// An open VFIO device. Field order is drop order: device, group, container.
#[derive(Debug)]
pub struct VfioDevice {
    name: String,
    bdf: Bdf,
    device: OwnedFd,
    /// Held open: closing it detaches the group from the container.
    _group: OwnedFd,
    container: OwnedFd,
    flags: u32,
    regions: Vec<Option<VfioRegion>>,
    config_len: usize,
    iova_ranges: Vec<Range<u64>>,
}

fn irq_index(kind: IrqKind) -> u32 {
    match kind {
        IrqKind::Intx => b::VFIO_PCI_INTX_IRQ_INDEX,
        IrqKind::Msi => b::VFIO_PCI_MSI_IRQ_INDEX,
        IrqKind::Msix => b::VFIO_PCI_MSIX_IRQ_INDEX,
    }
}

// VFIO's info buffers are variable length (a fixed struct, then a chain of
// capabilities at offsets the kernel fills in), so they are read as bytes —
// at the field offsets and element sizes of vfio-bindings' structures,
// never hard-coded ones. Host byte order, as the kernel writes them.

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Walks a VFIO capability chain (`vfio_info_cap_header`s) in `buf`
/// starting at `first`; yields (id, version, offset of the capability).
/// Bounded against loops.
fn caps(buf: &[u8], first: u32) -> Vec<(u16, u16, usize)> {
    type H = b::vfio_info_cap_header;
    let mut out = Vec::new();
    let mut off = first as usize;
    while off != 0 && out.len() < 32 {
        let (Some(id_ver), Some(next)) = (
            u32_at(buf, off + offset_of!(H, id)),
            u32_at(buf, off + offset_of!(H, next)),
        ) else {
            break;
        };
        // `id` and `version` are adjacent u16s: one u32 read, split.
        let [i0, i1, v0, v1] = id_ver.to_ne_bytes();
        out.push((
            u16::from_ne_bytes([i0, i1]),
            u16::from_ne_bytes([v0, v1]),
            off,
        ));
        if next as usize <= off {
            break;
        }
        off = next as usize;
    }
    out
}

/// The `(u64, u64)` pairs of a capability's trailing array (sparse-mmap
/// areas, IOVA ranges): `count` at `count_at`, elements of `stride` bytes
/// from `array_at`, at most `max`; pairs past the buffer's end are dropped.
fn pairs(buf: &[u8], count_at: usize, array_at: usize, stride: usize, max: u32) -> Vec<(u64, u64)> {
    let n = u32_at(buf, count_at).unwrap_or(0).min(max) as usize;
    (0..n)
        .filter_map(|i| {
            let a = array_at + stride * i;
            Some((u64_at(buf, a)?, u64_at(buf, a + 8)?))
        })
        .collect()
}

/// Parses a `vfio_region_info` buffer (with capabilities).
fn parse_region(index: u32, buf: &[u8]) -> Option<VfioRegion> {
    type R = b::vfio_region_info;
    type Sparse = b::vfio_region_info_cap_sparse_mmap;
    type Area = b::vfio_region_sparse_mmap_area;
    let flags = u32_at(buf, offset_of!(R, flags))?;
    let cap_offset = u32_at(buf, offset_of!(R, cap_offset))?;
    let size = u64_at(buf, offset_of!(R, size))?;
    let offset = u64_at(buf, offset_of!(R, offset))?;
    let mut info = RegionInfo {
        index,
        size,
        readable: flags & b::VFIO_REGION_INFO_FLAG_READ != 0,
        writable: flags & b::VFIO_REGION_INFO_FLAG_WRITE != 0,
        mmap_areas: Vec::new(),
        mmap_offset: offset,
        msix_mappable: false,
        io_port: false,
    };
    let mut sparse: Option<Vec<Range<u64>>> = None;
    if flags & b::VFIO_REGION_INFO_FLAG_CAPS != 0 {
        for (id, _ver, at) in caps(buf, cap_offset) {
            match u32::from(id) {
                b::VFIO_REGION_INFO_CAP_SPARSE_MMAP => {
                    let areas = pairs(
                        buf,
                        at + offset_of!(Sparse, nr_areas),
                        at + offset_of!(Sparse, areas),
                        size_of::<Area>(),
                        64,
                    );
                    sparse = Some(
                        areas
                            .into_iter()
                            .filter(|&(o, s)| s > 0 && o.checked_add(s).is_some_and(|e| e <= size))
                            .map(|(o, s)| o..o + s)
                            .collect(),
                    );
                }
                b::VFIO_REGION_INFO_CAP_MSIX_MAPPABLE => info.msix_mappable = true,
                _ => {}
            }
        }
    }
    if flags & b::VFIO_REGION_INFO_FLAG_MMAP != 0 && size > 0 {
        info.mmap_areas = sparse.unwrap_or_else(|| std::iter::once(0..size).collect());
    }
    Some(VfioRegion { info, offset })
}

/// Parses `VFIO_IOMMU_GET_INFO`'s IOVA-range capability.
fn parse_iova_ranges(buf: &[u8]) -> Vec<Range<u64>> {
    type I = b::vfio_iommu_type1_info;
    type Cap = b::vfio_iommu_type1_info_cap_iova_range;
    let flags = u32_at(buf, offset_of!(I, flags)).unwrap_or(0);
    let cap_offset = u32_at(buf, offset_of!(I, cap_offset)).unwrap_or(0);
    let mut out = Vec::new();
    if flags & b::VFIO_IOMMU_INFO_CAPS != 0 {
        for (id, _, at) in caps(buf, cap_offset) {
            if u32::from(id) == b::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE {
                let ranges = pairs(
                    buf,
                    at + offset_of!(Cap, nr_iovas),
                    at + offset_of!(Cap, iova_ranges),
                    size_of::<b::vfio_iova_range>(),
                    256,
                );
                // The kernel's ranges are inclusive.
                out.extend(
                    ranges
                        .into_iter()
                        .filter(|(s, e)| s <= e)
                        .map(|(s, e)| s..e.saturating_add(1)),
                );
            }
        }
    }
    if out.is_empty() {
        // No capability (old kernels): the low 39 bits, minus x86's MSI window.
        out = vec![0..0xfee0_0000, 0xfef0_0000..(1 << 39)];
    }
    out
}

impl VfioDevice {
    /// Opens `bdf`, which must be bound to vfio-pci (`pcibox claim`).
    pub fn open(bdf: Bdf) -> Result<Self> {
        Self::open_with(&Sysfs::default(), bdf)
    }

    /// Opens `bdf`, reading its driver and IOMMU group from `sysfs`.
    pub fn open_with(sysfs: &Sysfs, bdf: Bdf) -> Result<Self> {
        let driver = sysfs.driver(bdf)?;
        if driver.as_deref() != Some(VFIO_PCI) {
            return Err(Error::NotClaimed { bdf, driver });
        }
        let group_no = sysfs.iommu_group(bdf)?.ok_or(Error::NoIommuGroup { bdf })?;
        let vf = |op: &str| {
            let op = op.to_string();
            move |e: std::io::Error| Error::Vfio { bdf, op, source: e }
        };
        let open = |path: &str| {
            rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
                .map_err(std::io::Error::from)
        };
        let container = open("/dev/vfio/vfio").map_err(vf("open /dev/vfio/vfio"))?;
        let version = ioctl::api_version(container.as_fd()).map_err(vf("VFIO_GET_API_VERSION"))?;
        if version != b::VFIO_API_VERSION as i32 {
            return Err(Error::Unsupported {
                bdf,
                what: format!(
                    "VFIO API version {version}, expected {}",
                    b::VFIO_API_VERSION
                ),
            });
        }
        let ext = ioctl::check_extension(container.as_fd(), b::VFIO_TYPE1v2_IOMMU)
            .map_err(vf("VFIO_CHECK_EXTENSION(TYPE1v2)"))?;
        if ext <= 0 {
            return Err(Error::Unsupported {
                bdf,
                what: "the VFIO container has no type1v2 IOMMU".into(),
            });
        }
        let group_path = format!("/dev/vfio/{group_no}");
        let group = open(&group_path).map_err(vf(&format!("open {group_path}")))?;
        let status = ioctl::group_status(group.as_fd()).map_err(vf("VFIO_GROUP_GET_STATUS"))?;
        if status & b::VFIO_GROUP_FLAGS_VIABLE == 0 {
            let mut blockers = group_blockers(sysfs, bdf);
            if blockers.is_empty() {
                blockers.push("a device in the group is bound to a host driver".into());
            }
            return Err(Error::GroupNotViable {
                bdf,
                group: group_no,
                blockers,
            });
        }
        ioctl::group_set_container(group.as_fd(), &container)
            .map_err(vf("VFIO_GROUP_SET_CONTAINER"))?;
        ioctl::set_iommu(container.as_fd(), b::VFIO_TYPE1v2_IOMMU)
            .map_err(vf("VFIO_SET_IOMMU(TYPE1v2)"))?;
        let iommu = ioctl::iommu_info(container.as_fd()).map_err(vf("VFIO_IOMMU_GET_INFO"))?;
        let iova_ranges = parse_iova_ranges(&iommu);
        let name = CString::new(bdf.to_string())
            .map_err(|_| Error::BadBdf(pci::AddressError(bdf.to_string())))?;
        let device = ioctl::group_get_device_fd(group.as_fd(), &name)
            .map_err(vf("VFIO_GROUP_GET_DEVICE_FD"))?;
        let info = ioctl::device_info(device.as_fd()).map_err(vf("VFIO_DEVICE_GET_INFO"))?;
        if info.flags & b::VFIO_DEVICE_FLAGS_PCI == 0 {
            return Err(Error::Unsupported {
                bdf,
                what: "not a VFIO PCI device".into(),
            });
        }
        let mut regions = Vec::new();
        for index in 0..info.num_regions.min(CONFIG_REGION + 1) {
            let buf = ioctl::region_info(device.as_fd(), index)
                .map_err(vf(&format!("VFIO_DEVICE_GET_REGION_INFO({index})")))?;
            regions.push(parse_region(index, &buf));
        }
        let config_len = regions
            .get(CONFIG_REGION as usize)
            .and_then(|r| r.as_ref())
            .map(|r| r.info.size.min(4096) as usize)
            .ok_or_else(|| Error::Unsupported {
                bdf,
                what: "no config region".into(),
            })?;
        // BAR I/O-port-ness comes from config space (VFIO does not say).
        let mut dev = VfioDevice {
            name: format!("vfio:{bdf}"),
            bdf,
            device,
            _group: group,
            container,
            flags: info.flags,
            regions,
            config_len,
            iova_ranges,
        };
        for bar in 0..6u32 {
            let mut w = [0u8; 4];
            if dev.config_read_raw(0x10 + 4 * bar as usize, &mut w).is_ok()
                && u32::from_le_bytes(w) & 1 == 1
            {
                if let Some(Some(r)) = dev.regions.get_mut(bar as usize) {
                    r.info.io_port = true;
                }
            }
        }
        tracing::debug!(
            "{}: opened (group {group_no}, {} regions, {} irq types)",
            dev.name,
            info.num_regions,
            info.num_irqs
        );
        Ok(dev)
    }

    /// The device's address.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    fn err(&self, op: impl Into<String>) -> impl FnOnce(std::io::Error) -> pcibox_kit::Error {
        let (bdf, op) = (self.bdf, op.into());
        move |source| Error::Vfio { bdf, op, source }.into()
    }

    fn region(&self, index: u32) -> pcibox_kit::Result<&VfioRegion> {
        self.regions
            .get(index as usize)
            .and_then(|r| r.as_ref())
            .filter(|r| index != CONFIG_REGION && r.info.size > 0)
            .ok_or(pcibox_kit::Error::Region {
                index,
                what: "no such region",
            })
    }

    fn config_read_raw(&self, offset: usize, buf: &mut [u8]) -> std::io::Result<()> {
        let base = self.regions[CONFIG_REGION as usize]
            .as_ref()
            .map_or(0, |r| r.offset);
        full_pread(self.device.as_fd(), buf, base + offset as u64)
    }

    fn set_irqs(
        &self,
        op: &str,
        flags: u32,
        kind: IrqKind,
        start: u32,
        count: u32,
        fds: &[i32],
    ) -> pcibox_kit::Result<()> {
        ioctl::set_irqs(
            self.device.as_fd(),
            flags,
            irq_index(kind),
            start,
            count,
            fds,
        )
        .map_err(self.err(format!("VFIO_DEVICE_SET_IRQS({kind} {op})")))
    }
}

fn full_pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    let n = rustix::io::pread(fd, &mut *buf, offset)?;
    if n != buf.len() {
        return Err(std::io::Error::other(format!(
            "short read: {n} of {} bytes",
            buf.len()
        )));
    }
    Ok(())
}

fn full_pwrite(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> std::io::Result<()> {
    let n = rustix::io::pwrite(fd, data, offset)?;
    if n != data.len() {
        return Err(std::io::Error::other(format!(
            "short write: {n} of {} bytes",
            data.len()
        )));
    }
    Ok(())
}

impl Backend for VfioDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn config_len(&self) -> usize {
        self.config_len
    }

    fn config_read(&self, offset: usize, buf: &mut [u8]) -> pcibox_kit::Result<()> {
        self.config_read_raw(offset, buf)
            .map_err(self.err(format!("config read {}@{offset:#x}", buf.len())))
    }

    fn config_write(&self, offset: usize, data: &[u8]) -> pcibox_kit::Result<()> {
        let base = self.regions[CONFIG_REGION as usize]
            .as_ref()
            .map_or(0, |r| r.offset);
        full_pwrite(self.device.as_fd(), data, base + offset as u64)
            .map_err(self.err(format!("config write {}@{offset:#x}", data.len())))
    }

    fn region_info(&self, index: u32) -> pcibox_kit::Result<Option<RegionInfo>> {
        Ok(self.region(index).ok().map(|r| r.info.clone()))
    }

    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> pcibox_kit::Result<()> {
        let r = self.region(index)?;
        full_pread(self.device.as_fd(), buf, r.offset + offset)
            .map_err(self.err(format!("region {index} read {}@{offset:#x}", buf.len())))
    }

    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> pcibox_kit::Result<()> {
        let r = self.region(index)?;
        full_pwrite(self.device.as_fd(), data, r.offset + offset)
            .map_err(self.err(format!("region {index} write {}@{offset:#x}", data.len())))
    }

    fn region_mmap_fd(&self, index: u32) -> pcibox_kit::Result<BorrowedFd<'_>> {
        self.region(index)?;
        Ok(self.device.as_fd())
    }

    fn irq_info(&self, kind: IrqKind) -> pcibox_kit::Result<IrqInfo> {
        let i = ioctl::irq_info(self.device.as_fd(), irq_index(kind))
            .map_err(self.err(format!("VFIO_DEVICE_GET_IRQ_INFO({kind})")))?;
        Ok(IrqInfo {
            count: i.count,
            eventfd: i.flags & b::VFIO_IRQ_INFO_EVENTFD != 0,
            maskable: i.flags & b::VFIO_IRQ_INFO_MASKABLE != 0,
            automasked: i.flags & b::VFIO_IRQ_INFO_AUTOMASKED != 0,
            noresize: i.flags & b::VFIO_IRQ_INFO_NORESIZE != 0,
        })
    }

    fn irq_enable(&self, kind: IrqKind, fds: &[BorrowedFd<'_>]) -> pcibox_kit::Result<()> {
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let n = raw.len() as u32;
        self.set_irqs(
            &format!("enable {n}"),
            b::VFIO_IRQ_SET_DATA_EVENTFD | b::VFIO_IRQ_SET_ACTION_TRIGGER,
            kind,
            0,
            n,
            &raw,
        )
    }

    fn irq_disable(&self, kind: IrqKind) -> pcibox_kit::Result<()> {
        self.set_irqs(
            "disable",
            b::VFIO_IRQ_SET_DATA_NONE | b::VFIO_IRQ_SET_ACTION_TRIGGER,
            kind,
            0,
            0,
            &[],
        )
    }

    fn irq_mask(&self, kind: IrqKind, index: u32, _fd: BorrowedFd<'_>) -> pcibox_kit::Result<()> {
        match kind {
            IrqKind::Intx => self.set_irqs(
                "mask",
                b::VFIO_IRQ_SET_DATA_NONE | b::VFIO_IRQ_SET_ACTION_MASK,
                kind,
                0,
                1,
                &[],
            ),
            // vfio-pci has no mask action for MSI/MSI-X: detach the eventfd
            // of this one vector (the kernel frees its IRQ, which masks it).
            _ => self.set_irqs(
                &format!("mask vector {index}"),
                b::VFIO_IRQ_SET_DATA_EVENTFD | b::VFIO_IRQ_SET_ACTION_TRIGGER,
                kind,
                index,
                1,
                &[-1],
            ),
        }
    }

    fn irq_unmask(&self, kind: IrqKind, index: u32, fd: BorrowedFd<'_>) -> pcibox_kit::Result<()> {
        match kind {
            IrqKind::Intx => self.set_irqs(
                "unmask",
                b::VFIO_IRQ_SET_DATA_NONE | b::VFIO_IRQ_SET_ACTION_UNMASK,
                kind,
                0,
                1,
                &[],
            ),
            _ => self.set_irqs(
                &format!("unmask vector {index}"),
                b::VFIO_IRQ_SET_DATA_EVENTFD | b::VFIO_IRQ_SET_ACTION_TRIGGER,
                kind,
                index,
                1,
                &[fd.as_raw_fd()],
            ),
        }
    }

    fn iova_ranges(&self) -> pcibox_kit::Result<Vec<Range<u64>>> {
        Ok(self.iova_ranges.clone())
    }

    #[allow(unsafe_code)] // implements the trait's contract; see `Backend::dma_map`
    unsafe fn dma_map(&self, iova: u64, mem: &DmaMemory<'_>) -> pcibox_kit::Result<()> {
        let mut flags = b::VFIO_DMA_MAP_FLAG_READ;
        if mem.device_writable {
            flags |= b::VFIO_DMA_MAP_FLAG_WRITE;
        }
        ioctl::map_dma(
            self.container.as_fd(),
            flags,
            mem.vaddr as u64,
            iova,
            mem.len,
        )
        .map_err(self.err(format!("VFIO_IOMMU_MAP_DMA({iova:#x}+{:#x})", mem.len)))
    }

    fn dma_unmap(&self, iova: u64, len: u64) -> pcibox_kit::Result<()> {
        let done = ioctl::unmap_dma(self.container.as_fd(), iova, len)
            .map_err(self.err(format!("VFIO_IOMMU_UNMAP_DMA({iova:#x}+{len:#x})")))?;
        if done != len {
            return Err(Error::Vfio {
                bdf: self.bdf,
                op: format!("VFIO_IOMMU_UNMAP_DMA({iova:#x}+{len:#x})"),
                source: std::io::Error::other(format!("unmapped {done:#x} bytes")),
            }
            .into());
        }
        Ok(())
    }

    fn reset(&self) -> pcibox_kit::Result<()> {
        if self.flags & b::VFIO_DEVICE_FLAGS_RESET == 0 {
            return Err(pcibox_kit::Error::Unsupported {
                backend: self.name.clone(),
                what: "device reset (VFIO reports no reset method)",
            });
        }
        ioctl::reset(self.device.as_fd()).map_err(self.err("VFIO_DEVICE_RESET"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn put32(b: &mut Vec<u8>, off: usize, v: u32) {
        if b.len() < off + 4 {
            b.resize(off + 4, 0);
        }
        b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put64(b: &mut Vec<u8>, off: usize, v: u64) {
        if b.len() < off + 8 {
            b.resize(off + 8, 0);
        }
        b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }

    #[test]
    fn region_with_sparse_mmap_and_msix_caps() {
        let mut b = Vec::new();
        put32(&mut b, 0, 96);
        put32(
            &mut b,
            4,
            b::VFIO_REGION_INFO_FLAG_READ
                | b::VFIO_REGION_INFO_FLAG_WRITE
                | b::VFIO_REGION_INFO_FLAG_MMAP
                | b::VFIO_REGION_INFO_FLAG_CAPS,
        );
        put32(&mut b, 12, 32);
        put64(&mut b, 16, 0x4000);
        put64(&mut b, 24, 0x1000_0000);
        // Sparse cap at 32: header (id 1, version 1, next 80), nr 2, areas.
        put32(&mut b, 32, 1 | (1 << 16));
        put32(&mut b, 36, 80);
        put32(&mut b, 40, 2);
        put64(&mut b, 48, 0);
        put64(&mut b, 56, 0x2000);
        put64(&mut b, 64, 0x3000);
        put64(&mut b, 72, 0x1000);
        // MSI-X mappable cap at 80, end of chain.
        put32(&mut b, 80, 3 | (1 << 16));
        put32(&mut b, 84, 0);
        let r = parse_region(0, &b).unwrap();
        assert_eq!(r.offset, 0x1000_0000);
        assert_eq!(r.info.size, 0x4000);
        assert_eq!(r.info.mmap_areas, vec![0..0x2000, 0x3000..0x4000]);
        assert!(r.info.msix_mappable && r.info.readable && r.info.writable);
    }

    #[test]
    fn region_caps_hostile_chain_is_bounded() {
        let mut b = Vec::new();
        put32(
            &mut b,
            4,
            b::VFIO_REGION_INFO_FLAG_MMAP | b::VFIO_REGION_INFO_FLAG_CAPS,
        );
        put32(&mut b, 12, 32);
        put64(&mut b, 16, 0x1000);
        put32(&mut b, 32, 1);
        put32(&mut b, 36, 32); // points to itself
        put32(&mut b, 40, 1_000_000); // absurd area count, truncated buffer
        let r = parse_region(0, &b).unwrap();
        assert!(r.info.mmap_areas.is_empty());
        // Without the sparse cap, a mappable region maps whole.
        let mut plain = Vec::new();
        put32(&mut plain, 4, b::VFIO_REGION_INFO_FLAG_MMAP);
        put64(&mut plain, 16, 0x1000);
        put64(&mut plain, 24, 0);
        assert_eq!(
            parse_region(0, &plain).unwrap().info.mmap_areas,
            vec![0..0x1000]
        );
        assert!(parse_region(0, &plain[..10]).is_none());
    }

    #[test]
    fn iova_ranges_from_cap_or_default() {
        let mut b = Vec::new();
        put32(
            &mut b,
            4,
            b::VFIO_IOMMU_INFO_CAPS | b::VFIO_IOMMU_INFO_PGSIZES,
        );
        put32(&mut b, 16, 24);
        put32(&mut b, 24, 1 | (1 << 16));
        put32(&mut b, 28, 0);
        put32(&mut b, 32, 2);
        put64(&mut b, 40, 0);
        put64(&mut b, 48, 0xfedf_ffff);
        put64(&mut b, 56, 0xfef0_0000);
        put64(&mut b, 64, 0x7f_ffff_ffff);
        assert_eq!(
            parse_iova_ranges(&b),
            vec![0..0xfee0_0000, 0xfef0_0000..0x80_0000_0000]
        );
        assert_eq!(parse_iova_ranges(&[0u8; 8]).len(), 2);
    }
}

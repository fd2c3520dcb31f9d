//! Region commands: REGION_INFO, and REGION_READ/WRITE and WRITE_MULTI
//! checked (inside the region, allowed by its flags) and split into the
//! naturally aligned 1/2/4(/8)-byte accesses the device path accepts.
//! Region 7 is config space; 8 (VGA) is empty.

use super::seam::SessionDevice;
use super::{backend_errno, Response, NUM_REGIONS};
use crate::sock::fd_kind;
use pcibox_kit::RegionInfo;
use std::os::fd::BorrowedFd;
use std::result::Result;
use vfio_user_wire::*;

/// Splits `offset..offset+count` into naturally aligned accesses of at most
/// `max` bytes.
fn chunks(offset: u64, count: usize, max: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= count {
            return None;
        }
        let off = offset + done as u64;
        let mut w = max;
        while w > 1 && (!off.is_multiple_of(w as u64) || w > count - done) {
            w /= 2;
        }
        let item = (off, done, w);
        done += w;
        Some(item)
    })
}

/// Where a region access goes.
enum Target {
    Config,
    Bar(RegionInfo),
}

/// The region's info, or `None` for an absent region.
fn bar_info(dev: &dyn SessionDevice, index: u32) -> Option<RegionInfo> {
    match dev.region_info(index) {
        Ok(Some(i)) if i.size > 0 => Some(i),
        _ => None,
    }
}

/// The file to hand out for a region, under the sharing policy: only a
/// memfd, only when the whole region may be mapped.
fn shared_fd<'a>(
    dev: &'a dyn SessionDevice,
    share_mappings: bool,
    info: &RegionInfo,
) -> Option<BorrowedFd<'a>> {
    if !share_mappings || info.io_port {
        return None;
    }
    #[allow(clippy::single_range_in_vec_init)]
    let whole = [0..info.size];
    if info.mmap_areas.as_slice() != whole.as_slice() {
        return None;
    }
    let fd = dev.region_mmap_fd(info.index).ok()?;
    fd_kind(fd).filter(|k| k.starts_with("/memfd:")).map(|_| fd)
}

pub(super) fn region_info(
    dev: &dyn SessionDevice,
    share_mappings: bool,
    id: u16,
    r: &RegionInfoRepr,
) -> Response {
    let cmd = Command::DeviceGetRegionInfo;
    if r.index >= NUM_REGIONS || (r.argsz as usize) < RegionInfoRepr::LEN {
        return Response::Error(id, cmd, errno::EINVAL);
    }
    let mut reply = RegionInfoRepr {
        argsz: RegionInfoRepr::LEN as u32,
        flags: 0,
        index: r.index,
        size: 0,
        offset: 0,
        sparse: None,
        cap_type: None,
    };
    let mut fds = Vec::new();
    if r.index == PCI_CONFIG_REGION_INDEX {
        reply.size = dev.config_len() as u64;
        reply.flags = REGION_INFO_FLAG_READ | REGION_INFO_FLAG_WRITE;
    } else if r.index <= PCI_ROM_REGION_INDEX {
        if let Some(info) = bar_info(dev, r.index) {
            reply.size = info.size;
            if info.readable {
                reply.flags |= REGION_INFO_FLAG_READ;
            }
            if info.writable {
                reply.flags |= REGION_INFO_FLAG_WRITE;
            }
            if let Some(fd) = shared_fd(dev, share_mappings, &info) {
                match fd.try_clone_to_owned() {
                    Ok(fd) => {
                        reply.flags |= REGION_INFO_FLAG_MMAP;
                        reply.offset = info.mmap_offset;
                        fds.push(fd);
                    }
                    Err(e) => tracing::warn!("region {}: dup: {e}", r.index),
                }
            }
        }
    }
    Response::Reply(Reply::GetRegionInfo(reply).to_message(id), fds)
}

pub(super) enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

/// A checked region access, split into the widths the backend accepts.
pub(super) fn region_access(
    dev: &dyn SessionDevice,
    region: u32,
    offset: u64,
    mut acc: Access<'_>,
) -> Result<(), u32> {
    let count = match &acc {
        Access::Read(b) => b.len(),
        Access::Write(d) => d.len(),
    };
    let target = match region {
        PCI_CONFIG_REGION_INDEX => Target::Config,
        i if i <= PCI_ROM_REGION_INDEX => Target::Bar(bar_info(dev, i).ok_or(errno::EINVAL)?),
        _ => return Err(errno::EINVAL),
    };
    let (size, max, allowed) = match &target {
        Target::Config => (dev.config_len() as u64, 4, true),
        Target::Bar(i) => (
            i.size,
            8,
            match acc {
                Access::Read(_) => i.readable,
                Access::Write(_) => i.writable,
            },
        ),
    };
    if !allowed {
        return Err(errno::EPERM);
    }
    let end = offset.checked_add(count as u64).ok_or(errno::EINVAL)?;
    if end > size {
        return Err(errno::EINVAL);
    }
    for (off, at, w) in chunks(offset, count, max) {
        let res = match (&target, &mut acc) {
            (Target::Config, Access::Read(b)) => dev.config_read(off as usize, &mut b[at..at + w]),
            (Target::Config, Access::Write(d)) => dev.config_write(off as usize, &d[at..at + w]),
            (Target::Bar(i), Access::Read(b)) => dev.region_read(i.index, off, &mut b[at..at + w]),
            (Target::Bar(i), Access::Write(d)) => dev.region_write(i.index, off, &d[at..at + w]),
        };
        res.map_err(|e| backend_errno(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_are_aligned_and_cover() {
        let v: Vec<_> = chunks(3, 13, 8).collect();
        assert_eq!(v, vec![(3, 0, 1), (4, 1, 4), (8, 5, 8)]);
        let v: Vec<_> = chunks(0x10, 4, 4).collect();
        assert_eq!(v, vec![(0x10, 0, 4)]);
        let v: Vec<_> = chunks(6, 2, 4).collect();
        assert_eq!(v, vec![(6, 0, 2)]);
        assert_eq!(chunks(0, 0, 8).count(), 0);
    }
}

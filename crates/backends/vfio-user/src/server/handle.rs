//! One client command → one backend operation → one reply.
//!
//! Every argument is checked here so the backend is only ever called the way
//! the kit's `Backend` contract allows (config widths 1/2/4 inside config
//! space, region widths 1/2/4/8 naturally aligned inside the region, DMA
//! ranges page aligned inside the IOVA ranges). Everything else is an errno.

use super::{backend_errno, Server};
use crate::sock::{fd_kind, Received};
use pcibox_kit::{IrqKind, RegionInfo};
use rustix::event::EventfdFlags;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::result::Result;
use vfio_user_wire::*;

/// The result of one command.
pub(crate) enum Handled {
    /// A reply message and the descriptors that ride with it.
    Reply(Vec<u8>, Vec<OwnedFd>),
    /// An error reply (id, command, errno).
    Error(u16, Command, u32),
    /// An error reply, then close the connection.
    Close(u16, Command, u32),
}

/// Per-client state the server keeps between commands.
#[derive(Debug, Default)]
pub(crate) struct Session {
    negotiated: bool,
    /// The enabled interrupt kind and one slot per vector.
    pub irq_kind: Option<IrqKind>,
    pub irq_fds: Vec<Option<OwnedFd>>,
}

const NUM_REGIONS: u32 = PCI_NUM_REGIONS;
const NUM_IRQS: u32 = PCI_NUM_IRQS;

fn kind_of(index: u32) -> Option<IrqKind> {
    match index {
        PCI_INTX_IRQ_INDEX => Some(IrqKind::Intx),
        PCI_MSI_IRQ_INDEX => Some(IrqKind::Msi),
        PCI_MSIX_IRQ_INDEX => Some(IrqKind::Msix),
        _ => None,
    }
}

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

pub(crate) fn handle(server: &mut Server, s: &mut Session, msg: Received) -> Handled {
    let id = msg.header.msg_id;
    let cmd = msg.header.command;
    let err = |e: u32| Handled::Error(id, cmd, e);
    if !matches!(msg.header.kind, Kind::Command { .. }) {
        // A client sends commands only (we never send it any on this socket).
        return err(errno::EINVAL);
    }
    if msg.fds_truncated {
        return err(errno::EINVAL);
    }
    let req = match Request::parse(cmd, &msg.payload) {
        Ok(r) => r,
        Err(e) => return err(e.errno()),
    };
    // Descriptors are accepted only where the command takes them.
    let max_fds = match &req {
        Request::DmaMap(_) => 1,
        Request::SetIrqs(r) if r.data == IrqData::Eventfd => r.count as usize,
        _ => 0,
    };
    if msg.fds.len() > max_fds {
        return err(errno::EINVAL);
    }
    if !s.negotiated && !matches!(req, Request::Version(_)) {
        return err(errno::EINVAL);
    }
    let ok = |reply: Reply<'_>| Handled::Reply(reply.to_message(id), Vec::new());
    let backend = server.control.backend();
    match req {
        Request::Version(v) => version(server, s, id, &v),
        Request::DeviceGetInfo(_) => ok(Reply::DeviceGetInfo(DeviceInfoRepr {
            argsz: DeviceInfoRepr::LEN as u32,
            flags: DEVICE_FLAG_RESET | DEVICE_FLAG_PCI,
            num_regions: NUM_REGIONS,
            num_irqs: NUM_IRQS,
        })),
        Request::GetRegionInfo(r) => region_info(server, id, &r),
        Request::GetIrqInfo(r) => {
            if r.index >= NUM_IRQS {
                return err(errno::EINVAL);
            }
            let (count, flags) = match kind_of(r.index) {
                None => (0, IRQ_INFO_EVENTFD),
                Some(k) => match backend.irq_info(k) {
                    Ok(i) => {
                        let mut f = 0;
                        if i.eventfd {
                            f |= IRQ_INFO_EVENTFD;
                        }
                        if i.maskable {
                            f |= IRQ_INFO_MASKABLE;
                        }
                        if i.automasked {
                            f |= IRQ_INFO_AUTOMASKED;
                        }
                        if i.noresize {
                            f |= IRQ_INFO_NORESIZE;
                        }
                        (i.count.min(MAX_IRQS), f)
                    }
                    Err(e) => return err(backend_errno(&e)),
                },
            };
            ok(Reply::GetIrqInfo(IrqInfoRepr {
                argsz: IrqInfoRepr::LEN as u32,
                flags,
                index: r.index,
                count,
            }))
        }
        Request::SetIrqs(r) => match set_irqs(server, s, &r, msg.fds) {
            Ok(()) => ok(Reply::SetIrqs),
            Err(e) => err(e),
        },
        Request::RegionRead(r) => {
            let mut data = vec![0u8; r.count as usize];
            match region_access(server, r.region, r.offset, Access::Read(&mut data)) {
                Ok(()) => ok(Reply::RegionRead(RegionAccessRepr { data: &data, ..r })),
                Err(e) => err(e),
            }
        }
        Request::RegionWrite(r) => {
            match region_access(server, r.region, r.offset, Access::Write(r.data)) {
                Ok(()) => ok(Reply::RegionWrite(RegionAccessRepr { data: &[], ..r })),
                Err(e) => err(e),
            }
        }
        Request::WriteMulti(w) => {
            for e in &w.writes {
                if let Err(e) = region_access(server, e.region, e.offset, Access::Write(e.bytes()))
                {
                    return err(e);
                }
            }
            ok(Reply::WriteMulti(w.writes.len() as u64))
        }
        Request::DmaMap(r) => {
            let fd = msg.fds.into_iter().next();
            match server.dma.map(backend, &r, fd) {
                Ok(()) => ok(Reply::DmaMap),
                Err(e) => err(e),
            }
        }
        Request::DmaUnmap(r) => {
            // The wire already refused FLAG_ALL with a range (EINVAL).
            let done = match r.flags {
                0 => server.dma.unmap(backend, r.address, r.size),
                DMA_UNMAP_FLAG_ALL => server.dma.unmap_all(backend),
                _ => Err(errno::EOPNOTSUPP),
            };
            // The reply echoes the request's entry, as the spec says.
            match done {
                Ok(()) => ok(Reply::DmaUnmap(Some(DmaUnmapRepr {
                    argsz: DmaUnmapRepr::LEN as u32,
                    ..r
                }))),
                Err(e) => err(e),
            }
        }
        Request::DeviceReset => match backend.reset() {
            Ok(()) => ok(Reply::DeviceReset),
            Err(e) => err(backend_errno(&e)),
        },
        // Server→client commands have no business arriving here.
        Request::DmaRead(_) | Request::DmaWrite(_) => err(errno::EINVAL),
        Request::GetRegionIoFds(_)
        | Request::DeviceFeature(_)
        | Request::MigDataRead(_)
        | Request::MigDataWrite(_) => err(errno::EOPNOTSUPP),
    }
}

fn version(server: &mut Server, s: &mut Session, id: u16, v: &VersionRepr) -> Handled {
    if s.negotiated {
        return Handled::Error(id, Command::Version, errno::EINVAL);
    }
    if v.major != VERSION_MAJOR {
        return Handled::Close(id, Command::Version, errno::EOPNOTSUPP);
    }
    let theirs = v.caps.clone().unwrap_or_default();
    let mut fds = Vec::new();
    let mut twin_server = None;
    let mut twin = None;
    if theirs.twin_socket_supported() {
        match UnixStream::pair() {
            Ok((ours, client_end)) => {
                let t = Some(server.opts.io_timeout);
                if ours.set_read_timeout(t).is_ok() && ours.set_write_timeout(t).is_ok() {
                    fds.push(OwnedFd::from(client_end));
                    twin_server = Some(ours);
                    twin = Some(TwinSocket {
                        supported: true,
                        fd_index: Some(0),
                    });
                }
            }
            Err(e) => tracing::warn!("twin socket: {e}"),
        }
    }
    let caps = Capabilities {
        max_msg_fds: Some(MAX_MSG_FDS),
        max_data_xfer_size: Some(MAX_DATA_XFER_SIZE),
        max_dma_maps: Some(super::window::MAX_DMA_WINDOWS),
        pgsizes: Some(super::window::DMA_PAGE),
        twin_socket: twin,
        write_multiple: theirs.write_multiple.filter(|&w| w),
        migration: None,
        unknown: Vec::new(),
    };
    server
        .dma
        .start_session(twin_server, theirs.max_data_xfer_size());
    s.negotiated = true;
    let reply = Reply::Version(VersionRepr {
        major: VERSION_MAJOR,
        minor: v.minor.min(VERSION_MINOR),
        caps: Some(caps),
    });
    Handled::Reply(reply.to_message(id), fds)
}

/// The region's info, or `None` for an absent region.
fn bar_info(server: &Server, index: u32) -> Option<RegionInfo> {
    match server.control.backend().region_info(index) {
        Ok(Some(i)) if i.size > 0 => Some(i),
        _ => None,
    }
}

/// The file to hand out for a region, under the sharing policy: only a
/// memfd, only when the whole region may be mapped.
fn shared_fd<'a>(server: &'a Server, info: &RegionInfo) -> Option<BorrowedFd<'a>> {
    if !server.opts.share_mappings || info.io_port {
        return None;
    }
    #[allow(clippy::single_range_in_vec_init)]
    let whole = [0..info.size];
    if info.mmap_areas.as_slice() != whole.as_slice() {
        return None;
    }
    let fd = server.control.backend().region_mmap_fd(info.index).ok()?;
    fd_kind(fd).filter(|k| k.starts_with("/memfd:")).map(|_| fd)
}

fn region_info(server: &Server, id: u16, r: &RegionInfoRepr) -> Handled {
    let cmd = Command::DeviceGetRegionInfo;
    if r.index >= NUM_REGIONS || (r.argsz as usize) < RegionInfoRepr::LEN {
        return Handled::Error(id, cmd, errno::EINVAL);
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
        reply.size = server.control.backend().config_len() as u64;
        reply.flags = REGION_INFO_FLAG_READ | REGION_INFO_FLAG_WRITE;
    } else if r.index <= PCI_ROM_REGION_INDEX {
        if let Some(info) = bar_info(server, r.index) {
            reply.size = info.size;
            if info.readable {
                reply.flags |= REGION_INFO_FLAG_READ;
            }
            if info.writable {
                reply.flags |= REGION_INFO_FLAG_WRITE;
            }
            if let Some(fd) = shared_fd(server, &info) {
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
    Handled::Reply(Reply::GetRegionInfo(reply).to_message(id), fds)
}

enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

/// A checked region access, split into the widths the backend accepts.
fn region_access(
    server: &Server,
    region: u32,
    offset: u64,
    mut acc: Access<'_>,
) -> Result<(), u32> {
    let backend = server.control.backend();
    let count = match &acc {
        Access::Read(b) => b.len(),
        Access::Write(d) => d.len(),
    };
    let target = match region {
        PCI_CONFIG_REGION_INDEX => Target::Config,
        i if i <= PCI_ROM_REGION_INDEX => Target::Bar(bar_info(server, i).ok_or(errno::EINVAL)?),
        _ => return Err(errno::EINVAL),
    };
    let (size, max, allowed) = match &target {
        Target::Config => (backend.config_len() as u64, 4, true),
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
            (Target::Config, Access::Read(b)) => {
                backend.config_read(off as usize, &mut b[at..at + w])
            }
            (Target::Config, Access::Write(d)) => {
                backend.config_write(off as usize, &d[at..at + w])
            }
            (Target::Bar(i), Access::Read(b)) => {
                backend.region_read(i.index, off, &mut b[at..at + w])
            }
            (Target::Bar(i), Access::Write(d)) => {
                backend.region_write(i.index, off, &d[at..at + w])
            }
        };
        res.map_err(|e| backend_errno(&e))?;
    }
    Ok(())
}

fn is_eventfd(fd: BorrowedFd<'_>) -> bool {
    // Without /proc we cannot tell; the backend's own checks remain.
    fd_kind(fd).is_none_or(|k| k == "anon_inode:[eventfd]")
}

fn set_irqs(
    server: &Server,
    s: &mut Session,
    r: &IrqSetRepr<'_>,
    fds: Vec<OwnedFd>,
) -> Result<(), u32> {
    let backend = server.control.backend();
    let Some(kind) = kind_of(r.index) else {
        // ERR/REQ (and beyond) have no vectors: only "disable all" is fine.
        return if r.index < NUM_IRQS && r.count == 0 {
            Ok(())
        } else {
            Err(errno::EINVAL)
        };
    };
    let info = backend.irq_info(kind).map_err(|e| backend_errno(&e))?;
    let (start, count) = (r.start as usize, r.count as usize);
    if start + count > info.count as usize {
        return Err(errno::EINVAL);
    }
    if let Some(other) = s.irq_kind.filter(|&k| k != kind) {
        // One kind at a time; a "disable all" of another kind is a no-op.
        return if r.count == 0 {
            Ok(())
        } else {
            tracing::debug!("SET_IRQS {kind} while {other} enabled");
            Err(errno::EBUSY)
        };
    }
    let selected = |i: usize| match r.data {
        IrqData::Bool(b) => b.get(i - start).is_some_and(|&v| v != 0),
        _ => true,
    };
    match (r.action, r.data) {
        (IrqAction::Trigger, IrqData::Eventfd) => {
            if !fds.is_empty() && fds.len() != count {
                return Err(errno::EINVAL);
            }
            if fds.iter().any(|f| !is_eventfd(f.as_fd())) {
                return Err(errno::EINVAL);
            }
            let mut table = std::mem::take(&mut s.irq_fds);
            let range = if count == 0 && fds.is_empty() {
                0..table.len()
            } else {
                start..start + count
            };
            if table.len() < range.end {
                table.resize_with(range.end, || None);
            }
            let mut fds = fds.into_iter();
            for slot in &mut table[range] {
                *slot = fds.next();
            }
            apply(server, s, kind, table)
        }
        (IrqAction::Trigger, IrqData::None) if count == 0 => apply(server, s, kind, Vec::new()),
        (IrqAction::Trigger, _) => {
            // The client raises the interrupt itself.
            for i in (start..start + count).filter(|&i| selected(i)) {
                let fd = s
                    .irq_fds
                    .get(i)
                    .and_then(|f| f.as_ref())
                    .ok_or(errno::EINVAL)?;
                rustix::io::write(fd, &1u64.to_ne_bytes()).map_err(|_| errno::EIO)?;
            }
            Ok(())
        }
        (IrqAction::Mask | IrqAction::Unmask, IrqData::None | IrqData::Bool(_)) => {
            for i in (start..start + count).filter(|&i| selected(i)) {
                let fd = s
                    .irq_fds
                    .get(i)
                    .and_then(|f| f.as_ref())
                    .ok_or(errno::EINVAL)?;
                let res = if r.action == IrqAction::Mask {
                    backend.irq_mask(kind, i as u32, fd.as_fd())
                } else {
                    backend.irq_unmask(kind, i as u32, fd.as_fd())
                };
                res.map_err(|e| backend_errno(&e))?;
            }
            Ok(())
        }
        (IrqAction::Mask | IrqAction::Unmask, IrqData::Eventfd) => Err(errno::EOPNOTSUPP),
    }
}

/// Makes the backend signal exactly the eventfds in `table` (vectors
/// `0..table.len()`, gaps filled with private eventfds), or disables `kind`
/// when the table is empty.
fn apply(
    server: &Server,
    s: &mut Session,
    kind: IrqKind,
    mut table: Vec<Option<OwnedFd>>,
) -> Result<(), u32> {
    let backend = server.control.backend();
    while table.last().is_some_and(|f| f.is_none()) {
        table.pop();
    }
    if s.irq_kind.take().is_some() {
        backend.irq_disable(kind).map_err(|e| backend_errno(&e))?;
    }
    s.irq_fds = Vec::new();
    if table.is_empty() {
        return Ok(());
    }
    for slot in &mut table {
        if slot.is_none() {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|_| errno::ENOMEM)?;
            *slot = Some(fd);
        }
    }
    let fds: Vec<BorrowedFd<'_>> = table.iter().flatten().map(|f| f.as_fd()).collect();
    backend
        .irq_enable(kind, &fds)
        .map_err(|e| backend_errno(&e))?;
    drop(fds);
    s.irq_kind = Some(kind);
    s.irq_fds = table;
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

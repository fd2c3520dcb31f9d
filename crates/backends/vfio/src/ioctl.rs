//! The VFIO ioctls, as thin safe wrappers. The only `unsafe` code of the
//! backend: every call passes a pointer to a buffer or struct that lives
//! across the call and is at least as large as the `argsz` it declares.
#![allow(unsafe_code)]

use rustix::ioctl::{opcode, Ioctl, IoctlOutput, Opcode};
use std::ffi::{c_void, CStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use vfio_bindings::bindings::vfio as b;

/// `_IO(VFIO_TYPE, VFIO_BASE + n)`.
const fn op(n: u32) -> Opcode {
    opcode::none(b::VFIO_TYPE, (b::VFIO_BASE + n) as u8)
}

const GET_API_VERSION: Opcode = op(0);
const CHECK_EXTENSION: Opcode = op(1);
const SET_IOMMU: Opcode = op(2);
const GROUP_GET_STATUS: Opcode = op(3);
const GROUP_SET_CONTAINER: Opcode = op(4);
const GROUP_GET_DEVICE_FD: Opcode = op(6);
const DEVICE_GET_INFO: Opcode = op(7);
const DEVICE_GET_REGION_INFO: Opcode = op(8);
const DEVICE_GET_IRQ_INFO: Opcode = op(9);
const DEVICE_SET_IRQS: Opcode = op(10);
const DEVICE_RESET: Opcode = op(11);
const IOMMU_GET_INFO: Opcode = op(12);
const IOMMU_MAP_DMA: Opcode = op(13);
const IOMMU_UNMAP_DMA: Opcode = op(14);

/// One ioctl with a pointer or integer argument, returning the call's value.
struct Raw {
    opcode: Opcode,
    arg: *mut c_void,
}

// SAFETY: `opcode` identifies the call; callers below pass `arg` valid for
// what that VFIO ioctl reads and writes (see each wrapper); the output is the
// plain return value, not read through the pointer.
unsafe impl Ioctl for Raw {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;
    fn opcode(&self) -> Opcode {
        self.opcode
    }
    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Every caller in this module passes, for its opcode, either an integer
/// the kernel does not dereference or a pointer to a live buffer at least as
/// large as the `argsz` it declares (the comment at each call says which).
fn call(fd: BorrowedFd<'_>, opcode: Opcode, arg: *mut c_void) -> io::Result<i32> {
    // SAFETY: see `Raw` and the contract above; `call` is private to this
    // module and every call site upholds it.
    unsafe { rustix::ioctl::ioctl(fd, Raw { opcode, arg }) }.map_err(io::Error::from)
}

/// `VFIO_GET_API_VERSION` on the container.
pub(crate) fn api_version(container: BorrowedFd<'_>) -> io::Result<i32> {
    // No argument.
    call(container, GET_API_VERSION, std::ptr::null_mut())
}

/// `VFIO_CHECK_EXTENSION` on the container: > 0 if supported.
pub(crate) fn check_extension(container: BorrowedFd<'_>, ext: u32) -> io::Result<i32> {
    // The argument is an integer; the kernel never dereferences it.
    call(container, CHECK_EXTENSION, ext as usize as *mut c_void)
}

/// `VFIO_SET_IOMMU` on the container.
pub(crate) fn set_iommu(container: BorrowedFd<'_>, kind: u32) -> io::Result<()> {
    // The argument is an integer.
    call(container, SET_IOMMU, kind as usize as *mut c_void).map(|_| ())
}

/// `VFIO_DEVICE_RESET`.
pub(crate) fn reset(device: BorrowedFd<'_>) -> io::Result<()> {
    // No argument.
    call(device, DEVICE_RESET, std::ptr::null_mut()).map(|_| ())
}

/// `VFIO_GROUP_GET_STATUS`: the group's flags.
pub(crate) fn group_status(group: BorrowedFd<'_>) -> io::Result<u32> {
    let mut st = b::vfio_group_status {
        argsz: std::mem::size_of::<b::vfio_group_status>() as u32,
        flags: 0,
    };
    // A live, correctly sized struct; the kernel writes at most argsz bytes.
    call(
        group,
        GROUP_GET_STATUS,
        (&mut st as *mut b::vfio_group_status).cast(),
    )?;
    Ok(st.flags)
}

/// `VFIO_DEVICE_GET_INFO` (without capabilities).
pub(crate) fn device_info(device: BorrowedFd<'_>) -> io::Result<b::vfio_device_info> {
    let mut info = b::vfio_device_info {
        argsz: std::mem::size_of::<b::vfio_device_info>() as u32,
        ..Default::default()
    };
    // A live, correctly sized struct.
    call(
        device,
        DEVICE_GET_INFO,
        (&mut info as *mut b::vfio_device_info).cast(),
    )?;
    Ok(info)
}

/// `VFIO_DEVICE_GET_IRQ_INFO` for IRQ index `index`.
pub(crate) fn irq_info(device: BorrowedFd<'_>, index: u32) -> io::Result<b::vfio_irq_info> {
    let mut info = b::vfio_irq_info {
        argsz: std::mem::size_of::<b::vfio_irq_info>() as u32,
        index,
        ..Default::default()
    };
    // A live, correctly sized struct.
    call(
        device,
        DEVICE_GET_IRQ_INFO,
        (&mut info as *mut b::vfio_irq_info).cast(),
    )?;
    Ok(info)
}

/// `VFIO_IOMMU_MAP_DMA`.
pub(crate) fn map_dma(
    container: BorrowedFd<'_>,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
) -> io::Result<()> {
    let mut m = b::vfio_iommu_type1_dma_map {
        argsz: std::mem::size_of::<b::vfio_iommu_type1_dma_map>() as u32,
        flags,
        vaddr,
        iova,
        size,
    };
    // A live, correctly sized struct. (The kernel pins the pages at `vaddr`;
    // that the process keeps them is the kit's contract, not this call's.)
    call(
        container,
        IOMMU_MAP_DMA,
        (&mut m as *mut b::vfio_iommu_type1_dma_map).cast(),
    )
    .map(|_| ())
}

/// `VFIO_IOMMU_UNMAP_DMA`; returns the number of bytes unmapped.
pub(crate) fn unmap_dma(container: BorrowedFd<'_>, iova: u64, size: u64) -> io::Result<u64> {
    let mut u = b::vfio_iommu_type1_dma_unmap {
        argsz: std::mem::size_of::<b::vfio_iommu_type1_dma_unmap>() as u32,
        flags: 0,
        iova,
        size,
        ..Default::default()
    };
    // A live, correctly sized struct (no bitmap: flags 0).
    call(
        container,
        IOMMU_UNMAP_DMA,
        (&mut u as *mut b::vfio_iommu_type1_dma_unmap).cast(),
    )?;
    Ok(u.size)
}

/// An "info" ioctl with trailing capabilities (`REGION_INFO`,
/// `IOMMU_GET_INFO`): `head` is the fixed part with `argsz` = its length;
/// the call is repeated with a larger buffer if the kernel asks for one.
/// Returns the whole buffer (fixed part + capability chain).
fn info_with_caps(fd: BorrowedFd<'_>, opcode: Opcode, head: &[u8]) -> io::Result<Vec<u8>> {
    // `argsz` leads every VFIO argument structure.
    const ARGSZ: std::ops::Range<usize> = 0..4;
    const _: () = assert!(std::mem::offset_of!(b::vfio_region_info, argsz) == ARGSZ.start);
    const _: () = assert!(std::mem::offset_of!(b::vfio_iommu_type1_info, argsz) == ARGSZ.start);
    let mut buf = head.to_vec();
    for _ in 0..4 {
        let len = buf.len() as u32;
        buf[ARGSZ].copy_from_slice(&len.to_ne_bytes());
        // `buf` is live and `argsz` = its length; the kernel accesses at
        // most argsz bytes.
        call(fd, opcode, buf.as_mut_ptr().cast())?;
        let want = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if want <= buf.len() {
            return Ok(buf);
        }
        if want > 1 << 20 {
            return Err(io::Error::other(format!(
                "kernel asks for an absurd argsz {want}"
            )));
        }
        let mut bigger = head.to_vec();
        bigger.resize(want, 0);
        buf = bigger;
    }
    Err(io::Error::other("argsz keeps growing"))
}

/// `VFIO_DEVICE_GET_REGION_INFO` with capabilities.
pub(crate) fn region_info(device: BorrowedFd<'_>, index: u32) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; std::mem::size_of::<b::vfio_region_info>()];
    let at = std::mem::offset_of!(b::vfio_region_info, index);
    head[at..at + 4].copy_from_slice(&index.to_ne_bytes());
    info_with_caps(device, DEVICE_GET_REGION_INFO, &head)
}

/// `VFIO_IOMMU_GET_INFO` with capabilities.
pub(crate) fn iommu_info(container: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let head = vec![0u8; std::mem::size_of::<b::vfio_iommu_type1_info>()];
    info_with_caps(container, IOMMU_GET_INFO, &head)
}

/// `VFIO_DEVICE_SET_IRQS` with `data` (none, or one i32 eventfd per vector).
pub(crate) fn set_irqs(
    device: BorrowedFd<'_>,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
    fds: &[i32],
) -> io::Result<()> {
    use std::mem::offset_of;
    type S = b::vfio_irq_set;
    let head = offset_of!(S, data);
    let mut buf = vec![0u8; head + 4 * fds.len()];
    let argsz = buf.len() as u32;
    for (at, v) in [
        (offset_of!(S, argsz), argsz),
        (offset_of!(S, flags), flags),
        (offset_of!(S, index), index),
        (offset_of!(S, start), start),
        (offset_of!(S, count), count),
    ] {
        buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    for (i, fd) in fds.iter().enumerate() {
        buf[head + 4 * i..head + 4 * i + 4].copy_from_slice(&fd.to_ne_bytes());
    }
    // `buf` is live and `argsz` = its length; the kernel reads the header
    // and `count` eventfds (as many as `fds` holds when DATA_EVENTFD).
    call(device, DEVICE_SET_IRQS, buf.as_mut_ptr().cast()).map(|_| ())
}

/// `VFIO_GROUP_GET_DEVICE_FD`: the name is a NUL-terminated string.
pub(crate) fn group_get_device_fd(group: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    // The kernel reads the string up to its NUL.
    let fd = call(group, GROUP_GET_DEVICE_FD, name.as_ptr() as *mut c_void)?;
    // SAFETY: on success the ioctl returns a new file descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `VFIO_GROUP_SET_CONTAINER`: the argument points to the container's fd.
pub(crate) fn group_set_container(group: BorrowedFd<'_>, container: impl AsFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut raw: i32 = container.as_fd().as_raw_fd();
    // A live i32 the kernel reads.
    call(group, GROUP_SET_CONTAINER, (&mut raw as *mut i32).cast()).map(|_| ())
}

//! [`RegionMemory`]: plain memory behind a model's BAR, in a memfd, so the
//! driver can map it (the kit maps [`crate::ModelRegion::mappable`] areas
//! from the same file) while the model reads and writes it with `pread` /
//! `pwrite` — the same bytes, with no shared Rust reference to race on.

use crate::error::{Error, Result};
use rustix::fs::MemfdFlags;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// Zero-filled memory of a fixed size, shared by the model and any driver
/// mapping of it. Clones share the memory.
#[derive(Debug, Clone)]
pub struct RegionMemory {
    fd: Arc<OwnedFd>,
    size: u64,
}

impl RegionMemory {
    /// `size` bytes of zeroes in a fresh memfd called `name`.
    pub fn new(name: &str, size: u64) -> Result<Self> {
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC)
            .map_err(|e| Error::os("memfd_create", e))?;
        rustix::fs::ftruncate(&fd, size).map_err(|e| Error::os("ftruncate", e))?;
        Ok(RegionMemory {
            fd: Arc::new(fd),
            size,
        })
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The memfd, for mapping.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Error::Memory {
                offset,
                len,
                size: self.size,
            }),
        }
    }

    /// Copies `buf.len()` bytes at `offset` out.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        read_at(self.fd(), offset, buf).map_err(|e| Error::os("pread", e))
    }

    /// Copies `data` in at `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check(offset, data.len())?;
        write_at(self.fd(), offset, data).map_err(|e| Error::os("pwrite", e))
    }
}

/// `pread` until `buf` is full; `UnexpectedEof` if the file ends first.
pub(crate) fn read_at(fd: BorrowedFd<'_>, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `pwrite` until all of `data` is written.
pub(crate) fn write_at(fd: BorrowedFd<'_>, offset: u64, data: &[u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        match rustix::io::pwrite(fd, &data[done..], offset + done as u64) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

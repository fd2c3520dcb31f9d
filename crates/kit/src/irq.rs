//! Interrupts: each vector is an eventfd the device signals through the
//! backend. A driver blocks on it with a timeout ([`Vector::wait`]), polls
//! it ([`Vector::poll`]), or hands [`Vector::fd`] to its event loop and calls
//! `poll` when it is readable. Every consumed signal is counted.
//!
//! INTx is level triggered: the host masks it when it fires, the driver
//! clears the cause in the device and then calls [`Vector::unmask`] — the
//! end-of-interrupt — to re-arm it. MSI and MSI-X need no EOI.
//! [`Vector::mask`] stops a vector from waking the driver until unmasked.

use crate::backend::{IrqInfo, IrqKind};
use crate::device::{Device, Shared};
use crate::error::{Error, Result};
use rustix::event::{EventfdFlags, PollFd, PollFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The enabled vectors of one interrupt kind. Dropping it disables them.
#[derive(Debug)]
pub struct Interrupts {
    shared: Arc<Shared>,
    kind: IrqKind,
    generation: u64,
    vectors: Vec<Vector>,
}

/// One interrupt vector.
#[derive(Debug)]
pub struct Vector {
    shared: Arc<Shared>,
    kind: IrqKind,
    index: u32,
    generation: u64,
    fd: OwnedFd,
    count: AtomicU64,
    masked: AtomicBool,
}

impl Device {
    /// Describes interrupt kind `kind` as the device offers it.
    pub fn irq_info(&self, kind: IrqKind) -> Result<IrqInfo> {
        self.shared.backend.irq_info(kind)
    }

    /// Enables `count` vectors of `kind` (INTx: exactly 1), each with a
    /// fresh eventfd. Only one kind can be enabled at a time: drop the
    /// previous [`Interrupts`] first.
    pub fn enable_interrupts(&self, kind: IrqKind, count: u32) -> Result<Interrupts> {
        let info = self.irq_info(kind)?;
        check_count(kind, &info, count)?;
        let mut fds = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| Error::os("eventfd", e))?;
            fds.push(fd);
        }
        self.enable_checked(kind, fds)
    }

    /// Enables one vector of `kind` per eventfd in `fds`, vector `i`
    /// signalling `fds[i]` — for a caller whose eventfds come from elsewhere
    /// (the vfio-user server passes on a client's). Otherwise as
    /// [`Device::enable_interrupts`]; the vectors own the descriptors.
    /// [`Vector::poll`] and [`Vector::wait`] expect non-blocking eventfds;
    /// the kit leaves the caller's flags alone (another process may share
    /// the file).
    pub fn enable_interrupts_with(&self, kind: IrqKind, fds: Vec<OwnedFd>) -> Result<Interrupts> {
        let info = self.irq_info(kind)?;
        check_count(kind, &info, u32::try_from(fds.len()).unwrap_or(u32::MAX))?;
        self.enable_checked(kind, fds)
    }

    /// Enables `fds.len()` vectors, a count already checked against the
    /// device's.
    fn enable_checked(&self, kind: IrqKind, fds: Vec<OwnedFd>) -> Result<Interrupts> {
        let bad = |what: String| Error::Irq { kind, what };
        let mut st = self.shared.lock();
        if let Some((other, _)) = st.irq {
            return Err(bad(format!("{other} interrupts are already enabled")));
        }
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        self.shared.backend.irq_enable(kind, &borrowed)?;
        st.irq_generation += 1;
        let generation = st.irq_generation;
        st.irq = Some((kind, generation));
        drop(st);
        let vectors = fds
            .into_iter()
            .enumerate()
            .map(|(i, fd)| Vector {
                shared: self.shared.clone(),
                kind,
                index: i as u32,
                generation,
                fd,
                count: AtomicU64::new(0),
                masked: AtomicBool::new(false),
            })
            .collect();
        Ok(Interrupts {
            shared: self.shared.clone(),
            kind,
            generation,
            vectors,
        })
    }
}

/// Refuses a vector count the device does not offer, or interrupts it
/// cannot signal through eventfds.
fn check_count(kind: IrqKind, info: &IrqInfo, count: u32) -> Result<()> {
    let bad = |what: String| Error::Irq { kind, what };
    if count == 0 || count > info.count || (kind == IrqKind::Intx && count != 1) {
        return Err(bad(format!(
            "{count} vectors requested, device offers {}",
            info.count
        )));
    }
    if !info.eventfd {
        return Err(bad("backend cannot signal eventfds".into()));
    }
    Ok(())
}

impl Interrupts {
    /// The interrupt kind.
    pub fn kind(&self) -> IrqKind {
        self.kind
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// True if there are no vectors (never, for an enabled set).
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Vector `index`.
    pub fn vector(&self, index: usize) -> Option<&Vector> {
        self.vectors.get(index)
    }

    /// All vectors.
    pub fn vectors(&self) -> &[Vector] {
        &self.vectors
    }

    /// Waits until any vector has fired or `timeout` passes (`None`: no
    /// limit). Returns the index of the first vector that fired, having
    /// consumed its signals (see [`Vector::poll`]); `None` on timeout.
    pub fn wait_any(&self, timeout: Option<Duration>) -> Result<Option<usize>> {
        let all: Vec<usize> = (0..self.vectors.len()).collect();
        self.wait_some(&all, timeout)
    }

    /// Like [`Interrupts::wait_any`], but only vectors `which` (indices;
    /// others and out-of-range ones are left alone, their signals not
    /// consumed): for a thread that owns some vectors while other threads
    /// wait on the rest.
    pub fn wait_some(&self, which: &[usize], timeout: Option<Duration>) -> Result<Option<usize>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let chosen: Vec<(usize, &Vector)> = which
            .iter()
            .filter_map(|&i| self.vectors.get(i).map(|v| (i, v)))
            .collect();
        loop {
            for &(i, v) in &chosen {
                if v.poll()? > 0 {
                    return Ok(Some(i));
                }
            }
            let mut pfds: Vec<PollFd<'_>> = chosen
                .iter()
                .map(|(_, v)| PollFd::new(&v.fd, PollFlags::IN))
                .collect();
            if !poll_until(&mut pfds, deadline)? {
                return Ok(None);
            }
        }
    }
}

impl Interrupts {
    /// Disables the vectors (as dropping does) and gives their eventfds
    /// back, in vector order — to enable them again, in a different set.
    pub fn disable(mut self) -> Vec<OwnedFd> {
        let vectors = std::mem::take(&mut self.vectors);
        drop(self);
        vectors.into_iter().map(|v| v.fd).collect()
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.shared.irq_off(self.kind, self.generation);
    }
}

/// Polls `pfds` until one is ready (true) or `deadline` passes (false).
fn poll_until(pfds: &mut [PollFd<'_>], deadline: Option<Instant>) -> Result<bool> {
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                Some(rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
        };
        match rustix::event::poll(pfds, timeout.as_ref()) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::os("poll", e)),
        }
    }
}

impl Vector {
    /// The interrupt kind.
    pub fn kind(&self) -> IrqKind {
        self.kind
    }

    /// The vector's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The eventfd (non-blocking), for an event loop. When it is readable,
    /// call [`Vector::poll`] to consume and count the signal.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Total signals consumed so far through `poll`/`wait`.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// True if masked through [`Vector::mask`].
    pub fn is_masked(&self) -> bool {
        self.masked.load(Ordering::Relaxed)
    }

    /// Consumes pending signals without blocking; returns how many arrived
    /// since the last consume (0: none).
    pub fn poll(&self) -> Result<u64> {
        let mut b = [0u8; 8];
        match rustix::io::read(&self.fd, &mut b) {
            Ok(8) => {
                let n = u64::from_ne_bytes(b);
                self.count.fetch_add(n, Ordering::Relaxed);
                Ok(n)
            }
            Ok(_) => Err(Error::os(
                "eventfd read",
                std::io::Error::other("short read"),
            )),
            Err(rustix::io::Errno::AGAIN) => Ok(0),
            Err(e) => Err(Error::os("eventfd read", e)),
        }
    }

    /// Blocks until the vector fires or `timeout` passes (`None`: no limit);
    /// returns the number of signals consumed (0 on timeout).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<u64> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // Wait first, then consume: two system calls whether or not the
        // signal is already there (a read first would make it three in the
        // usual case, where the interrupt has not come yet).
        loop {
            let mut pfd = [PollFd::new(&self.fd, PollFlags::IN)];
            if !poll_until(&mut pfd, deadline)? {
                return Ok(0);
            }
            let n = self.poll()?;
            if n > 0 {
                return Ok(n);
            }
        }
    }

    /// Masks the vector: it does not signal until [`Vector::unmask`].
    pub fn mask(&self) -> Result<()> {
        let _live = self.shared.lock_irq(self.kind, self.generation)?;
        self.shared
            .backend
            .irq_mask(self.kind, self.index, self.fd.as_fd())?;
        self.masked.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Unmasks the vector. For INTx this is the end-of-interrupt: call it
    /// after clearing the interrupt's cause in the device, or the line stays
    /// masked and the vector never fires again.
    pub fn unmask(&self) -> Result<()> {
        let _live = self.shared.lock_irq(self.kind, self.generation)?;
        self.shared
            .backend
            .irq_unmask(self.kind, self.index, self.fd.as_fd())?;
        self.masked.store(false, Ordering::Relaxed);
        Ok(())
    }
}

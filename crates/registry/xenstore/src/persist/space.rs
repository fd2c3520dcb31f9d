//! Room in the log: the segment being appended to has disk space allocated
//! ahead of its end (`fallocate` with `FALLOC_FL_KEEP_SIZE`, a chunk at a
//! time), and the store is promised bytes out of it before it changes
//! anything ([`crate::Space`]). When no more can be allocated — a full disk
//! — promises are refused (the request fails with `ENOSPC`, nothing
//! changes), while what was promised can always be written. Allocation is
//! tried again at most every [`RETRY`], so the registry accepts changes
//! again by itself once space returns.

use crate::store::Space;
use rustix::fs::{fallocate, FallocateFlags};
use std::fs::File;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long after a failed allocation the next is tried.
pub const RETRY: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Inner {
    /// A handle on the segment appended to.
    file: File,
    /// Bytes written, plus bytes promised and not yet written.
    end: u64,
    /// Bytes of the file allocated.
    allocated: u64,
    /// Bytes allocated at a time.
    chunk: u64,
    /// The filesystem cannot allocate ahead: nothing is refused (a write
    /// that then fails stops the daemon, unacknowledged).
    unsupported: bool,
    /// No allocation before this.
    retry_at: Option<Instant>,
    /// The last allocation failed (for logging changes of state once).
    full: bool,
    what: String,
}

impl Inner {
    /// Allocates up to at least `want` bytes; `false` if the disk is full.
    fn grow(&mut self, want: u64) -> bool {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        // A chunk ahead if possible, else just what is wanted.
        for target in [want + self.chunk, want] {
            if target <= self.allocated {
                continue;
            }
            let len = target - self.allocated;
            match fallocate(&self.file, FallocateFlags::KEEP_SIZE, self.allocated, len) {
                Ok(()) => {
                    self.allocated = target;
                    self.retry_at = None;
                    if self.full {
                        self.full = false;
                        tracing::warn!("{}: space is back: accepting changes", self.what);
                    }
                    return true;
                }
                Err(rustix::io::Errno::NOSPC | rustix::io::Errno::DQUOT) => continue,
                Err(rustix::io::Errno::OPNOTSUPP) => {
                    tracing::warn!(
                        "{}: the filesystem cannot allocate ahead: a full disk will stop the \
                         daemon instead of refusing changes",
                        self.what
                    );
                    self.unsupported = true;
                    return true;
                }
                Err(e) => {
                    tracing::warn!("{}: allocating log space: {e}", self.what);
                    break;
                }
            }
        }
        if !self.full {
            self.full = true;
            tracing::warn!(
                "{}: no space for the log: refusing changes (ENOSPC) until there is; reads go on",
                self.what
            );
        }
        self.retry_at = Some(Instant::now() + RETRY);
        false
    }
}

/// The reservation, shared by the store (promises) and the log (writes).
#[derive(Debug, Clone)]
pub struct Reserve(Arc<Mutex<Inner>>);

impl Reserve {
    /// A reservation on `file` (`len` bytes long), allocating `chunk` bytes
    /// at a time. A full disk is no error: changes are refused until there
    /// is space.
    pub fn new(file: &File, len: u64, chunk: u64, what: String) -> std::io::Result<Reserve> {
        let mut inner = Inner {
            file: file.try_clone()?,
            end: len,
            allocated: len,
            chunk,
            unsupported: false,
            retry_at: None,
            full: false,
            what,
        };
        inner.grow(len);
        Ok(Reserve(Arc::new(Mutex::new(inner))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The segment is `len` bytes long now (what was promised is written,
    /// in fewer bytes than promised).
    pub fn settle(&self, len: u64) {
        let mut i = self.lock();
        i.end = len;
        i.allocated = i.allocated.max(len);
    }

    /// Appends go to `file` (`len` bytes long) from now on.
    pub fn switch(&self, file: &File, len: u64) -> std::io::Result<()> {
        let mut i = self.lock();
        i.file = file.try_clone()?;
        i.end = len;
        i.allocated = len;
        i.retry_at = None;
        let want = i.end;
        i.grow(want);
        Ok(())
    }

    /// Whether changes are being refused.
    pub fn full(&self) -> bool {
        self.lock().full
    }
}

impl Space for Reserve {
    fn reserve(&mut self, bytes: usize) -> bool {
        let mut i = self.lock();
        let want = i.end + bytes as u64;
        if i.unsupported || want <= i.allocated || i.grow(want) {
            i.end = want;
            return true;
        }
        false
    }
}

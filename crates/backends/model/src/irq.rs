//! [`IrqSink`]: where a model raises interrupts. The driver's side enables
//! one interrupt type with an eventfd per vector
//! ([`pcibox_kit::Backend::irq_enable`]) and masks vectors; raising vector
//! `n` signals its eventfd unless it is masked, in which case the signal is
//! held pending and delivered on unmask. INTx masks itself when it fires,
//! until the driver's end-of-interrupt (an unmask), as Linux vfio-pci's does.

use crate::error::{Error, Result};
use pcibox_kit::IrqKind;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// The model's interrupt outputs. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct IrqSink {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    kind: Option<IrqKind>,
    vectors: Vec<Vector>,
}

#[derive(Debug)]
struct Vector {
    fd: OwnedFd,
    masked: bool,
    pending: bool,
}

impl State {
    /// Vector `index` of `kind`, which must be the enabled type.
    fn vector(&mut self, kind: IrqKind, index: u32) -> Result<&mut Vector> {
        if self.kind != Some(kind) {
            return Err(Error::Irq {
                kind,
                why: "not enabled",
            });
        }
        self.vectors.get_mut(index as usize).ok_or(Error::Irq {
            kind,
            why: "no such vector",
        })
    }
}

impl Vector {
    /// Signals the eventfd (INTx then masks itself). `false` if the write
    /// failed (the eventfd cannot take more: the driver is not reading).
    fn fire(&mut self, kind: IrqKind) -> bool {
        if kind == IrqKind::Intx {
            self.masked = true;
        }
        rustix::io::write(&self.fd, &1u64.to_ne_bytes()).is_ok()
    }
}

impl IrqSink {
    /// A sink with nothing enabled.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation leaves the state consistent: poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Device side: raises vector `index` of the enabled type. `true` if
    /// its eventfd was signalled; `false` if it is masked (the signal is
    /// then pending until unmask), out of range, or nothing is enabled.
    pub fn raise(&self, index: u32) -> bool {
        let mut st = self.lock();
        let Some(kind) = st.kind else {
            return false;
        };
        let Some(v) = st.vectors.get_mut(index as usize) else {
            return false;
        };
        if v.masked {
            v.pending = true;
            return false;
        }
        v.fire(kind)
    }

    /// The enabled interrupt type.
    pub fn enabled(&self) -> Option<IrqKind> {
        self.lock().kind
    }

    /// Number of enabled vectors (0 when nothing is enabled).
    pub fn vectors(&self) -> u32 {
        self.lock().vectors.len() as u32
    }

    /// Whether vector `index` is masked (false when not enabled).
    pub fn is_masked(&self, index: u32) -> bool {
        self.lock()
            .vectors
            .get(index as usize)
            .is_some_and(|v| v.masked)
    }

    /// Enables `fds.len()` vectors of `kind` (at most `offered`), each
    /// unmasked. One type at a time.
    pub(crate) fn enable(&self, kind: IrqKind, fds: &[BorrowedFd<'_>], offered: u32) -> Result<()> {
        let bad = |why| Error::Irq { kind, why };
        if fds.is_empty() || fds.len() > offered as usize {
            return Err(bad("more vectors than the model offers, or none"));
        }
        let mut vectors = Vec::with_capacity(fds.len());
        for fd in fds {
            vectors.push(Vector {
                fd: fd.try_clone_to_owned().map_err(|e| Error::os("dup", e))?,
                masked: false,
                pending: false,
            });
        }
        let mut st = self.lock();
        if st.kind.is_some() {
            return Err(bad("another interrupt type is enabled"));
        }
        st.kind = Some(kind);
        st.vectors = vectors;
        Ok(())
    }

    /// Disables the vectors of `kind`, which must be the enabled type.
    pub(crate) fn disable(&self, kind: IrqKind) -> Result<()> {
        let mut st = self.lock();
        if st.kind != Some(kind) {
            return Err(Error::Irq {
                kind,
                why: "not enabled",
            });
        }
        st.kind = None;
        st.vectors.clear();
        Ok(())
    }

    /// Disables whatever is enabled (the backend is gone).
    pub(crate) fn clear(&self) {
        let mut st = self.lock();
        st.kind = None;
        st.vectors.clear();
    }

    /// Masks vector `index`: raising it only makes it pending.
    pub(crate) fn mask(&self, kind: IrqKind, index: u32) -> Result<()> {
        self.lock().vector(kind, index)?.masked = true;
        Ok(())
    }

    /// Unmasks vector `index` (for INTx, the end-of-interrupt) and delivers
    /// a signal that came while it was masked.
    pub(crate) fn unmask(&self, kind: IrqKind, index: u32) -> Result<()> {
        let mut st = self.lock();
        let v = st.vector(kind, index)?;
        v.masked = false;
        if std::mem::take(&mut v.pending) {
            v.fire(kind);
        }
        Ok(())
    }
}

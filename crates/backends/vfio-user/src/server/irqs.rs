//! Interrupt commands: GET_IRQ_INFO and SET_IRQS over the kit's books.
//!
//! INTx, MSI and MSI-X map to the kit's kinds (ERR/REQ have no vectors).
//! The client's eventfds become the vectors of one kit [`Interrupts`]
//! (gaps filled with private eventfds), enabled through the session's
//! device path; assigning vectors in pieces disables the set and enables it
//! again with the new table. One kind at a time (`EBUSY`).

use super::seam::SessionDevice;
use super::{backend_errno, NUM_IRQS};
use crate::sock::fd_kind;
use pcibox_kit::{Interrupts, IrqKind};
use rustix::event::EventfdFlags;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::result::Result;
use vfio_user_wire::*;

fn kind_of(index: u32) -> Option<IrqKind> {
    match index {
        PCI_INTX_IRQ_INDEX => Some(IrqKind::Intx),
        PCI_MSI_IRQ_INDEX => Some(IrqKind::Msi),
        PCI_MSIX_IRQ_INDEX => Some(IrqKind::Msix),
        _ => None,
    }
}

/// GET_IRQ_INFO.
pub(super) fn irq_info(dev: &dyn SessionDevice, r: &IrqInfoRepr) -> Result<IrqInfoRepr, u32> {
    if r.index >= NUM_IRQS {
        return Err(errno::EINVAL);
    }
    let (count, flags) = match kind_of(r.index) {
        None => (0, IRQ_INFO_EVENTFD),
        Some(k) => {
            let i = dev.irq_info(k).map_err(|e| backend_errno(&e))?;
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
    };
    Ok(IrqInfoRepr {
        argsz: IrqInfoRepr::LEN as u32,
        flags,
        index: r.index,
        count,
    })
}

fn is_eventfd(fd: BorrowedFd<'_>) -> bool {
    // Without /proc we cannot tell; the backend's own checks remain.
    fd_kind(fd).is_none_or(|k| k == "anon_inode:[eventfd]")
}

/// SET_IRQS, on the session's interrupts `irqs`.
pub(super) fn set_irqs(
    dev: &dyn SessionDevice,
    irqs: &mut Option<Interrupts>,
    r: &IrqSetRepr<'_>,
    fds: Vec<OwnedFd>,
) -> Result<(), u32> {
    let Some(kind) = kind_of(r.index) else {
        // ERR/REQ (and beyond) have no vectors: only "disable all" is fine.
        return if r.index < NUM_IRQS && r.count == 0 {
            Ok(())
        } else {
            Err(errno::EINVAL)
        };
    };
    let info = dev.irq_info(kind).map_err(|e| backend_errno(&e))?;
    let (start, count) = (r.start as usize, r.count as usize);
    if start + count > info.count as usize {
        return Err(errno::EINVAL);
    }
    if let Some(other) = irqs.as_ref().map(Interrupts::kind).filter(|&k| k != kind) {
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
    let vector = |i: usize| irqs.as_ref().and_then(|v| v.vector(i)).ok_or(errno::EINVAL);
    match (r.action, r.data) {
        (IrqAction::Trigger, IrqData::Eventfd) => {
            if !fds.is_empty() && fds.len() != count {
                return Err(errno::EINVAL);
            }
            if fds.iter().any(|f| !is_eventfd(f.as_fd())) {
                return Err(errno::EINVAL);
            }
            // The current table (vector i → its eventfd), taken back from
            // the kit: this disables the set until it is applied again.
            let mut table: Vec<Option<OwnedFd>> = match irqs.take() {
                Some(set) => set.disable().into_iter().map(Some).collect(),
                None => Vec::new(),
            };
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
            *irqs = apply(dev, kind, table)?;
            Ok(())
        }
        (IrqAction::Trigger, IrqData::None) if count == 0 => {
            if let Some(set) = irqs.take() {
                drop(set.disable());
            }
            Ok(())
        }
        (IrqAction::Trigger, _) => {
            // The client raises the interrupt itself.
            for i in (start..start + count).filter(|&i| selected(i)) {
                rustix::io::write(vector(i)?.fd(), &1u64.to_ne_bytes()).map_err(|_| errno::EIO)?;
            }
            Ok(())
        }
        (IrqAction::Mask | IrqAction::Unmask, IrqData::None | IrqData::Bool(_)) => {
            for i in (start..start + count).filter(|&i| selected(i)) {
                dev.set_masked(vector(i)?, r.action == IrqAction::Mask)
                    .map_err(|e| backend_errno(&e))?;
            }
            Ok(())
        }
        (IrqAction::Mask | IrqAction::Unmask, IrqData::Eventfd) => Err(errno::EOPNOTSUPP),
    }
}

/// Enables exactly the eventfds in `table` (vectors `0..table.len()`, gaps
/// filled with private eventfds); nothing when the table is empty.
fn apply(
    dev: &dyn SessionDevice,
    kind: IrqKind,
    mut table: Vec<Option<OwnedFd>>,
) -> Result<Option<Interrupts>, u32> {
    while table.last().is_some_and(|f| f.is_none()) {
        table.pop();
    }
    if table.is_empty() {
        return Ok(None);
    }
    let mut fds = Vec::with_capacity(table.len());
    for slot in table {
        fds.push(match slot {
            Some(fd) => fd,
            None => rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|_| errno::ENOMEM)?,
        });
    }
    dev.enable_interrupts(kind, fds)
        .map(Some)
        .map_err(|e| backend_errno(&e))
}

//! Just enough of the 82574 (QEMU's e1000e) to exercise the kit: a few
//! registers, an MSI-X interrupt raised through ICS, and the quiesce
//! sequence QEMU 7.2 needs before MSI-X is disabled (BRIEF §4).

use crate::test::{Context, Outcome};
use crate::{ensure, ensure_eq};
use pcibox_kit::{Device, IrqKind};
use std::time::Duration;

/// Device Status.
pub const STATUS: u64 = 0x08;
/// STATUS: full duplex.
pub const STATUS_FD: u32 = 1 << 0;
/// STATUS: link up.
pub const STATUS_LU: u32 = 1 << 1;
/// Interrupt Cause Read (clears on read).
pub const ICR: u64 = 0xc0;
/// Interrupt Cause Set.
pub const ICS: u64 = 0xc8;
/// Interrupt Mask Set/Read.
pub const IMS: u64 = 0xd0;
/// Interrupt Mask Clear.
pub const IMC: u64 = 0xd8;
/// Interrupt Vector Allocation (MSI-X routing of the causes).
pub const IVAR: u64 = 0xe4;
/// Extended Interrupt Throttle, vector 0.
pub const EITR0: u64 = 0xe8;
/// ICR/IMS: the "other" cause.
pub const CAUSE_OTHER: u32 = 1 << 24;

/// One round of the re-open test: MSI-X on, throttling on, one interrupt
/// through vector 0, then the quiesce sequence, then (in the caller) drop.
pub fn msix_round(dev: &Device) -> Outcome {
    dev.enable_memory_and_bus_master()?;
    let info = dev.irq_info(IrqKind::Msix)?;
    let irqs = dev.enable_interrupts(IrqKind::Msix, info.count)?;
    let bar = dev.region(0)?;
    bar.write32(IMC, u32::MAX)?;
    bar.read32(ICR)?;
    // Route "other" to vector 0 (valid bit 3 of the 4-bit field at 16).
    bar.write32(IVAR, 0x8 << 16)?;
    // Throttle vector 0 (~1 ms in 256 ns units): each interrupt arms the
    // timer QEMU 7.2 asserts on if MSI-X is switched off while it runs.
    bar.write32(EITR0, 4000)?;
    bar.write32(IMS, CAUSE_OTHER)?;
    bar.write32(ICS, CAUSE_OTHER)?;
    let v0 = irqs.vector(0).context("vector 0")?;
    ensure!(v0.wait(Some(Duration::from_secs(5)))? > 0, "MSI-X vector 0 did not fire for ICS(other)");
    ensure_eq!(irqs.vectors().iter().skip(1).map(|v| v.count()).sum::<u64>(), 0, "other vectors fired");
    // Quiesce: mask everything, clear causes, outwait the throttle window.
    bar.write32(IMC, u32::MAX)?;
    bar.read32(ICR)?;
    bar.write32(EITR0, 0)?;
    std::thread::sleep(Duration::from_millis(5));
    ensure_eq!(bar.read32(IMS)?, 0, "IMS after IMC");
    Ok(())
}

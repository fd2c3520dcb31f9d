//! [`Device`]: one PCI device reached through a [`Backend`], and the state
//! shared with the handles it gives out (regions, interrupts, DMA buffers).
//!
//! Teardown: dropping the `Device` disables interrupts, clears bus
//! mastering and unmaps every DMA mapping still live, in that order
//! ([`DeviceControl::quiesce`] is the first two steps, for a device that
//! stays open). Handles that
//! outlive it stay memory-safe (their memory stays mapped in the process
//! until they are dropped) but the device no longer sees their IOVAs, and
//! interrupt operations return [`Error::Closed`].

use crate::backend::{Backend, IrqKind, RegionInfo};
use crate::error::{Chain, Error, Result};
use crate::iova::IovaAllocator;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// PCI command register offset and bits.
pub const COMMAND: usize = 0x04;
/// Command register: memory space enable.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: bus master enable (DMA and MSI).
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Command register: INTx disable.
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;

#[derive(Debug)]
pub(crate) struct State {
    pub closed: bool,
    /// The enabled interrupt kind and the generation of its `Interrupts`.
    pub irq: Option<(IrqKind, u64)>,
    pub irq_generation: u64,
    pub iova: IovaAllocator,
    /// Live DMA mappings: IOVA → length.
    pub maps: BTreeMap<u64, u64>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub backend: Box<dyn Backend>,
    pub state: Mutex<State>,
    pub page: u64,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state (every
        // mutation is a single insert/remove), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Unmaps and frees a mapping made by [`Shared::map`] (or a backed
    /// window), unless teardown already did. An error (logged here) if the
    /// device may still reach the memory (the backend's unmap failed): the
    /// caller must then never release it.
    pub(crate) fn unmap(&self, iova: u64) -> Result<()> {
        let mut st = self.lock();
        let Some(len) = st.maps.remove(&iova) else {
            return Ok(());
        };
        if let Err(e) = self.backend.dma_unmap(iova, len) {
            // The IOVA stays reserved: reusing it could alias the stale mapping.
            tracing::error!(
                "{}: DMA unmap of {iova:#x}+{len:#x} failed, its memory is leaked: {}",
                self.backend.name(),
                Chain(&e)
            );
            return Err(e);
        }
        st.iova.free(iova, len);
        Ok(())
    }

    /// Turns interrupts of generation `gen` off (an `Interrupts` dropped).
    pub(crate) fn irq_off(&self, kind: IrqKind, gen: u64) {
        let mut st = self.lock();
        if st.irq != Some((kind, gen)) {
            return;
        }
        st.irq = None;
        if let Err(e) = self.backend.irq_disable(kind) {
            tracing::warn!(
                "{}: disabling {kind} failed: {}",
                self.backend.name(),
                Chain(&e)
            );
        }
    }

    /// Turns off whatever interrupts are enabled (their `Interrupts` go
    /// inert) and clears bus mastering, straight on the backend. The caller
    /// holds the lock, so nothing enables interrupts meanwhile.
    pub(crate) fn quiesce(&self, st: &mut State) {
        let name = self.backend.name();
        if let Some((kind, _)) = st.irq.take() {
            if let Err(e) = self.backend.irq_disable(kind) {
                tracing::warn!("{name}: teardown: disabling {kind} failed: {}", Chain(&e));
            }
        }
        let mut cmd = [0u8; 2];
        if self.backend.config_read(COMMAND, &mut cmd).is_ok() {
            let v = u16::from_le_bytes(cmd) & !COMMAND_BUS_MASTER;
            if let Err(e) = self.backend.config_write(COMMAND, &v.to_le_bytes()) {
                tracing::warn!(
                    "{name}: teardown: clearing bus master failed: {}",
                    Chain(&e)
                );
            }
        }
    }

    /// Locks the state, failing unless interrupts of generation `gen` are
    /// still the live ones (the guard keeps them so while the caller acts).
    pub(crate) fn lock_irq(&self, kind: IrqKind, gen: u64) -> Result<MutexGuard<'_, State>> {
        let st = self.lock();
        if st.closed || st.irq != Some((kind, gen)) {
            return Err(Error::Closed);
        }
        Ok(st)
    }
}

/// One PCI device, reached through a backend. `Send + Sync`; share it with
/// `&Device` or an `Arc`.
#[derive(Debug)]
pub struct Device {
    pub(crate) shared: Arc<Shared>,
}

impl Device {
    /// Takes over `backend` (an opened device), for a driver: the backend
    /// is reachable only through the kit from now on. Queries the IOVA
    /// ranges.
    pub fn new(backend: Box<dyn Backend>) -> Result<Self> {
        Self::with_control(backend).map(|(device, _)| device)
    }

    /// Like [`Device::new`], and also returns the privileged
    /// [`DeviceControl`] on the same device, for the code that opened it
    /// and must act below the kit (a server's trusted teardown, the broker).
    /// Hand drivers the `Device` only.
    pub fn with_control(backend: Box<dyn Backend>) -> Result<(Self, DeviceControl)> {
        let ranges = backend.iova_ranges()?;
        let page = rustix::param::page_size() as u64;
        let shared = Shared {
            backend,
            page,
            state: Mutex::new(State {
                closed: false,
                irq: None,
                irq_generation: 0,
                iova: IovaAllocator::new(&ranges, page),
                maps: BTreeMap::new(),
            }),
        };
        let shared = Arc::new(shared);
        Ok((
            Device {
                shared: shared.clone(),
            },
            DeviceControl { shared },
        ))
    }

    /// The backend's name for the device, e.g. `vfio:0000:00:04.0`.
    pub fn name(&self) -> &str {
        self.shared.backend.name()
    }

    /// Describes region `index` (BAR 0–5, 6 = ROM); an error if absent.
    pub fn region_info(&self, index: u32) -> Result<RegionInfo> {
        match self.shared.backend.region_info(index)? {
            Some(info) if info.size > 0 => Ok(info),
            _ => Err(Error::Region {
                index,
                what: "no such region",
            }),
        }
    }

    /// Resets the device. Interrupt and DMA setup made through the kit stay
    /// in place; device registers are reset. Whether config space (command
    /// register, MSI-X) survives is the backend's business — Linux VFIO saves
    /// and restores it around the function reset — so a driver that needs
    /// bus mastering calls `enable_memory_and_bus_master` again anyway.
    pub fn reset(&self) -> Result<()> {
        self.shared.backend.reset()
    }

    /// Number of live DMA mappings (for leak checks and diagnostics).
    pub fn dma_mapping_count(&self) -> usize {
        self.shared.lock().maps.len()
    }

    /// The interrupt kind currently enabled, if any.
    pub fn enabled_interrupts(&self) -> Option<IrqKind> {
        self.shared.lock().irq.map(|(k, _)| k)
    }

    /// The page size DMA lengths and IOVAs are rounded to.
    pub fn page_size(&self) -> u64 {
        self.shared.page
    }
}

/// The privileged handle on a device: its raw [`Backend`], for code that
/// must act below the kit's books — the vfio-user server's forwarding and
/// trusted teardown, the broker. Only whoever opens the device gets one
/// ([`Device::with_control`]); a driver holding a [`Device`] has no path to
/// the backend, and even through this handle mapping memory for DMA stays
/// `unsafe` ([`Backend::dma_map`]).
///
/// A driver cannot reach the raw backend from its `Device`:
///
/// ```compile_fail
/// fn misuse(dev: &pcibox_kit::Device, mem: &pcibox_kit::DmaMemory<'_>) {
///     let _ = dev.backend().dma_map(0x1000, mem);
/// }
/// ```
///
/// and a holder of the control handle cannot map memory without `unsafe`:
///
/// ```compile_fail,E0133
/// fn misuse(ctl: &pcibox_kit::DeviceControl, mem: &pcibox_kit::DmaMemory<'_>) {
///     let _ = ctl.backend().dma_map(0x1000, mem);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct DeviceControl {
    shared: Arc<Shared>,
}

impl DeviceControl {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The backend itself.
    pub fn backend(&self) -> &dyn Backend {
        &*self.shared.backend
    }

    /// Stops the device's own activity, as the first steps of the kit's
    /// teardown do, but leaves the device open: whatever interrupts are
    /// enabled go off (their [`crate::Interrupts`] turn inert: mask and
    /// unmask return [`Error::Closed`]) and bus mastering is cleared,
    /// straight on the backend. Failures are logged, not returned: this is
    /// the trusted path that must get as far as it can (a server ending a
    /// client's session; then it drops the client's DMA windows and resets
    /// the device).
    pub fn quiesce(&self) {
        let mut st = self.shared.lock();
        self.shared.quiesce(&mut st);
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let sh = &self.shared;
        let name = sh.backend.name();
        let mut st = sh.lock();
        st.closed = true;
        // 1. Interrupts off, 2. stop DMA at the source.
        sh.quiesce(&mut st);
        // 3. Remove every mapping. One whose unmap fails stays in the books,
        // so that the buffer holding its memory, when dropped, tries again
        // and leaks the memory rather than release it while the device may
        // reach it.
        let maps = std::mem::take(&mut st.maps);
        for (iova, len) in maps {
            match sh.backend.dma_unmap(iova, len) {
                Ok(()) => {
                    st.iova.free(iova, len);
                }
                Err(e) => {
                    tracing::warn!(
                        "{name}: teardown: DMA unmap {iova:#x}+{len:#x} failed: {}",
                        Chain(&e)
                    );
                    st.maps.insert(iova, len);
                }
            }
        }
    }
}

//! Bringing a controller up and down: CAP/CC/CSTS handshake with the CAP.TO timeout, the admin
//! queue, IDENTIFY, the number of queues, and I/O queue pairs bound to MSI-X vectors.

use crate::error::{Error, Result};
use crate::ioqueue::{Geometry, Shared};
use crate::queue::{Done, QueuePair};
use crate::{Options, Stats, PAGE_SIZE};
use nvme_spec::command::cns;
use nvme_spec::identify::parse_namespace_list;
use nvme_spec::regs::{offset, Aqa, Cap, Cc, Csts, Shutdown, ShutdownStatus, Version};
use nvme_spec::{Command, IdentifyController, IdentifyData, IdentifyNamespace, IDENTIFY_SIZE};
use pcibox_kit::{Chain, Device, DmaBuffer, Interrupts, IrqKind, Region};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Admin queue entries.
const ADMIN_ENTRIES: u16 = 32;

/// The namespace the block API works on.
#[derive(Debug, Clone, Serialize)]
pub struct Namespace {
    /// Namespace ID.
    pub nsid: u32,
    /// Its IDENTIFY data.
    pub info: IdentifyNamespace,
}

/// A running NVMe controller: admin work, teardown, and I/O on the queues it holds. Each I/O
/// queue can be taken out as an [`IoQueue`](crate::IoQueue) handle for another thread.
/// Dropping it shuts the controller down (CC.SHN, then CC.EN = 0) before its queues and buffers
/// are released; the kit `Device` goes when the last handle does.
#[derive(Debug)]
pub struct Controller {
    pub(crate) cap: Cap,
    pub(crate) version: Version,
    pub(crate) admin: QueuePair,
    /// The I/O queues not taken as handles.
    pub(crate) io: Vec<QueuePair>,
    /// Queues whose deletion failed: never used again, memory kept until shutdown.
    pub(crate) retired: Vec<QueuePair>,
    pub(crate) identify: IdentifyController,
    pub(crate) namespace: Option<Namespace>,
    pub(crate) bounce: Option<DmaBuffer>,
    pub(crate) bounds_check: bool,
    // Last: BAR0, vectors and the device, shared with the handles.
    pub(crate) shared: Arc<Shared>,
}

/// Disables the controller if bring-up fails half way, before the memory it was given goes.
struct DisableOnError<'a> {
    bar: &'a Region,
    cap: Cap,
    armed: bool,
}

impl Drop for DisableOnError<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = disable(self.bar, self.cap) {
                tracing::warn!("NVMe disable after a failed bring-up: {}", Chain(&e));
            }
        }
    }
}

impl Controller {
    /// Resets and enables the controller behind `device`, identifies it and its first active
    /// namespace, and creates the I/O queues `opts` asks for.
    pub fn new(device: Device, opts: &Options) -> Result<Controller> {
        device.enable_memory_and_bus_master()?;
        let bar = device.region(0)?;
        let cap = Cap(bar.read64(offset::CAP)?);
        if cap.0 == u64::MAX {
            return Err(Error::Gone { register: "CAP" });
        }
        let version = Version(bar.read32(offset::VS)?);
        if cap.command_sets() & 1 == 0 {
            return Err(Error::Unsupported(
                "CAP.CSS lacks the NVM command set".into(),
            ));
        }
        if cap.min_page_size() > PAGE_SIZE as u64 || cap.max_page_size() < PAGE_SIZE as u64 {
            return Err(Error::Unsupported(format!(
                "memory page size {}..={} excludes 4 KiB",
                cap.min_page_size(),
                cap.max_page_size()
            )));
        }
        let dstrd = cap.doorbell_stride();
        disable(&bar, cap)?;
        // Memory the controller is given lives in these locals until it is handed over; the
        // guard, dropped first, disables the controller if anything below fails.
        let mut admin = QueuePair::new(&device, 0, ADMIN_ENTRIES, dstrd, false)?;
        let page = device.alloc_dma(IDENTIFY_SIZE)?;
        let mut io = Vec::new();
        let mut irqs = None;
        let mut guard = DisableOnError {
            bar: &bar,
            cap,
            armed: true,
        };
        bar.write32(
            offset::AQA,
            Aqa {
                sq_entries: ADMIN_ENTRIES,
                cq_entries: ADMIN_ENTRIES,
            }
            .to_raw(),
        )?;
        bar.write64(offset::ASQ, admin.sq_iova())?;
        bar.write64(offset::ACQ, admin.cq_iova())?;
        let cc = Cc::default()
            .with_command_set(0)
            .with_page_size_shift(0)
            .with_arbitration(0)
            .with_entry_sizes(6, 4)
            .with_enable(true);
        bar.write32(offset::CC, cc.0)?;
        wait_ready(&bar, cap, true)?;
        tracing::debug!(%version, cap = format_args!("{:#x}", cap.0), "controller enabled");

        let mut admin_cmd = |cmd, name| admin_command(&bar, &mut admin, opts.timeout, cmd, name);
        admin_cmd(
            Command::identify(cns::CONTROLLER, 0, page.iova()),
            "IDENTIFY",
        )?;
        let identify = IdentifyController::parse(&IdentifyData::new_checked(page.to_vec())?)?;
        // PRP lists here hold up to 512 entries (one page, no chaining): cap the transfer there.
        let max_transfer = identify
            .max_transfer(cap.min_page_size())
            .unwrap_or(u64::MAX)
            .min(512 * PAGE_SIZE as u64) as usize;

        page.zero();
        admin_cmd(
            Command::identify(cns::ACTIVE_NAMESPACES, 0, page.iova()),
            "IDENTIFY",
        )?;
        let nsids = parse_namespace_list(&IdentifyData::new_checked(page.to_vec())?);
        let mut namespace = None;
        if let Some(&nsid) = nsids.first() {
            page.zero();
            admin_cmd(
                Command::identify(cns::NAMESPACE, nsid, page.iova()),
                "IDENTIFY",
            )?;
            let info = IdentifyNamespace::parse(&IdentifyData::new_checked(page.to_vec())?)?;
            namespace = Some(Namespace { nsid, info });
        }
        if opts.io_queues > 0 {
            create_io_queues(&device, cap, opts, &mut admin_cmd, &mut io, &mut irqs)?;
        }
        guard.armed = false;
        drop(guard);
        let geometry = namespace.as_ref().map(|n| Geometry {
            nsid: n.nsid,
            block_size: n.info.block_size(),
            capacity: n.info.nsze,
        });
        Ok(Controller {
            cap,
            version,
            admin,
            io,
            retired: Vec::new(),
            identify,
            namespace,
            bounce: None,
            bounds_check: true,
            shared: Arc::new(Shared {
                bar,
                irqs,
                geometry,
                max_transfer,
                timeout: opts.timeout,
                closed: AtomicBool::new(false),
                parked: Mutex::new(Vec::new()),
                completions: AtomicU64::new(0),
                interrupts: AtomicU64::new(0),
                out_of_order: AtomicU64::new(0),
                device,
            }),
        })
    }

    /// Submits an admin command and polls for its completion.
    pub fn admin_command(
        &mut self,
        cmd: Command,
        name: &'static str,
    ) -> Result<nvme_spec::Completion> {
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        admin_command(
            &self.shared.bar,
            &mut self.admin,
            self.shared.timeout,
            cmd,
            name,
        )
    }

    /// IDENTIFY controller data.
    pub fn identify(&self) -> &IdentifyController {
        &self.identify
    }

    /// The namespace the block API uses (the first active one).
    pub fn namespace(&self) -> Option<&Namespace> {
        self.namespace.as_ref()
    }

    /// CAP register.
    pub fn cap(&self) -> Cap {
        self.cap
    }

    /// VS register.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Number of I/O queue pairs the controller holds (not counting those taken as handles).
    pub fn io_queues(&self) -> usize {
        let parked = self
            .shared
            .parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        self.io.len() + parked
    }

    /// Whether I/O completions are signalled by MSI-X (false: polled).
    pub fn uses_interrupts(&self) -> bool {
        self.shared.irqs.is_some()
    }

    /// Largest transfer of one command, in bytes.
    pub fn max_transfer(&self) -> usize {
        self.shared.max_transfer
    }

    /// Counters since the controller was enabled, over its own I/O and its handles'.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            completions: s.completions.load(Ordering::Relaxed),
            interrupts: s.interrupts.load(Ordering::Relaxed),
            out_of_order: s.out_of_order.load(Ordering::Relaxed),
        }
    }

    /// The kit device (e.g. to allocate DMA buffers for the `*_dma` calls).
    pub fn device(&self) -> &Device {
        &self.shared.device
    }

    /// Orderly shutdown: CC.SHN = normal, wait for SHST complete, then CC.EN = 0.
    /// Handles fail with `Error::Closed` from now on.
    pub fn shutdown(&mut self) -> Result<()> {
        self.shared.closed.store(true, Ordering::Release);
        let bar = &self.shared.bar;
        let cc = Cc(bar.read32(offset::CC)?);
        if !cc.enabled() {
            return Ok(());
        }
        bar.write32(offset::CC, cc.with_shutdown(Shutdown::Normal).0)?;
        let limit = Duration::from_millis(self.cap.timeout_ms().max(500));
        let start = Instant::now();
        loop {
            let csts = Csts(bar.read32(offset::CSTS)?);
            if csts.is_all_ones() || csts.shutdown_status() == ShutdownStatus::Complete {
                break;
            }
            if start.elapsed() > limit {
                tracing::warn!("shutdown did not complete within CAP.TO");
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        disable(bar, self.cap)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        // The controller must stop DMA before the queues' memory goes away.
        if let Err(e) = self.shutdown() {
            tracing::warn!("NVMe shutdown: {}", Chain(&e));
        }
    }
}

/// Submits an admin command on `admin` and polls for its completion.
fn admin_command(
    bar: &Region,
    admin: &mut QueuePair,
    timeout: Duration,
    cmd: Command,
    name: &'static str,
) -> Result<nvme_spec::Completion> {
    let cid = admin.reserve().ok_or_else(|| {
        Error::Protocol("admin queue: every command id is busy (earlier timeouts)".into())
    })?;
    admin.submit(bar, cmd, cid, name)?;
    let start = Instant::now();
    let mut done: Vec<Done> = Vec::new();
    loop {
        admin.reap(bar, &mut done)?;
        if let Some(d) = done.iter().find(|d| d.cid == cid) {
            let c = d.completion;
            if !c.status.is_success() {
                return Err(Error::Status {
                    command: name,
                    qid: 0,
                    cid,
                    status: c.status,
                });
            }
            return Ok(c);
        }
        done.clear();
        check_alive(bar)?;
        if start.elapsed() >= timeout {
            admin.abandon_all();
            return Err(Error::Timeout {
                command: name,
                qid: 0,
                cid,
                after: start.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// SET FEATURES Number of Queues, MSI-X (unless polled), and CREATE I/O CQ + SQ for each queue
/// granted, into `io` and `irqs`.
fn create_io_queues(
    device: &Device,
    cap: Cap,
    opts: &Options,
    admin_cmd: &mut impl FnMut(Command, &'static str) -> Result<nvme_spec::Completion>,
    io: &mut Vec<QueuePair>,
    irqs: &mut Option<Interrupts>,
) -> Result<()> {
    let done = admin_cmd(
        Command::set_number_of_queues(opts.io_queues, opts.io_queues),
        "SET FEATURES",
    )?;
    // DW0: completion queues granted (31:16) and submission queues (15:0), 0-based.
    let granted_sq = (done.dw0 & 0xffff) as u16 + 1;
    let granted_cq = (done.dw0 >> 16) as u16 + 1;
    let n = opts.io_queues.min(granted_sq).min(granted_cq);
    if n < opts.io_queues {
        tracing::warn!(
            asked = opts.io_queues,
            granted = n,
            "fewer I/O queues granted"
        );
    }
    if !opts.polled {
        *irqs = setup_msix(device, n)?;
    }
    let entries = opts
        .queue_entries
        .clamp(2, cap.max_queue_entries().min(4096) as u16);
    for qid in 1..=n {
        let mut qp = QueuePair::new(device, qid, entries, cap.doorbell_stride(), true)?;
        let vector = irqs.as_ref().map(|_| qid as usize);
        qp.vector = vector;
        let (cq_iova, sq_iova) = (qp.cq_iova(), qp.sq_iova());
        // Kept by the caller from here on, whatever the commands below do.
        io.push(qp);
        admin_cmd(
            Command::create_io_cq(
                qid,
                entries,
                cq_iova,
                vector.unwrap_or(0) as u16,
                vector.is_some(),
            ),
            "CREATE I/O CQ",
        )?;
        admin_cmd(
            Command::create_io_sq(qid, entries, sq_iova, qid),
            "CREATE I/O SQ",
        )?;
    }
    Ok(())
}

/// Enables 1 + `n` MSI-X vectors (vector 0 for the admin queue, which is polled anyway, and one
/// per I/O queue). `None`, with a warning, when the device has too few.
fn setup_msix(device: &Device, n: u16) -> Result<Option<Interrupts>> {
    let info = match device.irq_info(IrqKind::Msix) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!("MSI-X unavailable, polling: {}", Chain(&e));
            return Ok(None);
        }
    };
    if info.count < n as u32 + 1 || !info.eventfd {
        tracing::warn!(vectors = info.count, "too few MSI-X vectors: polling");
        return Ok(None);
    }
    Ok(Some(device.enable_interrupts(IrqKind::Msix, n as u32 + 1)?))
}

/// Fails when CSTS reports a fatal error or reads all ones.
pub(crate) fn check_alive(bar: &Region) -> Result<()> {
    let csts = Csts(bar.read32(offset::CSTS)?);
    if csts.is_all_ones() {
        return Err(Error::Gone { register: "CSTS" });
    }
    if csts.fatal() {
        return Err(Error::Fatal { csts: csts.0 });
    }
    Ok(())
}

/// Clears CC.EN and waits for CSTS.RDY to drop (within CAP.TO).
fn disable(bar: &Region, cap: Cap) -> Result<()> {
    let cc = Cc(bar.read32(offset::CC)?);
    if cc.enabled() {
        bar.write32(
            offset::CC,
            cc.with_enable(false).with_shutdown(Shutdown::None).0,
        )?;
    }
    wait_ready(bar, cap, false)
}

/// Waits for CSTS.RDY to equal `ready`, up to CAP.TO.
fn wait_ready(bar: &Region, cap: Cap, ready: bool) -> Result<()> {
    let timeout = Duration::from_millis(cap.timeout_ms().max(500));
    let start = Instant::now();
    loop {
        let csts = Csts(bar.read32(offset::CSTS)?);
        if csts.is_all_ones() {
            return Err(Error::Gone { register: "CSTS" });
        }
        if ready && csts.fatal() {
            return Err(Error::Fatal { csts: csts.0 });
        }
        if csts.ready() == ready {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::ReadyTimeout {
                state: if ready { "ready" } else { "disabled" },
                timeout,
                csts: csts.0,
            });
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Bring-up failures against the kit's fake device, whose registers are plain memory: a
    //! controller that never becomes ready, reports a fatal status, or reads all ones.

    use super::*;
    use pcibox_model::fake::Fake;

    fn fake(cap: u64, csts: u32) -> Device {
        let f =
            Fake::new(0x1b36, 0x0010).with_region(0, 0x2000, std::iter::once(0..0x2000).collect());
        f.poke(0, offset::CAP, &cap.to_le_bytes());
        f.poke(0, offset::CSTS, &csts.to_le_bytes());
        Device::new(Box::new(f)).unwrap()
    }

    /// MQES 63, CAP.TO 1 (500 ms), NVM command set, 4 KiB pages.
    const CAP: u64 = 63 | (1 << 24) | (1 << 37);

    #[test]
    fn never_ready_times_out_after_cap_to() {
        let start = Instant::now();
        let err = Controller::new(fake(CAP, 0), &Options::default()).unwrap_err();
        assert!(
            matches!(err, Error::ReadyTimeout { state: "ready", .. }),
            "{err}"
        );
        assert!(start.elapsed() >= Duration::from_millis(500));
        assert!(err.to_string().contains("500ms"), "{err}");
    }

    #[test]
    fn fatal_status_and_missing_device_and_no_nvm() {
        let err = Controller::new(fake(CAP, 2), &Options::default()).unwrap_err();
        assert!(matches!(err, Error::Fatal { csts: 2 }), "{err}");
        let err = Controller::new(fake(u64::MAX, 0), &Options::default()).unwrap_err();
        assert!(matches!(err, Error::Gone { register: "CAP" }), "{err}");
        let err = Controller::new(fake(CAP & !(1 << 37), 0), &Options::default()).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        let err = Controller::new(fake(CAP | (1 << 48), 0), &Options::default()).unwrap_err();
        assert!(err.to_string().contains("excludes 4 KiB"), "{err}");
    }
}

//! Bringing a controller up and down: CAP/CC/CSTS handshake with the CAP.TO timeout, the admin
//! queue, IDENTIFY, the number of queues, and I/O queue pairs bound to MSI-X vectors.

use crate::error::{Error, Result};
use crate::queue::{Done, QueuePair};
use crate::{Options, Stats, PAGE_SIZE};
use nvme_spec::command::cns;
use nvme_spec::identify::parse_namespace_list;
use nvme_spec::regs::{offset, Aqa, Cap, Cc, Csts, Shutdown, ShutdownStatus, Version};
use nvme_spec::{Command, IdentifyController, IdentifyData, IdentifyNamespace, IDENTIFY_SIZE};
use pcibox_kit::{Chain, Device, Interrupts, IrqKind, Region};
use serde::Serialize;
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

/// A running NVMe controller. Dropping it shuts the controller down (CC.SHN, then CC.EN = 0)
/// before its queues and buffers are released.
#[derive(Debug)]
pub struct Controller {
    pub(crate) bar: Region,
    pub(crate) cap: Cap,
    pub(crate) version: Version,
    pub(crate) admin: QueuePair,
    pub(crate) io: Vec<QueuePair>,
    pub(crate) irqs: Option<Interrupts>,
    pub(crate) identify: IdentifyController,
    pub(crate) namespace: Option<Namespace>,
    pub(crate) max_transfer: usize,
    pub(crate) timeout: Duration,
    pub(crate) stats: Stats,
    pub(crate) bounce: Option<pcibox_kit::DmaBuffer>,
    pub(crate) bounds_check: bool,
    // Last: dropped after every buffer and mapping above.
    pub(crate) device: Device,
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
        let admin = QueuePair::new(&device, 0, ADMIN_ENTRIES, dstrd, false)?;
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

        let mut ctrl = Controller {
            bar,
            cap,
            version,
            admin,
            io: Vec::new(),
            irqs: None,
            identify: IdentifyController {
                vid: 0,
                ssvid: 0,
                serial: String::new(),
                model: String::new(),
                firmware: String::new(),
                ieee_oui: 0,
                mdts: 0,
                cntlid: 0,
                version: 0,
                oacs: 0,
                sqes: 0,
                cqes: 0,
                maxcmd: 0,
                nn: 0,
                oncs: 0,
                volatile_write_cache: false,
                subnqn: String::new(),
            },
            namespace: None,
            max_transfer: PAGE_SIZE,
            timeout: opts.timeout,
            stats: Stats::default(),
            bounce: None,
            bounds_check: true,
            device,
        };
        let page = ctrl.device.alloc_dma(IDENTIFY_SIZE)?;
        ctrl.admin_command(
            Command::identify(cns::CONTROLLER, 0, page.iova()),
            "IDENTIFY",
        )?;
        ctrl.identify = IdentifyController::parse(&IdentifyData::new_checked(page.to_vec())?)?;
        // PRP lists here hold up to 512 entries (one page, no chaining): cap the transfer there.
        let limit = ctrl
            .identify
            .max_transfer(cap.min_page_size())
            .unwrap_or(u64::MAX)
            .min(512 * PAGE_SIZE as u64);
        ctrl.max_transfer = limit as usize;

        page.zero();
        ctrl.admin_command(
            Command::identify(cns::ACTIVE_NAMESPACES, 0, page.iova()),
            "IDENTIFY",
        )?;
        let nsids = parse_namespace_list(&IdentifyData::new_checked(page.to_vec())?);
        if let Some(&nsid) = nsids.first() {
            page.zero();
            ctrl.admin_command(
                Command::identify(cns::NAMESPACE, nsid, page.iova()),
                "IDENTIFY",
            )?;
            let info = IdentifyNamespace::parse(&IdentifyData::new_checked(page.to_vec())?)?;
            ctrl.namespace = Some(Namespace { nsid, info });
        }
        if opts.io_queues > 0 {
            ctrl.create_io_queues(opts)?;
        }
        Ok(ctrl)
    }

    fn create_io_queues(&mut self, opts: &Options) -> Result<()> {
        let done = self.admin_command(
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
        let polled = opts.polled || !self.setup_msix(n)?;
        let entries = opts
            .queue_entries
            .clamp(2, self.cap.max_queue_entries().min(4096) as u16);
        for qid in 1..=n {
            let mut qp =
                QueuePair::new(&self.device, qid, entries, self.cap.doorbell_stride(), true)?;
            let vector = if polled { None } else { Some(qid as usize) };
            self.admin_command(
                Command::create_io_cq(
                    qid,
                    entries,
                    qp.cq_iova(),
                    vector.unwrap_or(0) as u16,
                    vector.is_some(),
                ),
                "CREATE I/O CQ",
            )?;
            self.admin_command(
                Command::create_io_sq(qid, entries, qp.sq_iova(), qid),
                "CREATE I/O SQ",
            )?;
            qp.vector = vector;
            self.io.push(qp);
        }
        Ok(())
    }

    /// Enables 1 + `n` MSI-X vectors (vector 0 for the admin queue, which is polled anyway, and
    /// one per I/O queue). Returns false, with a warning, when the device has too few.
    fn setup_msix(&mut self, n: u16) -> Result<bool> {
        let info = match self.device.irq_info(IrqKind::Msix) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("MSI-X unavailable, polling: {}", Chain(&e));
                return Ok(false);
            }
        };
        if info.count < n as u32 + 1 || !info.eventfd {
            tracing::warn!(vectors = info.count, "too few MSI-X vectors: polling");
            return Ok(false);
        }
        self.irqs = Some(self.device.enable_interrupts(IrqKind::Msix, n as u32 + 1)?);
        Ok(true)
    }

    /// Submits an admin command and polls for its completion.
    pub fn admin_command(
        &mut self,
        cmd: Command,
        name: &'static str,
    ) -> Result<nvme_spec::Completion> {
        let cid = self.admin.reserve().ok_or_else(|| {
            Error::Protocol("admin queue: every command id is busy (earlier timeouts)".into())
        })?;
        self.admin.submit(&self.bar, cmd, cid, name)?;
        let start = Instant::now();
        let mut done: Vec<Done> = Vec::new();
        loop {
            self.admin.reap(&self.bar, &mut done)?;
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
            self.check_alive()?;
            if start.elapsed() >= self.timeout {
                self.admin.abandon_all();
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

    /// Fails when CSTS reports a fatal error or reads all ones.
    pub(crate) fn check_alive(&self) -> Result<()> {
        let csts = Csts(self.bar.read32(offset::CSTS)?);
        if csts.is_all_ones() {
            return Err(Error::Gone { register: "CSTS" });
        }
        if csts.fatal() {
            return Err(Error::Fatal { csts: csts.0 });
        }
        Ok(())
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

    /// Number of I/O queue pairs.
    pub fn io_queues(&self) -> usize {
        self.io.len()
    }

    /// Whether I/O completions are signalled by MSI-X (false: polled).
    pub fn uses_interrupts(&self) -> bool {
        self.io.iter().any(|q| q.vector.is_some())
    }

    /// Largest transfer of one command, in bytes.
    pub fn max_transfer(&self) -> usize {
        self.max_transfer
    }

    /// Counters since the controller was enabled.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.out_of_order = self.io.iter().map(|q| q.out_of_order).sum();
        s
    }

    /// The kit device (e.g. to allocate DMA buffers for the `*_dma` calls).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Orderly shutdown: CC.SHN = normal, wait for SHST complete, then CC.EN = 0.
    pub fn shutdown(&mut self) -> Result<()> {
        let cc = Cc(self.bar.read32(offset::CC)?);
        if !cc.enabled() {
            return Ok(());
        }
        self.bar
            .write32(offset::CC, cc.with_shutdown(Shutdown::Normal).0)?;
        let limit = Duration::from_millis(self.cap.timeout_ms().max(500));
        let start = Instant::now();
        loop {
            let csts = Csts(self.bar.read32(offset::CSTS)?);
            if csts.is_all_ones() || csts.shutdown_status() == ShutdownStatus::Complete {
                break;
            }
            if start.elapsed() > limit {
                tracing::warn!("shutdown did not complete within CAP.TO");
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        disable(&self.bar, self.cap)
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

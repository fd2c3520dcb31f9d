//! Just enough NVMe to exercise the kit: the controller registers, an admin
//! queue pair in kit DMA buffers, and IDENTIFY. (The real driver is
//! `pcibox-nvme`; these tests use only the register facts of the spec.)

use crate::test::{Context, Failure};
use crate::{ensure, fail};
use pcibox_kit::{DmaBuffer, Device, Region};
use std::time::{Duration, Instant};

/// Controller Capabilities.
pub const CAP: u64 = 0x00;
/// Version.
pub const VS: u64 = 0x08;
/// Controller Configuration.
pub const CC: u64 = 0x14;
/// Controller Status.
pub const CSTS: u64 = 0x1c;
/// Admin Queue Attributes.
pub const AQA: u64 = 0x24;
/// Admin Submission Queue base.
pub const ASQ: u64 = 0x28;
/// Admin Completion Queue base.
pub const ACQ: u64 = 0x30;
/// First doorbell (SQ 0 tail).
pub const DOORBELLS: u64 = 0x1000;

/// Admin opcode IDENTIFY.
pub const OP_IDENTIFY: u8 = 0x06;
/// IDENTIFY CNS: the controller data structure.
pub const CNS_CONTROLLER: u32 = 1;

/// Queue depth of the admin queues used here.
const QSIZE: u16 = 8;

/// A completion queue entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub cid: u16,
    /// Status field (without the phase bit); 0 = success.
    pub status: u16,
}

/// The admin queue pair of an enabled controller.
#[derive(Debug)]
pub struct Admin {
    pub bar: Region,
    sq: DmaBuffer,
    cq: DmaBuffer,
    sq_tail: u16,
    cq_head: u16,
    phase: bool,
    next_cid: u16,
    stride: u64,
    timeout: Duration,
}

fn wait_ready(bar: &Region, ready: bool, timeout: Duration) -> Result<(), Failure> {
    let start = Instant::now();
    loop {
        let csts = bar.read32(CSTS).context("reading CSTS")?;
        ensure!(csts & 2 == 0, "CSTS.CFS (controller fatal status) is set: {csts:#x}");
        if (csts & 1 == 1) == ready {
            return Ok(());
        }
        if start.elapsed() > timeout {
            fail!("CSTS.RDY did not become {} within {timeout:?} (CSTS {csts:#x})", ready as u8);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Admin {
    /// Resets the controller (CC.EN = 0), sets up the admin queues in fresh
    /// DMA buffers and enables it. Memory space and bus mastering are turned
    /// on first (VFIO leaves them off).
    pub fn enable(dev: &Device, bar: Region) -> Result<Admin, Failure> {
        dev.enable_memory_and_bus_master().context("enabling memory space and bus master")?;
        let cap = bar.read64(CAP).context("reading CAP")?;
        let timeout = Duration::from_millis(500 * ((cap >> 24) & 0xff).max(1)) + Duration::from_secs(1);
        let stride = 4u64 << ((cap >> 32) & 0xf);
        bar.write32(CC, 0).context("clearing CC.EN")?;
        wait_ready(&bar, false, timeout)?;
        let sq = dev.alloc_dma(64 * QSIZE as usize).context("allocating the admin SQ")?;
        let cq = dev.alloc_dma(16 * QSIZE as usize).context("allocating the admin CQ")?;
        let qs = u32::from(QSIZE - 1);
        bar.write32(AQA, qs << 16 | qs).context("writing AQA")?;
        for (reg, iova) in [(ASQ, sq.iova()), (ACQ, cq.iova())] {
            bar.write32(reg, iova as u32).context("writing ASQ/ACQ")?;
            bar.write32(reg + 4, (iova >> 32) as u32).context("writing ASQ/ACQ")?;
        }
        // IOSQES 2^6, IOCQES 2^4, 4 KiB pages, NVM command set, enable.
        bar.write32(CC, 6 << 16 | 4 << 20 | 1).context("writing CC")?;
        wait_ready(&bar, true, timeout)?;
        Ok(Admin {
            bar,
            sq,
            cq,
            sq_tail: 0,
            cq_head: 0,
            phase: true,
            next_cid: 1,
            stride,
            timeout,
        })
    }

    /// Queues an admin command with PRP1 = `prp1` and rings the doorbell.
    /// Returns its command id.
    pub fn submit(&mut self, opcode: u8, nsid: u32, prp1: u64, cdw10: u32) -> Result<u16, Failure> {
        let cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1).max(1);
        let mut sqe = [0u8; 64];
        sqe[0] = opcode;
        sqe[2..4].copy_from_slice(&cid.to_le_bytes());
        sqe[4..8].copy_from_slice(&nsid.to_le_bytes());
        sqe[24..32].copy_from_slice(&prp1.to_le_bytes());
        sqe[40..44].copy_from_slice(&cdw10.to_le_bytes());
        self.sq.write(usize::from(self.sq_tail) * 64, &sqe).context("writing the SQE")?;
        self.sq_tail = (self.sq_tail + 1) % QSIZE;
        // Descriptor first, then the doorbell (the fence is in write_doorbell32).
        self.sq.sync_for_device();
        self.bar
            .write_doorbell32(DOORBELLS, u32::from(self.sq_tail))
            .context("ringing the SQ 0 tail doorbell")?;
        Ok(cid)
    }

    /// True if the next completion entry has been posted (phase bit flipped).
    pub fn completion_posted(&self) -> Result<bool, Failure> {
        let dw3: u32 = self.cq.read_le(usize::from(self.cq_head) * 16 + 12).context("reading the CQE")?;
        Ok((dw3 >> 16 & 1 == 1) == self.phase)
    }

    /// Waits (polling memory) for the next completion and consumes it;
    /// `ring` = write the CQ head doorbell (which also lets the controller
    /// deassert INTx).
    pub fn reap(&mut self, ring: bool) -> Result<Completion, Failure> {
        let start = Instant::now();
        while !self.completion_posted()? {
            if start.elapsed() > self.timeout {
                fail!("no completion posted within {:?}", self.timeout);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        self.cq.sync_for_cpu();
        let dw3: u32 = self.cq.read_le(usize::from(self.cq_head) * 16 + 12).context("reading the CQE")?;
        self.cq_head = (self.cq_head + 1) % QSIZE;
        if self.cq_head == 0 {
            self.phase = !self.phase;
        }
        if ring {
            self.ring_cq_head()?;
        }
        Ok(Completion {
            cid: dw3 as u16,
            status: (dw3 >> 17) as u16,
        })
    }

    /// Writes the CQ 0 head doorbell.
    pub fn ring_cq_head(&self) -> Result<(), Failure> {
        self.bar
            .write32(DOORBELLS + self.stride, u32::from(self.cq_head))
            .context("ringing the CQ 0 head doorbell")
    }

    /// Disables the controller (before teardown).
    pub fn disable(&self) -> Result<(), Failure> {
        self.bar.write32(CC, 0).context("clearing CC.EN")?;
        wait_ready(&self.bar, false, self.timeout)
    }
}

/// Fields of the IDENTIFY controller data structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyController {
    pub vid: u16,
    pub serial: String,
    pub model: String,
    pub firmware: String,
    /// VER: the same encoding as the VS register.
    pub ver: u32,
}

impl IdentifyController {
    pub fn parse(b: &[u8]) -> Result<Self, Failure> {
        ensure!(b.len() >= 4096, "IDENTIFY data is {} bytes", b.len());
        let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&b[r]).trim_end().to_string();
        Ok(IdentifyController {
            vid: u16::from_le_bytes([b[0], b[1]]),
            serial: text(4..24),
            model: text(24..64),
            firmware: text(64..72),
            ver: u32::from_le_bytes([b[80], b[81], b[82], b[83]]),
        })
    }
}

//! A small NVMe controller played by a thread over the kit's fake backend: it watches CC and the
//! doorbells in BAR0 (fake region memory), fetches submission entries and moves data by DMA
//! (refused, as an IOMMU would, outside the driver's mappings), posts completions with the phase
//! tag and raises the completion queue's MSI-X vector. Enough of the specification for the
//! driver: enable/disable/shutdown, IDENTIFY (controller, active namespaces, namespace), SET
//! FEATURES Number of Queues, CREATE/DELETE I/O CQ/SQ, and READ/WRITE (PRP1, PRP2, PRP lists)
//! /FLUSH on one namespace held in memory. It records which queue each command came from, so a
//! test can see that several queues were served concurrently.

use nvme_spec::command::{cns, AdminOpcode, NvmOpcode, SubmissionEntry};
use nvme_spec::identify::LbaFormat;
use nvme_spec::regs::{cq_head_doorbell, offset, sq_tail_doorbell};
use nvme_spec::{
    Command, Completion, IdentifyController, IdentifyNamespace, Status, CQE_SIZE, IDENTIFY_SIZE,
    SQE_SIZE,
};
use pcibox_kit::{Device, IrqKind, Region};
use pcibox_model::fake::Fake;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Size of BAR0.
const BAR0: u64 = 0x2000;
/// Block size of the namespace.
pub const BLOCK: usize = 512;
/// I/O queues the model grants at most.
pub const MAX_QUEUES: u16 = 4;
/// MQES 1023, CAP.TO 1 (500 ms), NVM command set, 4 KiB pages, doorbell stride 4.
const CAP: u64 = 1023 | (1 << 24) | (1 << 37);
const PAGE: u64 = 4096;

/// What the model did, for the tests to look at.
#[derive(Debug, Default)]
pub struct Log {
    /// The submission queue of every I/O command, in the order the model took them.
    pub io_qids: Vec<u16>,
    /// Admin commands by opcode name, in order.
    pub admin: Vec<&'static str>,
}

/// The running model. Dropping it stops the thread.
pub struct Model {
    pub fake: Fake,
    pub disk: Arc<Mutex<Vec<u8>>>,
    pub log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Model {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sq {
    base: u64,
    entries: u16,
    head: u16,
    cqid: u16,
}

#[derive(Debug, Clone, Copy)]
struct Cq {
    base: u64,
    entries: u16,
    tail: u16,
    phase: bool,
    vector: Option<u32>,
}

struct State {
    fake: Fake,
    regs: Region,
    disk: Arc<Mutex<Vec<u8>>>,
    log: Arc<Mutex<Log>>,
    sqs: BTreeMap<u16, Sq>,
    cqs: BTreeMap<u16, Cq>,
}

/// A fake NVMe device with a `blocks`-block namespace and the model thread serving it; returns
/// the model and the kit device to give the driver.
pub fn start(blocks: u64) -> (Model, Device) {
    let fake = Fake::new(0x1b36, 0x0010)
        .with_region(0, BAR0, std::iter::once(0..BAR0).collect())
        .with_irqs(IrqKind::Msix, u32::from(MAX_QUEUES) + 1);
    fake.poke(0, offset::CAP, &CAP.to_le_bytes());
    fake.poke(0, offset::VS, &0x0001_0400u32.to_le_bytes());
    let device = Device::new(Box::new(fake.clone())).expect("fake device");
    let regs = device.region(0).expect("BAR0");
    let disk = Arc::new(Mutex::new(vec![0u8; blocks as usize * BLOCK]));
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut st = State {
        fake: fake.clone(),
        regs,
        disk: disk.clone(),
        log: log.clone(),
        sqs: BTreeMap::new(),
        cqs: BTreeMap::new(),
    };
    let halt = stop.clone();
    let thread = std::thread::spawn(move || {
        while !halt.load(Ordering::SeqCst) {
            st.step();
            std::thread::sleep(Duration::from_micros(20));
        }
    });
    (
        Model {
            fake,
            disk,
            log,
            stop,
            thread: Some(thread),
        },
        device,
    )
}

fn r32(regs: &Region, off: u64) -> u32 {
    regs.read32(off).expect("model register read")
}

fn w32(regs: &Region, off: u64, v: u32) {
    regs.write32(off, v).expect("model register write");
}

const SUCCESS: u16 = 0;
const INVALID_OPCODE: u16 = 0x01;
const INVALID_FIELD: u16 = 0x02;
const DATA_TRANSFER_ERROR: u16 = 0x04;
const INVALID_QUEUE_ID: u16 = 0x101; // command specific
const LBA_OUT_OF_RANGE: u16 = 0x80;

impl State {
    fn step(&mut self) {
        let cc = r32(&self.regs, offset::CC);
        let csts = r32(&self.regs, offset::CSTS);
        let enabled = cc & 1 != 0;
        if enabled && csts & 1 == 0 {
            let aqa = r32(&self.regs, offset::AQA);
            let asq = self.regs.read64(offset::ASQ).expect("ASQ");
            let acq = self.regs.read64(offset::ACQ).expect("ACQ");
            self.sqs.clear();
            self.cqs.clear();
            self.sqs.insert(
                0,
                Sq {
                    base: asq,
                    entries: (aqa & 0xfff) as u16 + 1,
                    head: 0,
                    cqid: 0,
                },
            );
            self.cqs.insert(
                0,
                Cq {
                    base: acq,
                    entries: ((aqa >> 16) & 0xfff) as u16 + 1,
                    tail: 0,
                    phase: true,
                    vector: Some(0),
                },
            );
            w32(&self.regs, offset::CSTS, 1);
            return;
        }
        if !enabled {
            if csts & 1 != 0 {
                self.sqs.clear();
                self.cqs.clear();
                // Doorbells read 0 again after a reset.
                for off in (0x1000..0x1000 + 8 * (u64::from(MAX_QUEUES) + 1)).step_by(4) {
                    w32(&self.regs, off, 0);
                }
                w32(&self.regs, offset::CSTS, 0);
            }
            return;
        }
        if (cc >> 14) & 3 != 0 && (csts >> 2) & 3 != 2 {
            w32(&self.regs, offset::CSTS, (csts & !0xc) | (2 << 2));
        }
        let qids: Vec<u16> = self.sqs.keys().copied().collect();
        for qid in qids {
            self.serve(qid);
        }
    }

    /// Takes every entry up to the tail doorbell of SQ `qid` while its CQ has room.
    fn serve(&mut self, qid: u16) {
        let tail = r32(&self.regs, sq_tail_doorbell(qid, 0)) as u16;
        loop {
            let Some(sq) = self.sqs.get(&qid).copied() else {
                return; // deleted by the command just run
            };
            if sq.head == tail % sq.entries {
                return;
            }
            let Some(cq) = self.cqs.get(&sq.cqid).copied() else {
                return;
            };
            let cq_head = r32(&self.regs, cq_head_doorbell(sq.cqid, 0)) as u16;
            if (cq.tail + 1) % cq.entries == cq_head {
                return; // completion queue full: wait for the driver
            }
            let raw = self
                .fake
                .dma_read(sq.base + u64::from(sq.head) * SQE_SIZE as u64, SQE_SIZE)
                .expect("SQ fetch");
            let cmd = Command::parse(&SubmissionEntry::new_checked(&raw[..]).expect("64 bytes"));
            let head = (sq.head + 1) % sq.entries;
            if let Some(s) = self.sqs.get_mut(&qid) {
                s.head = head;
            }
            let (status, dw0) = if qid == 0 {
                self.admin(&cmd)
            } else {
                self.log.lock().expect("log").io_qids.push(qid);
                (self.io(&cmd), 0)
            };
            self.complete(sq.cqid, qid, head, cmd.cid, status, dw0);
        }
    }

    fn complete(&mut self, cqid: u16, sqid: u16, sq_head: u16, cid: u16, sc: u16, dw0: u32) {
        let Some(cq) = self.cqs.get_mut(&cqid) else {
            return;
        };
        let c = Completion {
            dw0,
            sq_head,
            sq_id: sqid,
            cid,
            phase: cq.phase,
            status: Status::from_field(sc),
            ..Completion::default()
        };
        let mut b = [0u8; CQE_SIZE];
        c.emit(&mut b).expect("16 bytes");
        self.fake
            .dma_write(cq.base + u64::from(cq.tail) * CQE_SIZE as u64, &b)
            .expect("CQ post");
        cq.tail += 1;
        if cq.tail == cq.entries {
            cq.tail = 0;
            cq.phase = !cq.phase;
        }
        if let Some(v) = cq.vector {
            self.fake.trigger(v);
        }
    }

    fn admin(&mut self, cmd: &Command) -> (u16, u32) {
        let op = [
            AdminOpcode::DeleteIoSq,
            AdminOpcode::CreateIoSq,
            AdminOpcode::DeleteIoCq,
            AdminOpcode::CreateIoCq,
            AdminOpcode::Identify,
            AdminOpcode::SetFeatures,
        ]
        .into_iter()
        .find(|&o| o as u8 == cmd.opcode);
        let Some(op) = op else {
            return (INVALID_OPCODE, 0);
        };
        self.log.lock().expect("log").admin.push(cmd.name(true));
        let qid = (cmd.cdw[0] & 0xffff) as u16;
        let entries = ((cmd.cdw[0] >> 16) & 0xffff) as u16 + 1;
        match op {
            AdminOpcode::Identify => {
                let mut page = vec![0u8; IDENTIFY_SIZE];
                match (cmd.cdw[0] & 0xff) as u8 {
                    cns::CONTROLLER => identify_controller(&mut page),
                    cns::ACTIVE_NAMESPACES => page[0..4].copy_from_slice(&1u32.to_le_bytes()),
                    cns::NAMESPACE if cmd.nsid == 1 => {
                        let blocks = (self.disk.lock().expect("disk").len() / BLOCK) as u64;
                        identify_namespace(blocks, &mut page);
                    }
                    _ => return (INVALID_FIELD, 0),
                }
                match self.fake.dma_write(cmd.prp1, &page) {
                    Ok(()) => (SUCCESS, 0),
                    Err(_) => (DATA_TRANSFER_ERROR, 0),
                }
            }
            AdminOpcode::SetFeatures => {
                let asked_sq = (cmd.cdw[1] & 0xffff) as u16;
                let asked_cq = (cmd.cdw[1] >> 16) as u16;
                let max = MAX_QUEUES - 1;
                let dw0 = (u32::from(asked_cq.min(max)) << 16) | u32::from(asked_sq.min(max));
                (SUCCESS, dw0)
            }
            AdminOpcode::CreateIoCq => {
                if qid == 0 || qid > MAX_QUEUES || self.cqs.contains_key(&qid) {
                    return (INVALID_QUEUE_ID, 0);
                }
                let ien = cmd.cdw[1] & 2 != 0;
                let vector = cmd.cdw[1] >> 16;
                self.cqs.insert(
                    qid,
                    Cq {
                        base: cmd.prp1,
                        entries,
                        tail: 0,
                        phase: true,
                        vector: ien.then_some(vector),
                    },
                );
                (SUCCESS, 0)
            }
            AdminOpcode::CreateIoSq => {
                let cqid = (cmd.cdw[1] >> 16) as u16;
                if qid == 0 || self.sqs.contains_key(&qid) || !self.cqs.contains_key(&cqid) {
                    return (INVALID_QUEUE_ID, 0);
                }
                self.sqs.insert(
                    qid,
                    Sq {
                        base: cmd.prp1,
                        entries,
                        head: 0,
                        cqid,
                    },
                );
                (SUCCESS, 0)
            }
            AdminOpcode::DeleteIoSq => match self.sqs.remove(&qid) {
                Some(_) if qid != 0 => {
                    w32(&self.regs, sq_tail_doorbell(qid, 0), 0);
                    (SUCCESS, 0)
                }
                _ => (INVALID_QUEUE_ID, 0),
            },
            AdminOpcode::DeleteIoCq => {
                if qid == 0 || self.sqs.values().any(|s| s.cqid == qid) {
                    return (INVALID_QUEUE_ID, 0);
                }
                match self.cqs.remove(&qid) {
                    Some(_) => {
                        w32(&self.regs, cq_head_doorbell(qid, 0), 0);
                        (SUCCESS, 0)
                    }
                    None => (INVALID_QUEUE_ID, 0),
                }
            }
            _ => (INVALID_OPCODE, 0),
        }
    }

    fn io(&mut self, cmd: &Command) -> u16 {
        if cmd.opcode == NvmOpcode::Flush as u8 {
            return SUCCESS;
        }
        let read = cmd.opcode == NvmOpcode::Read as u8;
        if !read && cmd.opcode != NvmOpcode::Write as u8 {
            return INVALID_OPCODE;
        }
        let mut disk = self.disk.lock().expect("disk");
        let start = cmd.slba() as usize * BLOCK;
        let len = cmd.blocks() as usize * BLOCK;
        if start + len > disk.len() {
            return LBA_OUT_OF_RANGE;
        }
        let Some(segments) = self.prps(cmd.prp1, cmd.prp2, len) else {
            return DATA_TRANSFER_ERROR;
        };
        let mut at = start;
        for (iova, n) in segments {
            let ok = if read {
                self.fake.dma_write(iova, &disk[at..at + n]).is_ok()
            } else {
                match self.fake.dma_read(iova, n) {
                    Ok(data) => {
                        disk[at..at + n].copy_from_slice(&data);
                        true
                    }
                    Err(_) => false,
                }
            };
            if !ok {
                return DATA_TRANSFER_ERROR;
            }
            at += n;
        }
        SUCCESS
    }

    /// The (IOVA, length) pieces a PRP1/PRP2 pair describes for `len` bytes.
    fn prps(&self, prp1: u64, prp2: u64, len: usize) -> Option<Vec<(u64, usize)>> {
        let first = ((PAGE - prp1 % PAGE) as usize).min(len);
        let mut out = vec![(prp1, first)];
        let rest = len - first;
        if rest == 0 {
            return Some(out);
        }
        if rest <= PAGE as usize {
            out.push((prp2, rest));
            return Some(out);
        }
        let pages = rest.div_ceil(PAGE as usize);
        let list = self.fake.dma_read(prp2, pages * 8).ok()?;
        for (i, e) in list.chunks_exact(8).enumerate() {
            let iova = u64::from_le_bytes(e.try_into().ok()?);
            let n = (rest - i * PAGE as usize).min(PAGE as usize);
            out.push((iova, n));
        }
        Some(out)
    }
}

fn identify_controller(page: &mut [u8]) {
    IdentifyController {
        vid: 0x1b36,
        ssvid: 0x1af4,
        serial: "model-0001".into(),
        model: "pcibox test model".into(),
        firmware: "1.0".into(),
        ieee_oui: 0,
        mdts: 5, // 128 KiB
        cntlid: 0,
        version: 0x0001_0400,
        oacs: 0,
        sqes: 0x66,
        cqes: 0x44,
        maxcmd: 0,
        nn: 1,
        oncs: 0,
        volatile_write_cache: true,
        subnqn: "nqn.2024-01.org.pcibox:model".into(),
    }
    .emit(page)
    .expect("4096 bytes");
}

fn identify_namespace(blocks: u64, page: &mut [u8]) {
    IdentifyNamespace {
        nsze: blocks,
        ncap: blocks,
        nuse: blocks,
        nsfeat: 0,
        nlbaf: 1,
        flbas: 0,
        nguid: [0; 16],
        eui64: [0; 8],
        lba_formats: vec![LbaFormat {
            metadata_size: 0,
            lba_data_shift: 9,
            relative_performance: 0,
        }],
    }
    .emit(page)
    .expect("4096 bytes");
}

//! Queue handles against the model in `model/`: threads each with its own I/O queue doing
//! verified writes and reads at the same time (MSI-X and polled), handles outliving the
//! controller, dropped handles coming back, deletion, and the controller's own block API beside
//! a handle thread. The guest tests run the same driver against QEMU's nvme.

mod model;

use model::{Model, BLOCK};
use pcibox_nvme::{pattern, Controller, Error, IoQueue, OpKind, Options, RunStats, Transfer};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const BLOCKS: u64 = 16384; // 8 MiB

fn open(queues: u16, polled: bool) -> (Model, Controller) {
    let (model, device) = model::start(BLOCKS);
    let opts = Options {
        io_queues: queues,
        queue_entries: 16,
        polled,
        timeout: Duration::from_secs(10),
    };
    let ctrl = Controller::new(device, &opts).expect("bring-up against the model");
    (model, ctrl)
}

/// `rounds` times: a pattern written over `blocks` blocks at `lba` (zero-copy, 8 blocks per
/// command, 8 in flight), read back into another buffer and compared; then once more through
/// the bounce-buffer calls. Returns what the zero-copy runs did.
fn verify_rounds(
    q: &mut IoQueue,
    seed: u64,
    lba: u64,
    blocks: u64,
    rounds: u64,
) -> pcibox_nvme::Result<Vec<RunStats>> {
    let len = blocks as usize * BLOCK;
    let out = q.alloc_buffer(len)?;
    let back = q.alloc_buffer(len)?;
    let mut data = vec![0u8; len];
    let mut stats = Vec::new();
    for r in 0..rounds {
        pattern::fill(seed + r, lba, BLOCK, &mut data);
        out.write(0, &data)?;
        let t = |kind| Transfer::new(kind, lba, blocks).blocks_per_cmd(8).depth(8);
        stats.push(q.transfer_dma(t(OpKind::Write), &out)?);
        back.zero();
        stats.push(q.transfer_dma(t(OpKind::Read), &back)?);
        let got = back.to_vec();
        assert_eq!(
            pattern::first_mismatch(seed + r, lba, BLOCK, &got),
            None,
            "queue {} round {r}",
            q.qid()
        );
    }
    pattern::fill(seed + rounds, lba, BLOCK, &mut data);
    q.write(lba, &data)?;
    q.flush()?;
    let mut got = vec![0u8; len];
    q.read(lba, &mut got)?;
    assert!(got == data, "queue {}: bounce-buffer round trip", q.qid());
    Ok(stats)
}

/// How often consecutive I/O commands in the model's log came from different queues.
fn switches(qids: &[u16]) -> usize {
    qids.windows(2).filter(|w| w[0] != w[1]).count()
}

fn two_threads(polled: bool) {
    let (model, mut ctrl) = open(2, polled);
    let queues = ctrl.take_io_queues();
    assert_eq!(queues.len(), 2);
    assert_eq!(ctrl.io_queues(), 0, "both queues are out");
    let start = Arc::new(Barrier::new(queues.len()));
    let workers: Vec<_> = queues
        .into_iter()
        .enumerate()
        .map(|(i, mut q)| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let lba = 1000 + i as u64 * 4000;
                let stats = verify_rounds(&mut q, 100 * i as u64, lba, 256, 12);
                (q, stats)
            })
        })
        .collect();
    let mut handles = Vec::new();
    let mut total = 0;
    for w in workers {
        let (q, stats) = w.join().expect("worker thread");
        let stats = stats.unwrap_or_else(|e| panic!("queue I/O failed: {}", pcibox_kit::Chain(&e)));
        let irqs: u64 = stats.iter().map(|s| s.interrupts).sum();
        total += stats.iter().map(|s| s.completions).sum::<u64>();
        assert!(stats.iter().all(|s| s.max_in_flight == 8), "{stats:?}");
        if polled {
            assert_eq!(irqs, 0, "queue {} polled", q.qid());
            assert_eq!(q.vector(), None);
        } else {
            assert!(irqs > 0, "queue {}: no interrupt on its vector", q.qid());
            assert_eq!(q.vector(), Some(usize::from(q.qid())));
        }
        handles.push(q);
    }
    // 12 rounds × 2 × 32 commands each, plus the bounce-buffer calls, on both queues.
    assert!(ctrl.stats().completions >= total && total == 2 * 12 * 2 * 32);
    let log = model.log.lock().expect("log");
    for qid in [1, 2] {
        let n = log.io_qids.iter().filter(|&&q| q == qid).count();
        assert!(n >= 12 * 2 * 32, "queue {qid}: {n} commands");
    }
    assert!(
        switches(&log.io_qids) >= 2,
        "the two queues were never busy at the same time"
    );
    drop(log);
    // The model's media hold each thread's last pattern.
    let disk = model.disk.lock().expect("disk").clone();
    for (i, seed) in [(0u64, 12u64), (1, 112)] {
        let lba = 1000 + i * 4000;
        let bytes = &disk[lba as usize * BLOCK..(lba + 256) as usize * BLOCK];
        assert_eq!(pattern::first_mismatch(seed, lba, BLOCK, bytes), None);
    }
    // Handles dropped: the controller has both queues again and uses them.
    drop(handles);
    assert_eq!(ctrl.io_queues(), 2);
    let mut head = vec![0u8; 4 * BLOCK];
    ctrl.read(1000, &mut head).expect("controller read");
    assert_eq!(pattern::first_mismatch(12, 1000, BLOCK, &head), None);
    drop(ctrl);
    assert_eq!(model.fake.mapping_count(), 0, "every DMA mapping removed");
    assert_eq!(
        model.fake.faults(),
        0,
        "no DMA outside the driver's buffers"
    );
}

#[test]
fn two_threads_each_with_its_queue_verify_concurrently_msix() {
    two_threads(false);
}

#[test]
fn two_threads_each_with_its_queue_verify_concurrently_polled() {
    two_threads(true);
}

#[test]
fn a_handle_outlives_its_controller_safely() {
    let (model, mut ctrl) = open(1, false);
    let mut q = ctrl.take_io_queue().expect("handle");
    q.write(0, &[7u8; 2 * BLOCK])
        .expect("write before shutdown");
    drop(ctrl);
    // The controller is shut down: the handle refuses, the device stays open for its memory.
    assert!(matches!(q.flush(), Err(Error::Closed)));
    assert!(matches!(q.read(0, &mut [0u8; BLOCK]), Err(Error::Closed)));
    assert!(model.fake.mapping_count() > 0);
    assert!(model.fake.irq_enabled().is_some());
    drop(q);
    assert_eq!(
        model.fake.mapping_count(),
        0,
        "the last handle closes the device"
    );
    assert_eq!(model.fake.irq_enabled(), None);
}

#[test]
fn dropped_handles_come_back_and_deleted_queues_are_gone() {
    let (model, mut ctrl) = open(3, false);
    let q = ctrl.take_io_queue().expect("first handle");
    assert_eq!((q.qid(), ctrl.io_queues()), (1, 2));
    drop(q);
    assert_eq!(ctrl.io_queues(), 3, "a dropped handle gives its queue back");

    let mut all = ctrl.take_io_queues();
    assert!(matches!(ctrl.take_io_queue(), Err(Error::NoIoQueues)));
    assert!(matches!(ctrl.flush(), Err(Error::NoIoQueues)));
    let q3 = all.pop().expect("queue 3");
    let q2 = all.pop().expect("queue 2");
    let q1 = all.pop().expect("queue 1");
    ctrl.delete_io_queue(q1).expect("delete queue 1");
    {
        let log = model.log.lock().expect("log");
        let n = log.admin.len();
        assert_eq!(&log.admin[n - 2..], ["DELETE I/O SQ", "DELETE I/O CQ"]);
    }
    // A handle of another controller is refused and goes back to its own.
    let (_other_model, mut other) = open(1, false);
    let foreign = other.take_io_queue().expect("foreign handle");
    assert!(matches!(
        ctrl.delete_io_queue(foreign),
        Err(Error::ForeignQueue { qid: 1 })
    ));
    assert_eq!(other.io_queues(), 1);

    // Queue 2 works on a thread while queue 3 is dropped back to the controller.
    let worker = std::thread::spawn(move || {
        let mut q2 = q2;
        verify_rounds(&mut q2, 7, 9000, 64, 3).map(|_| q2)
    });
    drop(q3);
    assert_eq!(ctrl.io_queues(), 1);
    let data: Vec<u8> = (0..16 * BLOCK).map(|i| (i % 251) as u8).collect();
    ctrl.write(40, &data).expect("controller write on queue 3");
    let mut back = vec![0u8; data.len()];
    ctrl.read(40, &mut back)
        .expect("controller read on queue 3");
    assert!(back == data);
    let q2 = worker
        .join()
        .expect("worker")
        .unwrap_or_else(|e| panic!("queue 2: {}", pcibox_kit::Chain(&e)));
    ctrl.delete_io_queue(q2).expect("delete queue 2");
    assert_eq!(ctrl.io_queues(), 1);
    let log = model.log.lock().expect("log");
    assert!(log.io_qids.contains(&2) && log.io_qids.contains(&3));
    assert!(!log.io_qids.contains(&1), "queue 1 never did I/O");
}

#[test]
fn controller_runs_qd16_over_two_queues_and_checks_bounds() {
    let (model, mut ctrl) = open(2, false);
    let blocks = 512u64;
    let buf = ctrl.alloc_buffer(blocks as usize * BLOCK).expect("buffer");
    let mut data = vec![0u8; buf.len()];
    pattern::fill(3, 2000, BLOCK, &mut data);
    buf.write(0, &data).expect("fill");
    let t = |kind| {
        Transfer::new(kind, 2000, blocks)
            .blocks_per_cmd(8)
            .depth(16)
    };
    let w = ctrl.transfer_dma(t(OpKind::Write), &buf).expect("write");
    assert_eq!((w.completions, w.max_in_flight), (64, 16));
    buf.zero();
    let r = ctrl.transfer_dma(t(OpKind::Read), &buf).expect("read");
    assert!(r.interrupts > 0);
    assert_eq!(pattern::first_mismatch(3, 2000, BLOCK, &buf.to_vec()), None);
    let log = model.log.lock().expect("log");
    assert!(log.io_qids.contains(&1) && log.io_qids.contains(&2));
    drop(log);
    // Past the end: refused before submitting, or by the device when unchecked.
    let mut q = ctrl.take_io_queue().expect("handle");
    let mut one = vec![0u8; BLOCK];
    assert!(matches!(
        q.read(BLOCKS, &mut one),
        Err(Error::OutOfRange { .. })
    ));
    q.set_bounds_check(false);
    match q.read(BLOCKS, &mut one) {
        Err(Error::Status {
            command: "READ",
            status,
            ..
        }) => {
            assert_eq!(status.name(), "LBA Out of Range")
        }
        other => panic!("unchecked read past the end: {other:?}"),
    }
    assert!(matches!(
        q.read(0, &mut [0u8; 100]),
        Err(Error::Unaligned(_))
    ));
}

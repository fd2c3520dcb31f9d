//! Guest tests of the `nvme` area (names start with `nvme-`): the pcibox NVMe driver on QEMU's
//! nvme through Linux vfio-pci, compared with what the guest kernel's own nvme driver and the
//! host's sfdisk/sgdisk say. See docs/nvme.md.
//!
//! Every test also runs as its `vfio-user-` twin: the driver as nobody over `pcibox
//! serve-device` ([`crate::driver`]).

use crate::guest::{self, NVME_BDF, PCI_SERIAL_BDF, VIRTIO_NET_BDF};
use crate::test::{Context, Ctx, Disk, Needs, Outcome, Test};
use crate::{ensure, ensure_eq, fail};
use partition_table::{sfdisk, sgdisk};
use pcibox_nvme::{pattern, Controller, Error, IoQueue, OpKind, Options, RunStats, Transfer};
use std::time::Duration;

pub const TESTS: &[Test] = &[
    Test {
        name: "nvme-identify",
        about: "identify prints the model and serial the guest kernel's nvme driver reported",
        run: identify,
        needs: Needs::DEFAULT.disk(Disk::Gpt).timeout_s(40).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-partitions-gpt",
        about: "partitions on the GPT image match the host's sfdisk --dump and sgdisk -p",
        run: partitions_gpt,
        needs: Needs::DEFAULT.disk(Disk::Gpt).timeout_s(40).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-partitions-mbr",
        about: "partitions on the MBR image (extended + logical) match the host's sfdisk --dump",
        run: partitions_mbr,
        needs: Needs::DEFAULT.disk(Disk::Mbr).timeout_s(40).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-partitions-damaged-gpt",
        about: "a damaged primary GPT recovered from the backup = host sfdisk --dump, sgdisk -p",
        run: partitions_damaged,
        needs: Needs::DEFAULT.disk(Disk::DamagedGpt).timeout_s(40).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-read-head",
        about: "reading the first 64 KiB gives the bytes of the host's image",
        run: read_head,
        needs: Needs::DEFAULT.disk(Disk::Gpt).timeout_s(40).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-verify-prp",
        about: "pattern write/read/verify over PRP lists (page-aligned and not, MSI-X and polled); the kernel's nvme driver reads the same pattern",
        run: verify_prp,
        needs: Needs::DEFAULT.timeout_s(90).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-verify-qd32",
        about: "pattern write/read/verify at queue depth 32 across 2 I/O queues",
        run: verify_qd32,
        needs: Needs::DEFAULT.timeout_s(120).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-queue-threads",
        about: "two threads, each with an I/O queue handle of its own, write and verify at QD8 at once; the kernel's nvme driver reads both patterns",
        run: queue_threads,
        needs: Needs::DEFAULT.timeout_s(90).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-errors",
        about: "past-the-end, zero-length and unaligned transfers fail clearly; the controller keeps working",
        run: errors,
        needs: Needs::DEFAULT.timeout_s(60).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-timeout",
        about: "commands starved by QEMU's I/O throttle time out with an error naming them; a new session works",
        run: timeout,
        needs: Needs::DEFAULT.monitor().timeout_s(90).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-write-read",
        about: "write --seed / --file and read --out move exactly the bytes given, at LBAs the pattern names",
        run: write_read,
        needs: Needs::DEFAULT.timeout_s(60).twin_over_vfio_user(),
    },
    Test {
        name: "nvme-not-a-controller",
        about: "--device naming virtio-net or pci-serial (not bound to vfio-pci): one line saying what it is, its driver untouched",
        run: not_a_controller,
        needs: Needs::DEFAULT.timeout_s(30),
    },
    Test {
        name: "nvme-bench",
        about: "4 KiB random-read IOPS at QD1 and QD32 with completions per interrupt (informative under TCG)",
        run: bench,
        needs: Needs::DEFAULT.timeout_s(120).twin_over_vfio_user(),
    },
];

/// `pcibox nvme --device DEVICE ARGS` (the test's transport), failing on a non-zero exit.
fn pcibox(ctx: &Ctx, args: &[&str]) -> Result<String, crate::test::Failure> {
    let out = run(ctx, args)?.ok()?;
    if !out.stderr.trim().is_empty() {
        println!("pcibox stderr: {}", out.stderr.trim());
    }
    Ok(out.stdout)
}

/// `pcibox nvme --device DEVICE ARGS`, whatever its exit status.
fn run(ctx: &Ctx, args: &[&str]) -> Result<guest::Output, crate::test::Failure> {
    let device = ctx.driver.device(NVME_BDF)?;
    let mut all = vec!["nvme", "--device", &device];
    all.extend_from_slice(args);
    ctx.driver.run(&all)
}

/// `pcibox nvme …` expected to fail: returns its stderr after checking it is one line.
fn pcibox_fails(ctx: &Ctx, args: &[&str]) -> Result<String, crate::test::Failure> {
    let out = run(ctx, args)?;
    ensure!(out.code == Some(1), "`{}` exited with {:?}, expected 1", out.cmdline, out.code);
    let err = out.stderr.trim().to_string();
    ensure!(
        err.starts_with("pcibox: ") && err.lines().count() == 1,
        "`{}`: expected one `pcibox: …` line, got {err:?}",
        out.cmdline
    );
    Ok(err)
}

fn identify(ctx: &Ctx) -> Outcome {
    // What the guest kernel's nvme driver read from the same controller at boot.
    let dir = guest::wait_for("/sys/class/nvme/nvme0/serial", Duration::from_secs(10), || {
        std::path::Path::new("/sys/class/nvme/nvme0/serial").exists()
    })
    .map(|()| "/sys/class/nvme/nvme0");
    let dir = dir?;
    let model = guest::read(format!("{dir}/model"))?.trim().to_string();
    let serial = guest::read(format!("{dir}/serial"))?.trim().to_string();
    ensure_eq!(serial, "pcibox-nvme0", "kernel's serial");
    guest::bind_vfio(NVME_BDF)?;
    let text = pcibox(ctx, &["identify"])?;
    println!("{text}");
    ensure!(
        text.lines().any(|l| l == format!("model:        {model}")),
        "model {model:?} not in:\n{text}"
    );
    ensure!(
        text.lines().any(|l| l == format!("serial:       {serial}")),
        "serial {serial:?} not in:\n{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&pcibox(ctx, &["identify", "--json"])?).context("identify --json")?;
    ensure_eq!(v["controller"]["model"].as_str(), Some(model.as_str()), "json model");
    ensure_eq!(v["controller"]["serial"].as_str(), Some("pcibox-nvme0"), "json serial");
    let vendor = guest::pci_dev(NVME_BDF)?.vendor;
    ensure_eq!(v["controller"]["vid"].as_u64(), Some(vendor as u64), "PCI vendor in IDENTIFY");
    let size: u64 = guest::read("/rig/disk.size")?.trim().parse().context("/rig/disk.size")?;
    ensure_eq!(v["namespace"]["bytes"].as_u64(), Some(size), "namespace bytes vs image size");
    Ok(())
}

/// Our dump, printed with the host's device name, must equal the host's `sfdisk --dump`.
fn compare_sfdisk(ctx: &Ctx) -> Result<String, crate::test::Failure> {
    let theirs = ctx.rig_file("sfdisk.dump")?;
    let name = sfdisk::device_of(&theirs).context("no device: line in /rig/sfdisk.dump")?;
    let ours = pcibox(ctx, &["partitions", "--name", name])?;
    if let Err(e) = sfdisk::compare(&ours, &theirs) {
        fail!("sfdisk --dump differs: {e}\nours:\n{ours}\ntheirs:\n{theirs}");
    }
    println!("{ours}");
    Ok(name.to_string())
}

/// With `--disk PATH` the image is the user's: compare with whatever the host tools said
/// (GPT, MBR, or no table at all).
fn user_disk(ctx: &Ctx) -> Result<bool, crate::test::Failure> {
    if ctx.rig_file("disk.kind")?.trim() != "user" {
        return Ok(false);
    }
    if ctx.rig_file("sfdisk.dump")?.is_empty() {
        let e = pcibox_fails(ctx, &["partitions"])?;
        ensure!(e.contains("no partition table"), "host sfdisk found no table; we said {e:?}");
        return Ok(true);
    }
    let name = compare_sfdisk(ctx)?;
    if ctx.rig_file("sfdisk.dump")?.starts_with("label: gpt") {
        compare_sgdisk(ctx, &name)?;
    }
    Ok(true)
}

fn compare_sgdisk(ctx: &Ctx, name: &str) -> Outcome {
    let theirs = sgdisk::normalize(&ctx.rig_file("sgdisk.p")?);
    let ours = pcibox(ctx, &["partitions", "--sgdisk", "--name", name])?;
    ensure!(ours == theirs, "sgdisk -p differs:\nours:\n{ours}\ntheirs:\n{theirs}");
    Ok(())
}

fn partitions_gpt(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    if user_disk(ctx)? {
        return Ok(());
    }
    let name = compare_sfdisk(ctx)?;
    compare_sgdisk(ctx, &name)?;
    let v: serde_json::Value =
        serde_json::from_str(&pcibox(ctx, &["partitions", "--json"])?).context("partitions --json")?;
    ensure_eq!(v["label"].as_str(), Some("gpt"), "json label");
    ensure_eq!(v["source"].as_str(), Some("primary"), "json header source");
    Ok(())
}

fn partitions_mbr(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    if user_disk(ctx)? {
        return Ok(());
    }
    compare_sfdisk(ctx)?;
    let v: serde_json::Value =
        serde_json::from_str(&pcibox(ctx, &["partitions", "--json"])?).context("partitions --json")?;
    ensure_eq!(v["label"].as_str(), Some("dos"), "json label");
    let logical = v["partitions"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|p| p["number"].as_u64() >= Some(5)).count());
    ensure!(logical >= 2, "expected logical partitions, got {v}");
    Ok(())
}

fn partitions_damaged(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    if user_disk(ctx)? {
        return Ok(());
    }
    let name = compare_sfdisk(ctx)?;
    // sgdisk regenerates a main header from the backup: its entry array right below the
    // first usable LBA (2016 on this image), which we print too.
    compare_sgdisk(ctx, &name)?;
    let out = run(ctx, &["partitions", "--json"])?.ok()?;
    ensure!(
        out.stderr.contains("primary GPT damaged") && out.stderr.contains("header CRC32"),
        "no warning about the damaged primary: {:?}",
        out.stderr
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).context("partitions --json")?;
    ensure_eq!(v["source"].as_str(), Some("backup"), "json header source");
    Ok(())
}

fn read_head(ctx: &Ctx) -> Outcome {
    let head = ctx.rig_bytes("disk-head.bin")?;
    ensure!(head.len() % 512 == 0 && !head.is_empty(), "disk-head.bin: {} bytes", head.len());
    guest::bind_vfio(NVME_BDF)?;
    let count = (head.len() / 512).to_string();
    pcibox(ctx, &["read", "0", &count, "--out", "/tmp/head.bin"])?;
    let ours = std::fs::read("/tmp/head.bin").context("/tmp/head.bin")?;
    ensure!(ours == head, "first {} bytes differ from the host image", head.len());
    Ok(())
}

fn verify_json(ctx: &Ctx, args: &[&str]) -> Result<serde_json::Value, crate::test::Failure> {
    let mut all = args.to_vec();
    all.push("--json");
    let text = pcibox(ctx, &all)?;
    let v: serde_json::Value = serde_json::from_str(&text).context("verify --json")?;
    println!("verify {}: {v}", args.join(" "));
    Ok(v)
}

/// Rebinds the controller to the guest kernel's nvme driver and returns its block device.
fn back_to_kernel(ctx: &Ctx) -> Result<String, crate::test::Failure> {
    ctx.driver.release(NVME_BDF)?;
    guest::unbind(NVME_BDF)?;
    guest::write("/sys/bus/pci/drivers/nvme/bind", NVME_BDF)?;
    let mut found = None;
    guest::wait_for("a /sys/block/nvme*n1 disk", Duration::from_secs(15), || {
        found = std::fs::read_dir("/sys/block").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| n.starts_with("nvme") && n.ends_with("n1"))
        });
        found.is_some()
    })?;
    let name = found.context("no nvme disk")?;
    let dev = format!("/dev/{name}");
    // The node can exist a moment before the disk answers (ENXIO): wait until it reads.
    guest::wait_for(&format!("{dev} to be readable"), Duration::from_secs(15), || {
        use std::io::Read;
        let mut b = [0u8; 512];
        std::fs::File::open(&dev).and_then(|mut f| f.read_exact(&mut b)).is_ok()
    })?;
    Ok(dev)
}

fn verify_prp(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    // 1000 blocks = 500 KiB: one command with a 124-entry PRP list (mdts allowing), or several.
    let v = verify_json(ctx, &["verify", "100", "1000", "--seed", "7", "--yes"])?;
    ensure_eq!(v["read"]["bytes"].as_u64(), Some(512_000), "bytes read");
    // Data starting mid-page: PRP1 has an offset, every later entry is page aligned.
    verify_json(ctx, &["verify", "3000", "777", "--seed", "8", "--offset", "1028", "--yes"])?;
    // Polled completions, several commands of 17 blocks each (PRP1 + PRP2, no list).
    let p = verify_json(ctx, &["--polled", "verify", "6000", "300", "--seed", "9", "--blocks-per-cmd", "17", "--qd", "4", "--yes"])?;
    ensure_eq!(p["interrupts"].as_bool(), Some(false), "polled mode");
    ensure_eq!(p["read"]["interrupts"].as_u64(), Some(0), "interrupts while polled");
    ensure!(v["interrupts"].as_bool() == Some(true), "MSI-X mode expected by default: {v}");
    ensure!(v["read"]["interrupts"].as_u64() > Some(0), "no interrupts counted: {v}");
    // The guest kernel's own driver must read the same pattern back.
    let dev = back_to_kernel(ctx)?;
    let data = std::fs::read(&dev).context(&dev)?;
    for (lba, count, seed) in [(100u64, 1000u64, 7u64), (3000, 777, 8), (6000, 300, 9)] {
        let bytes = &data[lba as usize * 512..(lba + count) as usize * 512];
        if let Some(i) = pattern::first_mismatch(seed, lba, 512, bytes) {
            fail!("{dev}: LBA {} does not hold the pattern pcibox wrote", lba + i);
        }
    }
    Ok(())
}

fn verify_qd32(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    // 4096 blocks (2 MiB) in 4 KiB commands: 512 writes and 512 reads, 32 in flight on 2 queues.
    let v = verify_json(ctx, &[
        "--queues", "2", "verify", "0", "4096", "--seed", "32", "--qd", "32", "--blocks-per-cmd", "8", "--yes",
    ])?;
    ensure_eq!(v["queues"].as_u64(), Some(2), "I/O queues");
    ensure_eq!(v["read"]["commands"].as_u64(), Some(512), "read commands");
    ensure_eq!(v["write"]["commands"].as_u64(), Some(512), "write commands");
    ensure!(v["read"]["max_in_flight"].as_u64() == Some(32), "queue depth never reached 32: {v}");
    // Same at QD32 with polling and 24 KiB commands (a PRP list each) starting mid-page.
    let p = verify_json(ctx, &[
        "--queues", "2", "--polled", "verify", "8192", "3000", "--seed", "33", "--qd", "32", "--blocks-per-cmd", "48", "--offset", "2048",
        "--yes",
    ])?;
    ensure!(p["write"]["max_in_flight"].as_u64() >= Some(16), "polled depth: {p}");
    Ok(())
}

/// One thread's share of `queue_threads`: `blocks` blocks at `lba` written with the pattern of
/// `seed` (8 blocks per command, 8 in flight) and read back into a second buffer.
fn queue_worker(q: &mut IoQueue, seed: u64, lba: u64, blocks: u64) -> Result<(RunStats, RunStats), String> {
    let chain = |e: Error| pcibox_kit::Chain(&e).to_string();
    let len = blocks as usize * 512;
    let out = q.alloc_buffer(len).map_err(chain)?;
    let back = q.alloc_buffer(len).map_err(chain)?;
    let mut data = vec![0u8; len];
    pattern::fill(seed, lba, 512, &mut data);
    out.write(0, &data).map_err(|e| pcibox_kit::Chain(&e).to_string())?;
    let t = |kind| Transfer::new(kind, lba, blocks).blocks_per_cmd(8).depth(8);
    let w = q.transfer_dma(t(OpKind::Write), &out).map_err(chain)?;
    let r = q.transfer_dma(t(OpKind::Read), &back).map_err(chain)?;
    match pattern::first_mismatch(seed, lba, 512, &back.to_vec()) {
        None => Ok((w, r)),
        Some(i) => Err(format!("queue {}: LBA {} read back differs", q.qid(), lba + i)),
    }
}

fn queue_threads(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    let device = ctx.driver.open(NVME_BDF)?;
    let opts = Options { io_queues: 2, ..Options::default() };
    let mut ctrl = Controller::new(device, &opts).context("controller")?;
    let queues = ctrl.take_io_queues();
    ensure_eq!(queues.len(), 2, "queue handles");
    ensure_eq!(ctrl.io_queues(), 0, "queues left in the controller");
    // 2048 blocks (1 MiB) per thread: 256 writes and 256 reads each, both threads at once.
    let ranges = [(41u64, 7000u64), (42, 9100)];
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let workers: Vec<_> = queues
        .into_iter()
        .zip(ranges)
        .map(|(mut q, (seed, lba))| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let t0 = std::time::Instant::now();
                let r = queue_worker(&mut q, seed, lba, 2048);
                (q, t0, std::time::Instant::now(), r)
            })
        })
        .collect();
    let mut spans = Vec::new();
    for w in workers {
        let (q, t0, t1, r) = w.join().map_err(|_| crate::test::Failure::new("queue thread panicked"))?;
        let (wr, rd) = r.map_err(crate::test::Failure::new)?;
        println!(
            "queue {} (vector {:?}): write {} commands {} interrupts, read {} commands {} interrupts, {:?}",
            q.qid(), q.vector(), wr.completions, wr.interrupts, rd.completions, rd.interrupts, t1 - t0
        );
        ensure_eq!((wr.completions, rd.completions), (256, 256), "commands on queue {}", q.qid());
        ensure!(rd.max_in_flight == 8, "queue {}: depth 8 never reached: {rd:?}", q.qid());
        ensure!(q.vector().is_some() && rd.interrupts > 0, "queue {}: no MSI-X on its own vector", q.qid());
        spans.push((t0, t1));
    }
    ensure!(spans[0].0 < spans[1].1 && spans[1].0 < spans[0].1, "the two threads never ran at the same time");
    ensure!(ctrl.stats().completions >= 1024, "controller counters: {:?}", ctrl.stats());
    drop(ctrl);
    // The guest kernel's own driver reads what the two queues wrote.
    let dev = back_to_kernel(ctx)?;
    let data = std::fs::read(&dev).context(&dev)?;
    for (seed, lba) in ranges {
        let bytes = &data[lba as usize * 512..(lba as usize + 2048) * 512];
        if let Some(i) = pattern::first_mismatch(seed, lba, 512, bytes) {
            fail!("{dev}: LBA {} does not hold the pattern queue thread {seed} wrote", lba + i);
        }
    }
    Ok(())
}

fn errors(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    let cap: u64 = serde_json::from_str::<serde_json::Value>(&pcibox(ctx, &["identify", "--json"])?)
        .context("identify --json")?["namespace"]["blocks"]
        .as_u64()
        .context("namespace blocks")?;
    let past = cap.to_string();
    // The CLI: one clear line each.
    let e = pcibox_fails(ctx, &["read", &past, "1"])?;
    ensure!(e.contains("past the end of namespace 1"), "{e}");
    let e = pcibox_fails(ctx, &["read", &past, "1", "--unchecked"])?;
    ensure!(e.contains("READ") && e.contains("LBA Out of Range"), "{e}");
    let e = pcibox_fails(ctx, &["read", "0", "0"])?;
    ensure!(e.contains("zero-length"), "{e}");
    let e = pcibox_fails(ctx, &["verify", "0", "8", "--offset", "2", "--yes"])?;
    ensure!(e.contains("unaligned") && e.contains("dword"), "{e}");
    println!("CLI errors are one line each");

    // The library: the same errors on one controller, which keeps working after each.
    let device = ctx.driver.open(NVME_BDF)?;
    let mut ctrl = Controller::new(device, &Options::default()).context("controller")?;
    let buf = ctrl.alloc_buffer(64 * 1024).context("buffer")?;
    let check = |ctrl: &mut Controller, what: &str, r: pcibox_nvme::Result<pcibox_nvme::RunStats>, want: fn(&Error) -> bool| {
        match r {
            Err(e) if want(&e) => {
                println!("{what}: {}", pcibox_kit::Chain(&e));
                // Still usable: a verified write + read right after.
                let mut data = vec![0u8; 8192];
                pattern::fill(5, 64, 512, &mut data);
                ctrl.write(64, &data).context("write after error")?;
                let mut back = vec![0u8; 8192];
                ctrl.read(64, &mut back).context("read after error")?;
                ensure!(back == data, "data differs after {what}");
                Ok(())
            }
            other => Err(crate::test::Failure::new(format!("{what}: unexpected {other:?}"))),
        }
    };
    let r = ctrl.transfer_dma(Transfer::new(OpKind::Read, cap - 2, 4).blocks_per_cmd(8), &buf);
    check(&mut ctrl, "past the end", r, |e| matches!(e, Error::OutOfRange { .. }))?;
    ctrl.set_bounds_check(false);
    let r = ctrl.transfer_dma(Transfer::new(OpKind::Read, cap, 1).blocks_per_cmd(8), &buf);
    check(&mut ctrl, "past the end, unchecked", r, |e| {
        matches!(e, Error::Status { command: "READ", status, .. } if status.name() == "LBA Out of Range")
    })?;
    ctrl.set_bounds_check(true);
    let r = ctrl.transfer_dma(Transfer::new(OpKind::Write, 0, 0).blocks_per_cmd(8), &buf);
    check(&mut ctrl, "zero length", r, |e| matches!(e, Error::ZeroLength))?;
    let r = ctrl.transfer_dma(Transfer::new(OpKind::Write, 0, 8).offset(3).blocks_per_cmd(8), &buf);
    check(&mut ctrl, "unaligned buffer", r, |e| matches!(e, Error::Unaligned(_)))?;
    let r = ctrl.transfer_dma(Transfer::new(OpKind::Read, 0, 200).blocks_per_cmd(8).depth(4), &buf);
    check(&mut ctrl, "buffer too small", r, |e| matches!(e, Error::BufferTooSmall { .. }))?;
    let mut odd = vec![0u8; 700];
    match ctrl.read(0, &mut odd) {
        Err(Error::Unaligned(m)) => println!("partial block: {m}"),
        other => fail!("partial block: unexpected {other:?}"),
    }
    Ok(())
}

fn bench(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    // Global options, then bench's own.
    for (extra, threads) in [
        (&[][..], &[][..]),
        (&["--queues", "2"][..], &[][..]),
        (&["--queues", "2"][..], &["--threads", "2"][..]),
        (&["--polled"][..], &[][..]),
    ] {
        let mut args = extra.to_vec();
        args.extend_from_slice(&["bench", "--seconds", "3", "--qd", "1,32"]);
        args.extend_from_slice(threads);
        let text = pcibox(ctx, &args)?;
        println!("{text}");
        args.push("--json");
        args[extra.len() + 2] = "1";
        let v: serde_json::Value = serde_json::from_str(&pcibox(ctx, &args)?).context("bench --json")?;
        let rows = v["results"].as_array().context("results")?;
        ensure_eq!(rows.len(), 2, "one row per queue depth");
        for r in rows {
            ensure!(r["iops"].as_f64().is_some_and(|x| x > 0.0), "no I/O completed: {r}");
            if !threads.is_empty() {
                // Two threads, each at the row's depth on its own queue.
                let qd = r["qd"].as_u64().unwrap_or(0);
                ensure_eq!(r["max_in_flight"].as_u64(), Some(2 * qd), "in flight over both threads: {r}");
            }
        }
    }
    Ok(())
}

fn timeout(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    // One I/O per second for the disk: at QD32 most reads wait far longer than 300 ms.
    ctx.monitor("block_set_io_throttle disk0 0 0 0 1 0 0")?;
    let start = std::time::Instant::now();
    let e = pcibox_fails(ctx, &["--timeout-ms", "300", "verify", "0", "256", "--qd", "32", "--blocks-per-cmd", "8", "--yes"])?;
    println!("throttled: {e} (after {:?})", start.elapsed());
    ensure!(
        e.contains("no completion after") && (e.contains("WRITE") || e.contains("READ")),
        "expected a command timeout, got {e}"
    );
    ctx.monitor("block_set_io_throttle disk0 0 0 0 0 0 0")?;
    // A new session resets the controller (CC.EN 1 → 0 → 1) and works.
    let v = verify_json(ctx, &["verify", "0", "256", "--qd", "32", "--blocks-per-cmd", "8", "--yes"])?;
    ensure_eq!(v["read"]["commands"].as_u64(), Some(32), "read commands after the timeout");
    Ok(())
}

fn write_read(ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    // Whatever the disk holds (a user's --disk too): blocks 4990..5080, before anything.
    let read_range = |file: &str| -> Result<Vec<u8>, crate::test::Failure> {
        pcibox(ctx, &["read", "4990", "90", "--out", file])?;
        let data = std::fs::read(file).context(file)?;
        ensure_eq!(data.len(), 90 * 512, "bytes read into {file}");
        Ok(data)
    };
    let before = read_range("/tmp/r0.bin")?;
    // Without --yes (stdin is no terminal here) nothing is written: exit 2, the blocks unchanged.
    let refused = run(ctx, &["write", "5000", "70", "--seed", "11"])?;
    ensure!(
        refused.code == Some(2) && refused.stderr.contains("pass --yes"),
        "write without --yes: {:?} {}",
        refused.code,
        refused.stderr.trim()
    );
    ensure!(read_range("/tmp/r0.bin")? == before, "a refused write changed the disk");
    pcibox(ctx, &["write", "5000", "70", "--seed", "11", "--yes"])?;
    let r1 = read_range("/tmp/r1.bin")?;
    ensure!(r1[..10 * 512] == before[..10 * 512], "blocks before the write changed");
    ensure!(r1[80 * 512..] == before[80 * 512..], "blocks after the write changed");
    ensure_eq!(pattern::first_mismatch(11, 5000, 512, &r1[10 * 512..80 * 512]), None, "pattern");
    // A file round trip, and a file of the wrong size refused.
    let data: Vec<u8> = (0..3 * 512).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write("/tmp/w.bin", &data).context("/tmp/w.bin")?;
    pcibox(ctx, &["write", "9", "3", "--file", "/tmp/w.bin", "--yes"])?;
    pcibox(ctx, &["read", "9", "3", "--out", "/tmp/r2.bin"])?;
    ensure!(std::fs::read("/tmp/r2.bin").context("/tmp/r2.bin")? == data, "file round trip differs");
    let e = pcibox_fails(ctx, &["write", "9", "4", "--file", "/tmp/w.bin", "--yes"])?;
    ensure!(e.contains("1536 bytes"), "{e}");
    let hex = pcibox(ctx, &["read", "9", "1"])?;
    ensure!(hex.starts_with("00001200: 00 07 0e 15"), "hex dump: {}", hex.lines().next().unwrap_or(""));
    Ok(())
}

/// Devices that are not NVMe controllers, left bound to whatever the kernel gave them: the
/// answer names the class and IDs sysfs shows (instead of asking for a `pcibox claim`), even for
/// a write with --yes, and leaves the device as it was.
fn not_a_controller(_ctx: &Ctx) -> Outcome {
    for bdf in [VIRTIO_NET_BDF, PCI_SERIAL_BDF] {
        let before = guest::pci_dev(bdf)?;
        let device = format!("vfio:{bdf}");
        for args in [&["identify"][..], &["write", "0", "8", "--seed", "1", "--yes"]] {
            let mut all = vec!["nvme", "--device", &device];
            all.extend_from_slice(args);
            let out = guest::run("/bin/pcibox", &all)?;
            let err = out.stderr.trim();
            println!("{}: {err}", out.cmdline);
            ensure!(out.code == Some(1), "`{}` exited with {:?}", out.cmdline, out.code);
            let want = format!("pcibox: {bdf} is not an NVMe controller (class {}", before.class_code());
            ensure!(err.starts_with(&want) && err.lines().count() == 1, "expected {want:?}…, got {err:?}");
            let ids = format!("device {:04x}:{:04x}", before.vendor, before.device);
            ensure!(err.contains(&ids) && !err.contains("claim"), "{err}");
        }
        ensure_eq!(guest::pci_dev(bdf)?, before, "{bdf} after the refusals");
    }
    Ok(())
}

//! Guest tests of the `kit` area: the driver kit on the Linux VFIO backend
//! against QEMU's nvme (`0000:00:04.0`) and e1000e (`0000:00:05.0`).
//! See docs/kit.md and docs/vfio.md.

mod e1000e_min;
mod nvme_min;

use crate::guest::{self, E1000E_BDF, NVME_BDF};
use crate::test::{Context, Ctx, Failure, Needs, Outcome, Test};
use crate::{ensure, ensure_eq, fail};
use nvme_min::{Admin, IdentifyController, CNS_CONTROLLER, OP_IDENTIFY};
use pcibox_kit::{Device, IrqKind};
use pcibox_sysfs::Sysfs;
use pcibox_vfio::{Bdf, Claims};
use std::time::{Duration, Instant};

pub const TESTS: &[Test] = &[
    Test {
        name: "kit-nvme-config",
        about: "nvme: config space read through the kit equals sysfs' config file, byte for byte",
        run: nvme_config,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-e1000e-config",
        about: "e1000e: config space read through the kit equals sysfs' config file, byte for byte",
        run: e1000e_config,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-nvme-bar0",
        about: "nvme: BAR0 through the mapping equals BAR0 through read/write; CAP and VS decode to QEMU's values",
        run: nvme_bar0,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-e1000e-bar0",
        about: "e1000e: BAR0 mapped equals trapped; STATUS shows link up, full duplex, 1000 Mb/s, and follows `set_link`",
        run: e1000e_bar0,
        needs: Needs::DEFAULT.monitor(),
    },
    Test {
        name: "kit-nvme-msix-identify",
        about: "nvme: IDENTIFY lands in a DMA buffer and its completion fires MSI-X vector 0's eventfd",
        run: nvme_msix_identify,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-nvme-msix-mask",
        about: "nvme: a masked MSI-X vector does not wake the driver; unmasked it fires again",
        run: nvme_msix_mask,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-nvme-intx",
        about: "nvme, MSI-X off: INTx fires, stays masked until the driver's unmask (EOI), then fires again",
        run: nvme_intx,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-nvme-reset",
        about: "nvme: Device::reset disables the controller; interrupts and DMA set up through the kit survive it",
        run: nvme_reset,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-nvme-dma-unmapped",
        about: "nvme: a command pointed at a never-mapped IOVA is blocked by the IOMMU (DMAR fault in dmesg)",
        run: nvme_dma_unmapped,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-nvme-reopen",
        about: "nvme: 20 x open, MSI-X IDENTIFY, teardown — no fd, mapping or locked-memory leak",
        run: nvme_reopen,
        needs: Needs::DEFAULT.timeout_s(60),
    },
    Test {
        name: "kit-e1000e-reopen",
        about: "e1000e: 20 x open, MSI-X interrupt with throttling, quiesce, teardown — no leak, no QEMU abort",
        run: e1000e_reopen,
        needs: Needs::DEFAULT.timeout_s(60),
    },
    Test {
        name: "kit-claim-release",
        about: "`pcibox claim`/`release`: nvme goes to vfio-pci and back to nvme (disk reappears); e1000e back to no driver",
        run: claim_release,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "kit-bad-input",
        about: "missing BDF, device bound to a kernel driver, non-viable group: clear errors, device left as it was",
        run: bad_input,
        needs: Needs::DEFAULT,
    },
];

/// Claims `bdf` for vfio-pci through the backend's own sysfs code.
fn claim(bdf: &str) -> Result<Bdf, Failure> {
    let bdf: Bdf = bdf.parse().context("parsing the BDF")?;
    Claims::default().claim(bdf).context(format!("claiming {bdf}"))?;
    Ok(bdf)
}

fn open(bdf: Bdf) -> Result<Device, Failure> {
    pcibox_vfio::open(bdf).context(format!("opening vfio:{bdf}"))
}

fn claim_open(bdf: &str) -> Result<Device, Failure> {
    open(claim(bdf)?)
}

// ---------------------------------------------------------------- config

fn config_matches_sysfs(bdf: &str) -> Outcome {
    let dev = claim_open(bdf)?;
    let kit = dev.config_bytes().context("reading config space through the kit")?;
    let sysfs = std::fs::read(format!("/sys/bus/pci/devices/{bdf}/config")).context("reading sysfs config")?;
    ensure!(sysfs.len() >= 256, "sysfs config is only {} bytes", sysfs.len());
    ensure!(kit.len() >= 256, "kit config is only {} bytes", kit.len());
    ensure_eq!(kit.len(), sysfs.len(), "config space size, kit vs sysfs");
    let n = kit.len();
    let diffs: Vec<String> = (0..n)
        .filter(|&i| kit[i] != sysfs[i])
        .map(|i| format!("{i:#x}: kit {:#04x} sysfs {:#04x}", kit[i], sysfs[i]))
        .collect();
    ensure!(diffs.is_empty(), "{} bytes differ: {}", diffs.len(), diffs.join(", "));
    // The header's identity fields through every access width.
    ensure_eq!(dev.config_read16(0)?, u16::from_le_bytes([sysfs[0], sysfs[1]]), "vendor");
    ensure_eq!(dev.config_read32(8)?, u32::from_le_bytes([sysfs[8], sysfs[9], sysfs[10], sysfs[11]]), "class/revision");
    ensure_eq!(dev.config_read8(0x0e)?, sysfs[0x0e], "header type");
    // The pci crate's capability walk over the kit's snapshot agrees with
    // what VFIO says about MSI-X.
    let cs = dev.config_space()?;
    let off = dev.find_capability(pci::cap_id::MSIX)?.context("no MSI-X capability")?;
    let msix = pci::MsixRepr::parse(cs.as_bytes(), off.into())?;
    let vfio = dev.irq_info(IrqKind::Msix)?;
    ensure_eq!(u32::from(msix.table_size), vfio.count, "MSI-X table size (pci walk) vs VFIO IRQ info");
    let table_end = u64::from(msix.table_offset) + 16 * u64::from(msix.table_size);
    let bar = dev.region_info(msix.table_bir.into())?;
    ensure!(table_end <= bar.size, "MSI-X table ends at {table_end:#x}, past BAR{} ({:#x})", msix.table_bir, bar.size);
    println!(
        "kit: {bdf}: MSI-X cap at {off:#x}, {} vectors in BAR{} at {:#x}; BAR{} mmap areas {:?}, msix_mappable {}",
        msix.table_size, msix.table_bir, msix.table_offset, msix.table_bir, bar.mmap_areas, bar.msix_mappable
    );
    // Checked offsets.
    ensure!(dev.config_read32(0x3).is_err(), "a misaligned read was accepted");
    ensure!(dev.config_read8(dev.config_len()).is_err(), "a read past the end was accepted");
    Ok(())
}

fn nvme_config(_: &Ctx) -> Outcome {
    config_matches_sysfs(NVME_BDF)
}

fn e1000e_config(_: &Ctx) -> Outcome {
    config_matches_sysfs(E1000E_BDF)
}

// ---------------------------------------------------------------- BAR0

/// Compares every 32-bit word of `len` bytes of BAR0 through the mapping
/// and through the read/write path, skipping the words at `skip` (registers
/// with read side effects).
fn compare_paths(dev: &Device, len: u64, skip: &[u64]) -> Result<usize, Failure> {
    let mapped = dev.region(0).context("opening BAR0 (mapped)")?;
    let trapped = dev.region_unmapped(0).context("opening BAR0 (read/write)")?;
    ensure!(mapped.is_mapped_at(0), "BAR0 offset 0 is not mapped: areas {:?}", mapped.mapped_ranges());
    ensure!(!trapped.is_mapped_at(0), "the unmapped region has a mapping");
    let mut compared = 0;
    for off in (0..len.min(mapped.size())).step_by(4) {
        if skip.contains(&off) {
            continue;
        }
        let a = mapped.read32(off).context(format!("mapped read at {off:#x}"))?;
        let b = trapped.read32(off).context(format!("trapped read at {off:#x}"))?;
        ensure_eq!(a, b, "BAR0 word at {off:#x}, mapped vs read/write");
        compared += 1;
    }
    Ok(compared)
}

fn nvme_bar0(_: &Ctx) -> Outcome {
    let dev = claim_open(NVME_BDF)?;
    dev.enable_memory_and_bus_master()?;
    // The controller registers (doorbells read as 0 and have no side effects).
    compare_paths(&dev, 0x1000, &[])?;
    let bar = dev.region(0)?;
    let trapped = dev.region_unmapped(0)?;
    let cap = bar.read64(nvme_min::CAP)?;
    ensure_eq!(cap, trapped.read64(nvme_min::CAP)?, "CAP, one 64-bit access each way");
    ensure_eq!(cap as u32, bar.read32(nvme_min::CAP)?, "CAP low half");
    ensure_eq!((cap >> 32) as u32, bar.read32(nvme_min::CAP + 4)?, "CAP high half");
    // QEMU 7.2's nvme model: MQES 0x7ff, CQR, DSTRD 0, NVM command set,
    // MPSMIN 0 (4 KiB); version 1.4.
    ensure_eq!(cap & 0xffff, 0x7ff, "CAP.MQES");
    ensure_eq!(cap >> 16 & 1, 1, "CAP.CQR");
    ensure_eq!(cap >> 32 & 0xf, 0, "CAP.DSTRD");
    ensure_eq!(cap >> 37 & 1, 1, "CAP.CSS (NVM command set)");
    ensure_eq!(cap >> 48 & 0xf, 0, "CAP.MPSMIN");
    let vs = bar.read32(nvme_min::VS)?;
    ensure_eq!(vs, 0x0001_0400, "VS (NVMe 1.4.0)");
    // 8- and 16-bit reads agree with the 32-bit view.
    ensure_eq!(u32::from(bar.read16(nvme_min::VS + 2)?), vs >> 16, "VS.MJR/MNR by 16-bit read");
    ensure_eq!(u32::from(bar.read8(nvme_min::VS + 1)?), vs >> 8 & 0xff, "VS.MNR by 8-bit read");
    ensure!(bar.read32(bar.size()).is_err(), "a read past BAR0 was accepted");
    // What the mapping buys: the same 32-bit register read both ways.
    let time = |r: &pcibox_kit::Region| -> Result<Duration, Failure> {
        let t = Instant::now();
        for _ in 0..2000 {
            r.read32(nvme_min::VS)?;
        }
        Ok(t.elapsed() / 2000)
    };
    let (m, t) = (time(&bar)?, time(&trapped)?);
    println!(
        "kit: BAR0 32-bit read: mapped {m:?}, read/write path {t:?} (x{:.1}; TCG guest)",
        t.as_secs_f64() / m.as_secs_f64().max(1e-12)
    );
    Ok(())
}

fn e1000e_bar0(ctx: &Ctx) -> Outcome {
    use e1000e_min::*;
    let dev = claim_open(E1000E_BDF)?;
    dev.enable_memory_and_bus_master()?;
    // Everything up to the interrupt registers (ICR clears on read).
    compare_paths(&dev, 0x100, &[ICR])?;
    let bar = dev.region(0)?;
    let status = bar.read32(STATUS)?;
    ensure!(status & STATUS_LU != 0, "STATUS.LU (link up) clear with the slirp link up: {status:#x}");
    ensure!(status & STATUS_FD != 0, "STATUS.FD (full duplex) clear: {status:#x}");
    ensure_eq!(status >> 6 & 3, 2, "STATUS.SPEED (2 = 1000 Mb/s)");
    ctx.monitor("set_link n0 off")?;
    let down = bar.read32(STATUS)?;
    ensure!(down & STATUS_LU == 0, "STATUS.LU still set after `set_link n0 off`: {down:#x}");
    ctx.monitor("set_link n0 on")?;
    // Link-up goes through the PHY's auto-negotiation (a timer in QEMU).
    let start = Instant::now();
    let mut up = bar.read32(STATUS)?;
    while up & STATUS_LU == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        up = bar.read32(STATUS)?;
    }
    ensure!(up & STATUS_LU != 0, "STATUS.LU still clear 5 s after `set_link n0 on`: {up:#x}");
    println!("kit: e1000e STATUS {status:#x}, link down {down:#x}, up again after {:?}", start.elapsed());
    Ok(())
}

// ---------------------------------------------------------------- interrupts + DMA

/// Sends IDENTIFY (controller) into a fresh buffer; returns the buffer.
fn identify(dev: &Device, admin: &mut Admin) -> Result<(pcibox_kit::DmaBuffer, u16), Failure> {
    let buf = dev.alloc_dma(4096).context("allocating the IDENTIFY buffer")?;
    buf.fill(0, 4096, 0xa5)?;
    let cid = admin.submit(OP_IDENTIFY, 0, buf.iova(), CNS_CONTROLLER)?;
    Ok((buf, cid))
}

fn check_identify(buf: &pcibox_kit::DmaBuffer, bar_vs: u32) -> Outcome {
    buf.sync_for_cpu();
    let id = IdentifyController::parse(&buf.to_vec())?;
    ensure_eq!(id.vid, 0x1b36, "IDENTIFY VID");
    ensure_eq!(id.serial.as_str(), "pcibox-nvme0", "IDENTIFY serial (QEMU -device nvme,serial=…)");
    ensure_eq!(id.model.as_str(), "QEMU NVMe Ctrl", "IDENTIFY model");
    ensure_eq!(id.ver, bar_vs, "IDENTIFY VER vs the VS register");
    Ok(())
}

fn nvme_msix_identify(_: &Ctx) -> Outcome {
    // What the kernel's nvme driver saw, before we take the device away.
    let fw_kernel = guest::read("/sys/class/nvme/nvme0/firmware_rev").ok();
    let dev = claim_open(NVME_BDF)?;
    let info = dev.irq_info(IrqKind::Msix)?;
    ensure!(info.count >= 1 && info.eventfd, "MSI-X info {info:?}");
    let irqs = dev.enable_interrupts(IrqKind::Msix, info.count)?;
    let mut admin = Admin::enable(&dev, dev.region(0)?)?;
    let vs = admin.bar.read32(nvme_min::VS)?;
    let v0 = irqs.vector(0).context("vector 0")?;
    ensure_eq!(v0.wait(Some(Duration::from_millis(50)))?, 0, "vector 0 fired before any command");
    let (buf, cid) = identify(&dev, &mut admin)?;
    let t = Instant::now();
    let n = v0.wait(Some(Duration::from_secs(5)))?;
    ensure!(n > 0, "MSI-X vector 0 did not fire within 5 s of IDENTIFY");
    let latency = t.elapsed();
    let c = admin.reap(true)?;
    ensure_eq!(c, nvme_min::Completion { cid, status: 0 }, "IDENTIFY completion");
    check_identify(&buf, vs)?;
    if let Some(fw) = fw_kernel {
        let id = IdentifyController::parse(&buf.to_vec())?;
        ensure_eq!(id.firmware, fw, "firmware revision, kit IDENTIFY vs the kernel driver's sysfs");
    }
    // The other vectors stayed quiet.
    for v in irqs.vectors().iter().skip(1) {
        ensure_eq!(v.poll()?, 0, "vector {} fired", v.index());
    }
    ensure_eq!(v0.count(), n, "vector 0 count");
    println!("kit: IDENTIFY via MSI-X vector 0 of {}: interrupt after {latency:?}", info.count);
    admin.disable()
}

fn nvme_msix_mask(_: &Ctx) -> Outcome {
    let dev = claim_open(NVME_BDF)?;
    // vfio-pci offers a mask action for INTx only; the backend masks an
    // MSI-X vector by detaching its eventfd (docs/vfio.md).
    ensure!(!dev.irq_info(IrqKind::Msix)?.maskable, "vfio-pci reports MSI-X as maskable");
    ensure!(dev.irq_info(IrqKind::Intx)?.maskable, "vfio-pci reports INTx as not maskable");
    let irqs = dev.enable_interrupts(IrqKind::Msix, 1)?;
    let v0 = irqs.vector(0).context("vector 0")?;
    let mut admin = Admin::enable(&dev, dev.region(0)?)?;
    v0.mask()?;
    ensure!(v0.is_masked(), "mask() did not stick");
    let (_buf, cid) = identify(&dev, &mut admin)?;
    // The command completes (visible in memory) but nobody is woken.
    let c = admin.reap(true)?;
    ensure_eq!(c.cid, cid, "completion cid");
    let woke = v0.wait(Some(Duration::from_millis(500)))?;
    ensure_eq!(woke, 0, "signals on a masked vector");
    v0.unmask()?;
    // A message held pending while masked may be delivered now; drain it.
    let pending = v0.wait(Some(Duration::from_millis(200)))?;
    let (_buf2, cid2) = identify(&dev, &mut admin)?;
    let n = v0.wait(Some(Duration::from_secs(5)))?;
    ensure!(n > 0, "the unmasked vector did not fire for the next command");
    ensure_eq!(admin.reap(true)?.cid, cid2, "second completion cid");
    println!("kit: masked vector stayed quiet; {pending} pending signal(s) delivered on unmask");
    admin.disable()
}

fn nvme_intx(_: &Ctx) -> Outcome {
    let dev = claim_open(NVME_BDF)?;
    let info = dev.irq_info(IrqKind::Intx)?;
    ensure!(info.count == 1 && info.automasked, "INTx info {info:?}");
    let irqs = dev.enable_interrupts(IrqKind::Intx, 1)?;
    let v = irqs.vector(0).context("INTx vector")?;
    let mut admin = Admin::enable(&dev, dev.region(0)?)?;
    // 1. A completion raises INTx.
    let (_b1, cid1) = identify(&dev, &mut admin)?;
    ensure!(v.wait(Some(Duration::from_secs(5)))? > 0, "INTx did not fire for the first command");
    ensure_eq!(admin.reap(true)?.cid, cid1, "first completion");
    // 2. Handled (CQ head written) but no EOI yet: the line is masked, so a
    //    second completion must not wake us.
    let (_b2, cid2) = identify(&dev, &mut admin)?;
    ensure_eq!(admin.reap(false)?.cid, cid2, "second completion");
    ensure_eq!(v.wait(Some(Duration::from_millis(500)))?, 0, "INTx signals before the unmask (EOI)");
    // 3. The EOI re-arms the line, which is still asserted: it fires.
    v.unmask()?;
    ensure!(v.wait(Some(Duration::from_secs(5)))? > 0, "INTx did not fire after the unmask");
    admin.ring_cq_head()?;
    v.unmask()?;
    // 4. And keeps working.
    let (_b3, cid3) = identify(&dev, &mut admin)?;
    ensure!(v.wait(Some(Duration::from_secs(5)))? > 0, "INTx did not fire for the third command");
    ensure_eq!(admin.reap(true)?.cid, cid3, "third completion");
    v.unmask()?;
    ensure_eq!(v.count(), 3, "INTx signals in total");
    admin.disable()
}

fn nvme_reset(_: &Ctx) -> Outcome {
    let dev = claim_open(NVME_BDF)?;
    let irqs = dev.enable_interrupts(IrqKind::Msix, 1)?;
    let v0 = irqs.vector(0).context("vector 0")?;
    let admin = Admin::enable(&dev, dev.region(0)?)?;
    ensure_eq!(admin.bar.read32(nvme_min::CSTS)? & 1, 1, "CSTS.RDY before the reset");
    dev.reset().context("resetting the device")?;
    // The function reset disables the controller; vfio-pci saves and
    // restores config space around it (bus master stays on), and the kit's
    // interrupt and DMA setup stay.
    let bar = dev.region(0)?;
    ensure_eq!(bar.read32(nvme_min::CC)?, 0, "CC after the reset");
    ensure_eq!(bar.read32(nvme_min::CSTS)? & 1, 0, "CSTS.RDY after the reset");
    let cmd = dev.config_read16(pcibox_kit::COMMAND)?;
    ensure!(cmd & pcibox_kit::COMMAND_BUS_MASTER != 0, "bus master not restored after the reset: {cmd:#x}");
    ensure_eq!(dev.enabled_interrupts(), Some(IrqKind::Msix), "interrupts after the reset");
    drop(admin);
    let mut admin = Admin::enable(&dev, bar)?;
    let vs = admin.bar.read32(nvme_min::VS)?;
    let (buf, cid) = identify(&dev, &mut admin)?;
    ensure!(v0.wait(Some(Duration::from_secs(5)))? > 0, "MSI-X vector 0 did not fire after the reset");
    ensure_eq!(admin.reap(true)?.cid, cid, "completion after the reset");
    check_identify(&buf, vs)?;
    admin.disable()
}

/// An IOVA nothing is ever mapped at (inside the IOMMU's range).
const NEVER_MAPPED: u64 = 0x4000_0000;

fn nvme_dma_unmapped(_: &Ctx) -> Outcome {
    let dev = claim_open(NVME_BDF)?;
    let mut admin = Admin::enable(&dev, dev.region(0)?)?;
    let decoy = dev.alloc_dma(4096)?;
    decoy.fill(0, 4096, 0x5a)?;
    ensure!(
        !(decoy.iova()..decoy.iova() + 4096).contains(&NEVER_MAPPED),
        "the allocator handed out the test's unmapped IOVA"
    );
    let mark = guest::dmesg_mark()?;
    let cid = admin.submit(OP_IDENTIFY, 0, NEVER_MAPPED, CNS_CONTROLLER)?;
    let c = admin.reap(true)?;
    ensure_eq!(c.cid, cid, "completion of the blocked command");
    // The fault is reported asynchronously; give the kernel a moment.
    let needle = format!("{NEVER_MAPPED:x}");
    let start = Instant::now();
    let fault = loop {
        let new = mark.new_lines()?;
        if let Some(line) = new.iter().find(|l| l.contains("DMAR") && l.contains("fault addr") && l.contains(&needle)) {
            break line.clone();
        }
        if start.elapsed() > Duration::from_secs(3) {
            fail!("no DMAR fault for {NEVER_MAPPED:#x} in dmesg; new lines: {new:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure!(decoy.to_vec().iter().all(|&b| b == 0x5a), "a mapped buffer changed");
    println!("kit: blocked: {fault} (QEMU completion status {:#x})", c.status);
    admin.disable()
}

// ---------------------------------------------------------------- teardown / re-open

/// Open fds, mappings and locked memory (kB; VFIO type1 accounts pinned
/// DMA pages there) of this process.
fn resources() -> Result<(usize, usize, u64), Failure> {
    let fds = std::fs::read_dir("/proc/self/fd").context("/proc/self/fd")?.count();
    let maps = std::fs::read_to_string("/proc/self/maps").context("/proc/self/maps")?.lines().count();
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let locked = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Ok((fds, maps, locked))
}

fn reopen(bdf: &str, round: fn(&Device) -> Outcome) -> Outcome {
    let bdf = claim(bdf)?;
    let mut baseline = None;
    let t = Instant::now();
    for i in 0..20 {
        {
            let dev = open(bdf).context(format!("round {i}"))?;
            round(&dev).context(format!("round {i}"))?;
        }
        let now = resources()?;
        match baseline {
            None => baseline = Some(now),
            Some(b) => ensure_eq!(now, b, "round {i}: (fds, mappings, locked kB) vs after round 0"),
        }
    }
    let (fds, maps, locked) = baseline.context("no rounds ran")?;
    println!(
        "kit: 20 rounds in {:?}; steady {fds} fds, {maps} mappings, {locked} kB locked",
        t.elapsed()
    );
    Ok(())
}

fn nvme_round(dev: &Device) -> Outcome {
    let irqs = dev.enable_interrupts(IrqKind::Msix, 1)?;
    let mut admin = Admin::enable(dev, dev.region(0)?)?;
    let vs = admin.bar.read32(nvme_min::VS)?;
    let (buf, cid) = identify(dev, &mut admin)?;
    ensure!(irqs.vector(0).context("vector 0")?.wait(Some(Duration::from_secs(5)))? > 0, "no MSI-X");
    ensure_eq!(admin.reap(true)?.cid, cid, "completion");
    check_identify(&buf, vs)?;
    ensure!(dev.dma_mapping_count() == 3, "{} DMA mappings live, expected 3", dev.dma_mapping_count());
    // VFIO type1 accounts pinned DMA pages as locked memory: the leak check
    // after the round is meaningful only if they show up here.
    let (_, _, locked) = resources()?;
    ensure!(locked >= 12, "only {locked} kB locked with 3 pages mapped for DMA");
    admin.disable()
}

fn nvme_reopen(_: &Ctx) -> Outcome {
    reopen(NVME_BDF, nvme_round)
}

fn e1000e_reopen(_: &Ctx) -> Outcome {
    reopen(E1000E_BDF, e1000e_min::msix_round)
}

// ---------------------------------------------------------------- bad input

fn bad_input(_: &Ctx) -> Outcome {
    // 1. No such device: a typed error from open, a one-line CLI error.
    let missing: Bdf = "0000:00:11.0".parse()?;
    match pcibox_vfio::open(missing) {
        Err(pcibox_vfio::Error::Sysfs(pcibox_sysfs::Error::NoDevice { addr })) if addr == missing => {}
        other => fail!("opening a missing BDF: {:?}", other.map(|_| "a device")),
    }
    let out = guest::run("/bin/pcibox", &["claim", "0000:00:11.0"])?;
    ensure!(out.code == Some(1), "`pcibox claim` of a missing BDF exited {:?}", out.code);
    ensure!(
        out.stderr.lines().count() == 1 && out.stderr.contains("no such PCI device"),
        "stderr: {:?}",
        out.stderr
    );
    // 2. Still bound to its kernel driver: refused, nothing touched.
    let nvme: Bdf = NVME_BDF.parse()?;
    let before = guest::pci_dev(NVME_BDF)?;
    ensure_eq!(before.driver.as_deref(), Some("nvme"), "nvme's driver at boot");
    match pcibox_vfio::open(nvme) {
        Err(pcibox_vfio::Error::NotClaimed { driver, .. }) => {
            ensure_eq!(driver.as_deref(), Some("nvme"), "driver named in the error")
        }
        other => fail!("opening a device bound to nvme: {:?}", other.map(|_| "a device")),
    }
    ensure_eq!(guest::pci_dev(NVME_BDF)?, before, "the device after the refused open");
    ensure!(std::path::Path::new("/dev/nvme0n1").exists(), "/dev/nvme0n1 vanished");
    // 3. A device already open (its group is busy): a clear error, and the
    //    first handle keeps working.
    let first = claim_open(E1000E_BDF)?;
    match pcibox_vfio::open(first_bdf(E1000E_BDF)?) {
        Err(e @ pcibox_vfio::Error::Vfio { .. }) => {
            let msg = e.to_string();
            ensure!(msg.contains(E1000E_BDF) && msg.contains("/dev/vfio/"), "second open: {msg}");
        }
        other => fail!("a second open of an open device: {:?}", other.map(|_| "a device")),
    }
    ensure!(first.region(0)?.read32(e1000e_min::STATUS)? != u32::MAX, "the first handle stopped working");
    drop(first);
    // 4. A group that is not viable.
    non_viable_group()?;
    // 5. Malformed addresses.
    for bad in ["0000:00:04", "00:20.0", "vfio:00:04.0", ""] {
        ensure!(bad.parse::<Bdf>().is_err(), "{bad:?} parsed as a BDF");
    }
    Ok(())
}

fn first_bdf(s: &str) -> Result<Bdf, Failure> {
    s.parse().context("parsing the BDF")
}

/// The `pcibox` CLI's claim and release: the previous driver comes back.
fn claim_release(_: &Ctx) -> Outcome {
    let pcibox = |args: &[&str]| -> Result<String, Failure> { Ok(guest::run("/bin/pcibox", args)?.ok()?.stdout) };
    ensure_eq!(guest::pci_dev(NVME_BDF)?.driver.as_deref(), Some("nvme"), "nvme's driver at boot");
    let out = pcibox(&["claim", NVME_BDF])?;
    ensure!(out.contains("bound to vfio-pci (was nvme)"), "claim said {out:?}");
    ensure_eq!(guest::pci_dev(NVME_BDF)?.driver.as_deref(), Some("vfio-pci"), "driver after claim");
    let again = pcibox(&["claim", NVME_BDF])?;
    ensure!(again.contains("already bound to vfio-pci"), "second claim said {again:?}");
    // Usable in between.
    drop(open(first_bdf(NVME_BDF)?)?);
    let out = pcibox(&["release", NVME_BDF])?;
    ensure!(out.contains("released to nvme"), "release said {out:?}");
    ensure_eq!(guest::pci_dev(NVME_BDF)?.driver.as_deref(), Some("nvme"), "driver after release");
    guest::wait_for("/dev/nvme0n1 to come back", Duration::from_secs(10), || {
        std::path::Path::new("/dev/nvme0n1").exists()
    })?;
    let r = guest::run("/bin/pcibox", &["release", NVME_BDF])?;
    ensure!(r.code == Some(1) && r.stderr.contains("not vfio-pci"), "releasing an unclaimed device: {r:?}");
    // A device without a driver goes back to none.
    ensure_eq!(guest::pci_dev(E1000E_BDF)?.driver, None, "e1000e's driver at boot");
    let out = pcibox(&["claim", E1000E_BDF])?;
    ensure!(out.contains("(was unbound)"), "claim said {out:?}");
    let out = pcibox(&["release", E1000E_BDF])?;
    ensure!(out.contains("released to no driver"), "release said {out:?}");
    ensure_eq!(guest::pci_dev(E1000E_BDF)?.driver, None, "e1000e's driver after release");
    Ok(())
}

/// Finds a device whose IOMMU group has another member bound to a kernel
/// driver, claims it, and checks that open says the group is not viable.
fn non_viable_group() -> Outcome {
    let sysfs = Sysfs::default();
    let mut candidates = Vec::new();
    let functions = sysfs.functions().context("listing PCI devices")?;
    for &bdf in &functions {
        let Ok(Some(group)) = sysfs.iommu_group(bdf) else { continue };
        let dev = guest::pci_dev(&bdf.to_string())?;
        if dev.driver.is_none() && !pcibox_vfio::group_blockers(&sysfs, bdf).is_empty() {
            candidates.push((bdf, group));
        }
    }
    let Some(&(bdf, group)) = candidates.first() else {
        let groups: Vec<String> = functions
            .iter()
            .map(|&a| format!("{a} in {:?}: {:?}", sysfs.iommu_group(a).ok().flatten(), sysfs.group_members(a)))
            .collect();
        fail!("no driverless device shares a group with a bound one; groups: {}", groups.join("; "));
    };
    let members_before = sysfs.group_members(bdf);
    claim(&bdf.to_string())?;
    let result = pcibox_vfio::open(bdf);
    match &result {
        Err(pcibox_vfio::Error::GroupNotViable { group: g, blockers, .. }) => {
            ensure_eq!(*g, group, "group in the error");
            ensure!(!blockers.is_empty(), "no blockers named");
            println!("kit: {}", result.as_ref().err().map(|e| e.to_string()).unwrap_or_default());
        }
        Err(e) => fail!("opening {bdf} in a non-viable group: unexpected error {}", pcibox_kit::Chain(e)),
        Ok(_) => fail!("opening {bdf} in a non-viable group succeeded"),
    }
    Claims::default().release(bdf).context(format!("releasing {bdf}"))?;
    ensure_eq!(sysfs.group_members(bdf), members_before, "group {group} members and drivers afterwards");
    Ok(())
}

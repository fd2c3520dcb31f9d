//! The rig's own guest tests: the VM is what the contract says (devices, IOMMU, vfio-pci, the
//! monitor channel, the disk images and their host-side facts), plus hidden self-tests proving
//! that a failing test fails and a hanging one is reported HUNG.

use crate::guest::{self, E1000E_BDF, NVME_BDF, PCI_SERIAL_BDF, PCI_TESTDEV_BDF, VIRTIO_NET_BDF};
use crate::test::{Context, Ctx, Disk, Expect, Needs, Outcome, Test};
use crate::{ensure, ensure_eq, fail};
use std::path::Path;
use std::time::Duration;

pub const TESTS: &[Test] = &[
    Test {
        name: "rig-boot",
        about: "devices at their fixed addresses and IOMMU groups, vfio modules loaded, /bin/pcibox runs",
        run: boot,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "rig-vfio-bind",
        about: "nvme and e1000e bind to vfio-pci, each in its own IOMMU group with /dev/vfio/N",
        run: vfio_bind,
        needs: Needs::DEFAULT,
    },
    Test {
        name: "rig-monitor",
        about: "QEMU monitor round trips: `info pci` shows the guest's BAR; `set_link n0` flips e1000e STATUS.LU",
        run: monitor,
        needs: Needs::DEFAULT.monitor(),
    },
    Test {
        name: "rig-disk-gpt",
        about: "the GPT image's host-side sfdisk facts match the guest kernel's partitions and bytes",
        run: disk_gpt,
        needs: Needs::DEFAULT.disk(Disk::Gpt),
    },
    Test {
        name: "rig-disk-mbr",
        about: "the MBR image (extended + logical) host-side facts match the guest kernel's view",
        run: disk_mbr,
        needs: Needs::DEFAULT.disk(Disk::Mbr),
    },
    Test {
        name: "rig-disk-damaged-gpt",
        about: "GPT with a corrupt primary header: host tools recover from the backup; what the guest kernel sees",
        run: disk_damaged_gpt,
        needs: Needs::DEFAULT.disk(Disk::DamagedGpt).own_disk(),
    },
    Test {
        name: "rig-selftest-fail",
        about: "self-test: a test returning an error must be reported FAIL",
        run: selftest_fail,
        needs: Needs::DEFAULT.self_test(Expect::Fail),
    },
    Test {
        name: "rig-selftest-panic",
        about: "self-test: a panicking test must be reported FAIL",
        run: selftest_panic,
        needs: Needs::DEFAULT.self_test(Expect::Fail),
    },
    Test {
        name: "rig-selftest-abort",
        about: "self-test: a test process killed by a signal (no result line) must be reported FAIL",
        run: selftest_abort,
        needs: Needs::DEFAULT.self_test(Expect::Fail),
    },
    Test {
        name: "rig-selftest-hang",
        about: "self-test: a test that never returns must be reported HUNG",
        run: selftest_hang,
        needs: Needs::DEFAULT.timeout_s(3).self_test(Expect::Hung),
    },
];

/// (bdf, vendor, device, what)
const DEVICES: &[(&str, u16, u16, &str)] = &[
    (NVME_BDF, 0x1b36, 0x0010, "QEMU nvme"),
    (E1000E_BDF, 0x8086, 0x10d3, "QEMU e1000e"),
    (VIRTIO_NET_BDF, 0x1af4, 0x1000, "QEMU virtio-net"),
    (PCI_SERIAL_BDF, 0x1b36, 0x0002, "QEMU pci-serial"),
    (PCI_TESTDEV_BDF, 0x1b36, 0x0005, "QEMU pci-testdev"),
];

const VFIO_MODULES: &[&str] = &["vfio", "vfio_iommu_type1", "vfio_virqfd", "vfio_pci_core", "vfio_pci"];

fn boot(ctx: &Ctx) -> Outcome {
    let cmdline = guest::read("/proc/cmdline")?;
    ensure!(
        cmdline.split_whitespace().any(|w| w == format!("rig.test={}", ctx.test.name)),
        "/proc/cmdline does not name this test: {cmdline}"
    );
    for (bdf, vendor, device, what) in DEVICES {
        let dev = guest::pci_dev(bdf)?;
        ensure_eq!((dev.vendor, dev.device), (*vendor, *device), "{what} at {bdf}: vendor/device");
        ensure!(dev.iommu_group.is_some(), "{what} at {bdf} has no IOMMU group (IOMMU off?)");
    }
    ensure_eq!(guest::pci_dev(NVME_BDF)?.driver.as_deref(), Some("nvme"), "{NVME_BDF} driver at boot");
    ensure_eq!(guest::pci_dev(E1000E_BDF)?.driver, None, "{E1000E_BDF} driver at boot");
    // Endpoints have a group each, except the two functions of slot 7, which share one.
    let group = |bdf| guest::pci_dev(bdf).map(|d| d.iommu_group);
    let (serial, testdev) = (group(PCI_SERIAL_BDF)?, group(PCI_TESTDEV_BDF)?);
    ensure_eq!(serial, testdev, "IOMMU groups of the two slot-7 functions");
    let mut groups = vec![group(NVME_BDF)?, group(E1000E_BDF)?, group(VIRTIO_NET_BDF)?, serial];
    groups.sort();
    groups.dedup();
    ensure_eq!(groups.len(), 4, "distinct IOMMU groups of slots 4, 5, 6, 7");
    let iommus = std::fs::read_dir("/sys/class/iommu").context("/sys/class/iommu")?.count();
    ensure!(iommus > 0, "no IOMMU in /sys/class/iommu");
    for m in VFIO_MODULES {
        ensure!(Path::new(&format!("/sys/module/{m}")).exists(), "module {m} not loaded");
    }
    ensure!(Path::new("/dev/vfio/vfio").exists(), "/dev/vfio/vfio missing");
    let out = guest::run("/bin/pcibox", &["--version"])?.ok()?;
    ensure!(out.stdout.starts_with("pcibox "), "unexpected `pcibox --version`: {:?}", out.stdout);
    Ok(())
}

fn vfio_bind(_: &Ctx) -> Outcome {
    let mut groups = Vec::new();
    for bdf in [NVME_BDF, E1000E_BDF] {
        let group = guest::bind_vfio(bdf)?;
        let dev = guest::pci_dev(bdf)?;
        ensure_eq!(dev.driver.as_deref(), Some("vfio-pci"), "{bdf} driver");
        let node = format!("/dev/vfio/{group}");
        let meta = std::fs::metadata(&node).context(&node)?;
        ensure!(
            std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type()),
            "{node} is not a character device"
        );
        let members: Vec<String> = std::fs::read_dir(format!("/sys/kernel/iommu_groups/{group}/devices"))
            .context(format!("group {group} devices"))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        ensure_eq!(members, vec![bdf.to_owned()], "IOMMU group {group} members");
        groups.push(group);
    }
    ensure!(groups[0] != groups[1], "nvme and e1000e share IOMMU group {}", groups[0]);
    // Binding again is a no-op; the nvme block device is gone while vfio-pci holds it.
    ensure_eq!(guest::bind_vfio(NVME_BDF)?, groups[0], "re-bind group");
    ensure!(
        !Path::new(&format!("/sys/bus/pci/devices/{NVME_BDF}/nvme")).exists(),
        "nvme controller still attached after binding to vfio-pci"
    );
    Ok(())
}

fn monitor(ctx: &Ctx) -> Outcome {
    // The guest kernel assigned BAR0 of the nvme controller; QEMU must report the same address.
    let resource = guest::read(format!("/sys/bus/pci/devices/{NVME_BDF}/resource"))?;
    let bar0 = resource
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().next())
        .context("empty resource file")?;
    let bar0 = u64::from_str_radix(bar0.trim_start_matches("0x"), 16).context("BAR0 start")?;
    ensure!(bar0 != 0, "nvme BAR0 unassigned");
    let info = ctx.monitor("info pci")?;
    let needle = format!("BAR0: 64 bit memory at 0x{bar0:08x}");
    ensure!(
        info.contains(&needle),
        "`info pci` lacks {needle:?}; it said: {}",
        info.chars().take(600).collect::<String>()
    );
    ensure!(
        info.contains("PCI device 1b36:0010"),
        "`info pci` does not list the NVMe controller 1b36:0010: {}",
        info.chars().take(600).collect::<String>()
    );
    // A command with an effect the guest can see: e1000e's STATUS.LU (BAR0 + 0x8, bit 1)
    // follows `set_link n0 off|on`. The e1000e has no guest driver, so /dev/mem may read it.
    let status = e1000e_status_reader()?;
    ensure!(status()? & STATUS_LU != 0, "e1000e link down before set_link");
    let answer = ctx.monitor("set_link n0 off")?;
    ensure!(answer.trim().is_empty(), "set_link n0 off answered {answer:?}");
    ensure!(status()? & STATUS_LU == 0, "e1000e STATUS.LU still set after set_link n0 off");
    ctx.monitor("set_link n0 on")?;
    // The link comes back after QEMU's autonegotiation delay.
    guest::wait_for("STATUS.LU after set_link n0 on", Duration::from_secs(5), || {
        status().map(|s| s & STATUS_LU != 0).unwrap_or(false)
    })?;
    // An unknown command answers with QEMU's own complaint, not silence.
    let bogus = ctx.monitor("pcibox-no-such-command")?;
    ensure!(bogus.contains("unknown command"), "unexpected answer to a bogus command: {bogus:?}");
    Ok(())
}

/// e1000e STATUS register: link up.
const STATUS_LU: u32 = 1 << 1;

/// Reads e1000e's STATUS register (BAR0 + 0x8) through busybox `devmem` (/dev/mem).
fn e1000e_status_reader() -> Result<impl Fn() -> Result<u32, crate::test::Failure>, crate::test::Failure> {
    let res = guest::read(format!("/sys/bus/pci/devices/{E1000E_BDF}/resource"))?;
    let start = res.split_whitespace().next().context("empty e1000e resource file")?;
    let bar0 = u64::from_str_radix(start.trim_start_matches("0x"), 16).context("e1000e BAR0")?;
    let addr = format!("0x{:x}", bar0 + 0x8);
    Ok(move || {
        let out = guest::run("devmem", &[&addr, "32"])?.ok()?;
        let text = out.stdout.trim();
        u32::from_str_radix(text.trim_start_matches("0x"), 16).context(format!("devmem {addr}: {text:?}"))
    })
}

/// One partition line of `sfdisk --dump`.
#[derive(Debug)]
struct DumpPart {
    number: u32,
    start: u64,
    size: u64,
    ty: String,
}

fn parse_dump(dump: &str) -> Result<(String, Vec<DumpPart>), crate::test::Failure> {
    let mut label = None;
    let mut parts = Vec::new();
    for line in dump.lines() {
        if let Some(l) = line.strip_prefix("label: ") {
            label = Some(l.trim().to_owned());
        }
        let Some((dev, fields)) = line.split_once(" : ") else { continue };
        let digits = dev.trim().len() - dev.trim().trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let number = dev.trim()[dev.trim().len() - digits..].parse().context(format!("partition number in {line:?}"))?;
        let field = |key: &str| {
            fields
                .split(',')
                .map(str::trim)
                .find_map(|f| f.strip_prefix(key).map(|v| v.trim().to_owned()))
        };
        parts.push(DumpPart {
            number,
            start: field("start=").context(format!("start in {line:?}"))?.parse().context("start")?,
            size: field("size=").context(format!("size in {line:?}"))?.parse().context("size")?,
            ty: field("type=").unwrap_or_default(),
        });
    }
    Ok((label.context("no label line in sfdisk.dump")?, parts))
}

/// The guest's NVMe namespace block device (`nvme0n1`).
fn nvme_block() -> Result<String, crate::test::Failure> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .context("/sys/block")?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("nvme"))
        .collect();
    names.sort();
    names.into_iter().next().context("no nvme block device in /sys/block")
}

fn check_disk(ctx: &Ctx, want_label: &str) -> Outcome {
    let kind = ctx.rig_file("disk.kind")?;
    let dump = ctx.rig_file("sfdisk.dump")?;
    if kind.trim() == "user" && dump.is_empty() {
        // A user's disk with no partition table: the guest kernel must find none either.
        let blk = nvme_block()?;
        ensure_eq!(guest_partitions(&blk)?, Vec::<String>::new(), "guest kernel partitions (host sfdisk found no table)");
        compare_head(ctx, &blk)?;
        return Ok(());
    }
    let (label, parts) = parse_dump(&dump)?;
    if kind.trim() != "user" {
        ensure_eq!(label.as_str(), want_label, "host sfdisk label");
    }
    ensure!(!parts.is_empty(), "host sfdisk found no partitions");
    ensure!(!ctx.rig_file("sgdisk.p")?.is_empty(), "empty sgdisk.p");
    let blk = nvme_block()?;
    let mut seen = 0;
    for p in &parts {
        let dir = format!("/sys/block/{blk}/{blk}p{}", p.number);
        ensure!(Path::new(&dir).exists(), "partition {} (host sfdisk) missing in guest: {dir}", p.number);
        seen += 1;
        let start: u64 = guest::read(format!("{dir}/start"))?.parse().context("start")?;
        ensure_eq!(start, p.start, "partition {} start", p.number);
        // The kernel sizes an extended partition as its first 1 KiB, not its span.
        let extended = label == "dos" && matches!(p.ty.as_str(), "5" | "f" | "85");
        if !extended {
            let size: u64 = guest::read(format!("{dir}/size"))?.parse().context("size")?;
            ensure_eq!(size, p.size, "partition {} size", p.number);
        }
    }
    ensure_eq!(guest_partitions(&blk)?.len(), seen, "partition count, guest kernel vs host sfdisk");
    compare_head(ctx, &blk)?;
    Ok(())
}

/// The partitions the guest kernel found on `blk` (`nvme0n1p1`, …), sorted.
fn guest_partitions(blk: &str) -> Result<Vec<String>, crate::test::Failure> {
    let mut parts: Vec<String> = std::fs::read_dir(format!("/sys/block/{blk}"))
        .context(format!("/sys/block/{blk}"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(&format!("{blk}p")))
        .collect();
    parts.sort();
    Ok(parts)
}

/// The bytes the host put into /rig/disk-head.bin must be the bytes the guest reads from the
/// start of the block device. Returns them.
fn compare_head(ctx: &Ctx, blk: &str) -> Result<Vec<u8>, crate::test::Failure> {
    let head = ctx.rig_bytes("disk-head.bin")?;
    let mut buf = vec![0u8; head.len()];
    let dev = format!("/dev/{blk}");
    std::io::Read::read_exact(&mut std::fs::File::open(&dev).context(&dev)?, &mut buf).context(&dev)?;
    if buf != head {
        let at = buf.iter().zip(&head).position(|(a, b)| a != b).unwrap_or(0);
        fail!("{dev}: first {} bytes differ from the host image at offset {at}", head.len());
    }
    Ok(buf)
}

fn disk_gpt(ctx: &Ctx) -> Outcome {
    check_disk(ctx, "gpt")
}

fn disk_mbr(ctx: &Ctx) -> Outcome {
    check_disk(ctx, "dos")
}

/// Host tools (libfdisk, gdisk) recover the table from the backup header; the guest kernel,
/// booted without `gpt`, does not read the backup once the primary fails its CRC and shows no
/// partitions. The bytes the guest reads carry the zeroed CRC.
fn disk_damaged_gpt(ctx: &Ctx) -> Outcome {
    if ctx.rig_file("disk.kind")?.trim() != "damaged-gpt" {
        fail!("needs the rig's damaged-gpt image, not {:?}", ctx.rig_file("disk.kind")?);
    }
    let (label, parts) = parse_dump(&ctx.rig_file("sfdisk.dump")?)?;
    ensure_eq!((label.as_str(), parts.len()), ("gpt", 3), "host sfdisk (recovering from the backup)");
    let sgdisk = ctx.rig_file("sgdisk.p")?;
    ensure!(sgdisk.contains("corrupt GPT"), "sgdisk -p did not report the corrupt header: {sgdisk}");
    let blk = nvme_block()?;
    ensure_eq!(guest_partitions(&blk)?, Vec::<String>::new(), "guest kernel partitions");
    let head = compare_head(ctx, &blk)?;
    ensure_eq!(head.get(512..520), Some(&b"EFI PART"[..]), "primary header signature");
    ensure_eq!(head.get(528..532), Some(&[0u8; 4][..]), "primary header CRC (zeroed by the host)");
    Ok(())
}

fn selftest_fail(_: &Ctx) -> Outcome {
    let _ = guest::read("/nonexistent/pcibox-selftest")?;
    fail!("reading a nonexistent file succeeded")
}

fn selftest_panic(_: &Ctx) -> Outcome {
    let v: Vec<u8> = Vec::new();
    let _ = v[1];
    Ok(())
}

fn selftest_abort(_: &Ctx) -> Outcome {
    std::process::abort()
}

fn selftest_hang(_: &Ctx) -> Outcome {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::parse_dump;

    #[test]
    fn parses_sfdisk_dump() {
        let dump = "label: dos\nlabel-id: 0x1\ndevice: /x/mbr.img\nunit: sectors\n\n\
            /x/mbr.img1 : start=        2048, size=        8192, type=83\n\
            /x/mbr.img2 : start=       10240, size=       40960, type=5\n\
            /x/mbr.img5 : start=       12288, size=        4096, type=83\n";
        let (label, parts) = parse_dump(dump).expect("parse");
        assert_eq!(label, "dos");
        assert_eq!(parts.len(), 3);
        assert_eq!((parts[2].number, parts[2].start, parts[2].size), (5, 12288, 4096));
        assert_eq!(parts[1].ty, "5");
        assert!(parse_dump("no label\n").is_err());
    }
}

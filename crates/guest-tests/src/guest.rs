//! Guest utilities: the rig's fixed devices, sysfs, binding to vfio-pci, commands, dmesg.
//!
//! Everything returns `Result<_, Failure>` with the path or command in the message.

// Not every area uses every helper yet.
#![allow(dead_code)]

use crate::test::{Context, Failure};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// QEMU `nvme,serial=pcibox-nvme0` (vendor 1b36, device 0010), bound to the kernel's nvme driver
/// at boot.
pub const NVME_BDF: &str = "0000:00:04.0";
/// QEMU `e1000e` (8086:10d3) on `-netdev user,id=n0`; the guest kernel has no driver for it.
pub const E1000E_BDF: &str = "0000:00:05.0";
/// QEMU `virtio-net-pci` (1af4:1000); virtio_net is not loaded in the guest.
pub const VIRTIO_NET_BDF: &str = "0000:00:06.0";
/// QEMU `pci-serial` (1b36:0002), function 0 of a multifunction slot, bound to 8250_pci.
pub const PCI_SERIAL_BDF: &str = "0000:00:07.0";
/// QEMU `pci-testdev` (1b36:0005), function 1 of that slot: shares its IOMMU group, which is
/// therefore not viable for VFIO while the serial port has its driver.
pub const PCI_TESTDEV_BDF: &str = "0000:00:07.1";

fn dev_path(bdf: &str) -> String {
    format!("/sys/bus/pci/devices/{bdf}")
}

/// Reads a text file, trimmed.
pub fn read(path: impl AsRef<Path>) -> Result<String, Failure> {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .context(path.display())
}

/// Writes a sysfs attribute (one write call, as sysfs wants).
pub fn write(path: impl AsRef<Path>, value: &str) -> Result<(), Failure> {
    let path = path.as_ref();
    std::fs::write(path, value).context(format!("writing {value:?} to {}", path.display()))
}

/// Reads a sysfs hex attribute such as `vendor` (`0x1b36`).
pub fn read_hex(path: impl AsRef<Path>) -> Result<u64, Failure> {
    let path = path.as_ref();
    let text = read(path)?;
    u64::from_str_radix(text.trim_start_matches("0x"), 16)
        .context(format!("{}: {text:?}", path.display()))
}

/// A PCI device as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciDev {
    pub bdf: String,
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    /// The bound driver's name, if any.
    pub driver: Option<String>,
    pub iommu_group: Option<u32>,
}

fn link_name(path: &str) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

impl PciDev {
    /// The class code as `base:sub:prog-if` in hex, e.g. `02:00:00`.
    pub fn class_code(&self) -> String {
        let [_, base, sub, prog_if] = self.class.to_be_bytes();
        format!("{base:02x}:{sub:02x}:{prog_if:02x}")
    }
}

/// Looks up a device in sysfs.
pub fn pci_dev(bdf: &str) -> Result<PciDev, Failure> {
    let dir = dev_path(bdf);
    if !Path::new(&dir).exists() {
        return Err(Failure::new(format!("no PCI device {bdf} ({dir} missing)")));
    }
    let group = match link_name(&format!("{dir}/iommu_group")) {
        Some(g) => Some(g.parse().context(format!("{dir}/iommu_group -> {g:?}"))?),
        None => None,
    };
    Ok(PciDev {
        bdf: bdf.to_owned(),
        vendor: read_hex(format!("{dir}/vendor"))? as u16,
        device: read_hex(format!("{dir}/device"))? as u16,
        class: read_hex(format!("{dir}/class"))? as u32,
        driver: link_name(&format!("{dir}/driver")),
        iommu_group: group,
    })
}

/// Binds `bdf` to vfio-pci (unbinding its current driver, `driver_override` + `drivers_probe`)
/// and returns its IOMMU group number once `/dev/vfio/N` exists.
pub fn bind_vfio(bdf: &str) -> Result<u32, Failure> {
    let dir = dev_path(bdf);
    let dev = pci_dev(bdf)?;
    if dev.driver.as_deref() == Some("vfio-pci") {
        return dev.iommu_group.context(format!("{bdf}: no IOMMU group"));
    }
    if dev.driver.is_some() {
        write(format!("{dir}/driver/unbind"), bdf)?;
    }
    write(format!("{dir}/driver_override"), "vfio-pci")?;
    write("/sys/bus/pci/drivers_probe", bdf)?;
    let dev = pci_dev(bdf)?;
    if dev.driver.as_deref() != Some("vfio-pci") {
        return Err(Failure::new(format!(
            "{bdf}: bound to {:?} after drivers_probe, not vfio-pci",
            dev.driver
        )));
    }
    let group = dev.iommu_group.context(format!("{bdf}: no IOMMU group"))?;
    let node = format!("/dev/vfio/{group}");
    wait_for(&format!("{node} to appear"), Duration::from_secs(2), || {
        Path::new(&node).exists()
    })?;
    Ok(group)
}

/// Unbinds `bdf` from its driver and clears `driver_override` (the device stays driverless).
pub fn unbind(bdf: &str) -> Result<(), Failure> {
    let dir = dev_path(bdf);
    if pci_dev(bdf)?.driver.is_some() {
        write(format!("{dir}/driver/unbind"), bdf)?;
    }
    write(format!("{dir}/driver_override"), "\n")
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<(), Failure> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Failure::new(format!(
                "timed out after {timeout:?} waiting for {what}"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A finished command.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// The exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The output, or a failure naming the command, its status and stderr unless it exited 0.
    pub fn ok(self) -> Result<Output, Failure> {
        if self.code == Some(0) {
            Ok(self)
        } else {
            Err(Failure::new(format!(
                "`{}` exited with {:?}: {}",
                self.cmdline,
                self.code,
                self.stderr.trim()
            )))
        }
    }
}

/// Runs a command to completion, capturing stdout and stderr (no shell involved).
pub fn run(program: &str, args: &[&str]) -> Result<Output, Failure> {
    let cmdline = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new(program)
        .args(args)
        .output()
        .context(format!("running `{cmdline}`"))?;
    Ok(Output {
        cmdline,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The kernel log so far (busybox `dmesg`).
pub fn dmesg() -> Result<String, Failure> {
    Ok(run("dmesg", &[])?.ok()?.stdout)
}

/// A point in the kernel log: `new_lines()` returns what was logged after it (e.g. to look for a
/// `DMAR: … fault addr` line caused by the test's own DMA).
#[derive(Debug, Clone, Copy)]
pub struct DmesgMark(usize);

/// Marks the current end of the kernel log.
pub fn dmesg_mark() -> Result<DmesgMark, Failure> {
    Ok(DmesgMark(dmesg()?.lines().count()))
}

impl DmesgMark {
    /// The kernel log lines logged since the mark.
    pub fn new_lines(&self) -> Result<Vec<String>, Failure> {
        Ok(dmesg()?.lines().skip(self.0).map(str::to_owned).collect())
    }
}

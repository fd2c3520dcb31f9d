//! The guest's initramfs: a base archive (busybox, our static binaries, the vfio modules, /init)
//! built once per run, and a small per-test overlay (`/rig/…`) appended to it.

use super::disk::Facts;
use crate::cpio::Archive;
use std::path::Path;

/// vfio modules in load order (the kernel package ships no modules.dep).
const MODULES: &[&str] = &[
    "virt/lib/irqbypass.ko",
    "drivers/vfio/vfio.ko",
    "drivers/vfio/vfio_iommu_type1.ko",
    "drivers/vfio/vfio_virqfd.ko",
    "drivers/vfio/pci/vfio-pci-core.ko",
    "drivers/vfio/pci/vfio-pci.ko",
];

const BUSYBOX: &str = "/bin/busybox";

/// `/init`: mount the pseudo filesystems, load vfio, run the test named on the kernel command
/// line (`rig.test=NAME`), end the VM through isa-debug-exit with its status.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin
for m in MODULES; do
    insmod /lib/modules/$m.ko || echo "@@rig init: insmod $m failed"
done
test=
for w in $(cat /proc/cmdline); do
    case "$w" in rig.test=*) test="${w#rig.test=}" ;; esac
done
cd /tmp
/bin/pcibox-guest-tests run "$test"
status=$?
# run exits 0 or 1 after printing its result; anything else (a signal, an abort) did not print one.
if [ $status -gt 1 ]; then
    echo "@@rig result fail: pcibox-guest-tests run $test died with status $status"
fi
/bin/pcibox-guest-tests exit $status
echo "@@rig init: isa-debug-exit failed"
poweroff -f
"#;

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The base archive.
pub fn base(bins: &Path, modules: &Path) -> Result<Vec<u8>, String> {
    let mut a = Archive::new();
    for d in ["bin", "dev", "lib", "lib/modules", "proc", "sys", "rig"] {
        a.dir(d, 0o755);
    }
    // Writable by the unprivileged driver of the vfio-user twins (`--out` files).
    a.dir("tmp", 0o1777);
    // The kernel opens /dev/console before /init runs, so the node must be in the archive.
    a.char_dev("dev/console", 0o600, 5, 1);
    a.char_dev("dev/null", 0o666, 1, 3);
    a.file("bin/busybox", 0o755, &read(Path::new(BUSYBOX))?);
    a.symlink("bin/sh", "busybox");
    for bin in ["pcibox", "pcibox-guest-tests"] {
        a.file(&format!("bin/{bin}"), 0o755, &read(&bins.join(bin))?);
    }
    let mut names = Vec::new();
    for m in MODULES {
        let file = Path::new(m)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        a.file(
            &format!("lib/modules/{file}"),
            0o644,
            &read(&modules.join("kernel").join(m))?,
        );
        names.push(file.trim_end_matches(".ko").to_owned());
    }
    a.file(
        "init",
        0o755,
        INIT.replace("MODULES", &names.join(" ")).as_bytes(),
    );
    Ok(a.finish())
}

/// The per-test overlay: the host-side facts about the attached disk, in `/rig/`.
pub fn overlay(test: &str, facts: &Facts) -> Vec<u8> {
    let mut a = Archive::new();
    a.dir("rig", 0o755);
    a.file("rig/test", 0o644, format!("{test}\n").as_bytes());
    for (name, data) in facts.files() {
        a.file(&format!("rig/{name}"), 0o644, data);
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn init_loads_modules_in_order() {
        let init = super::INIT.replace("MODULES", "a b");
        assert!(init.starts_with("#!/bin/busybox sh\n"));
        assert!(init.contains("for m in a b; do"));
    }
}

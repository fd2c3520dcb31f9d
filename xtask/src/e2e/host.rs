//! Host preparation: packages, the static guest binaries, the guest kernel.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages the rig runs (a subset of scripts/test.sh's list; keep both sorted).
const PACKAGES: &[&str] = &["busybox-static", "fdisk", "gdisk", "qemu-system-x86"];

/// The guest target: the host's, linked statically so the binaries run in a bare initramfs.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The metapackage whose dependency names the current cloud kernel.
const KERNEL_META: &str = "linux-image-cloud-amd64";

pub type Error = String;

/// Runs a command, returning stdout, or an error with its stderr.
pub fn output(cmd: &mut Command) -> Result<String, Error> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

/// Installs missing host packages when root; otherwise names them in the error.
pub fn ensure_packages() -> Result<(), Error> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .map(|s| !s.contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "missing host packages {}; run as root or install them",
            missing.join(" ")
        ));
    }
    eprintln!("e2e: installing {}", missing.join(" "));
    output(Command::new("apt-get").args(["update", "-qq"]))?;
    output(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Ok(())
}

/// Builds `pcibox` and `pcibox-guest-tests` statically into `target/guest` (its own target
/// directory: different RUSTFLAGS would otherwise rebuild the host's dependencies each time).
/// Returns the directory holding both binaries.
pub fn build_guest_binaries(root: &Path) -> Result<PathBuf, Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = root.join("target/guest");
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--package",
            "pcibox",
            "--package",
            "pcibox-guest-tests",
        ])
        .args(["--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // No debug info: smaller binaries, a smaller initramfs, a faster boot.
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .status()
        .map_err(|e| format!("cargo build (guest): {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build of the guest binaries failed ({status})"
        ));
    }
    Ok(target_dir.join(TARGET).join("debug"))
}

/// The extracted guest kernel: its image and its modules directory.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub package: String,
    pub vmlinuz: PathBuf,
    pub modules: PathBuf,
}

/// The package `linux-image-cloud-amd64` currently depends on, per apt's lists.
fn current_kernel_package() -> Result<String, Error> {
    let deps = output(Command::new("apt-cache").args(["depends", KERNEL_META]))?;
    deps.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_owned)
        .ok_or_else(|| format!("apt-cache depends {KERNEL_META}: no linux-image dependency"))
}

fn find_kernel(dir: &Path, package: &str) -> Option<Kernel> {
    let version = package.strip_prefix("linux-image-")?;
    let vmlinuz = dir.join(format!("boot/vmlinuz-{version}"));
    let modules = dir.join(format!("lib/modules/{version}"));
    (vmlinuz.is_file() && modules.is_dir()).then(|| Kernel {
        package: package.to_owned(),
        vmlinuz,
        modules,
    })
}

/// Fetches (`apt-get download`) and extracts (`dpkg-deb -x`) the guest kernel into
/// `.rig/kernel/PACKAGE/`, once. Falls back to a cached kernel when apt cannot answer.
pub fn guest_kernel(rig: &Path) -> Result<Kernel, Error> {
    let cache = rig.join("kernel");
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    // A fresh machine may have no apt lists yet: refresh once if we may.
    let current = current_kernel_package().or_else(|e| {
        if is_root() && output(Command::new("apt-get").args(["update", "-qq"])).is_ok() {
            current_kernel_package()
        } else {
            Err(e)
        }
    });
    let package = match current {
        Ok(p) => p,
        Err(e) => {
            // Offline or no apt lists: any kernel already extracted will do.
            let mut cached: Vec<_> = std::fs::read_dir(&cache)
                .map_err(|e| format!("{}: {e}", cache.display()))?
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    find_kernel(&e.path(), &name)
                })
                .collect();
            cached.sort_by(|a, b| a.package.cmp(&b.package));
            return cached.pop().ok_or(e);
        }
    };
    let dir = cache.join(&package);
    if let Some(k) = find_kernel(&dir, &package) {
        return Ok(k);
    }
    eprintln!("e2e: fetching guest kernel {package}");
    let download = |cache: &Path| {
        output(
            Command::new("apt-get")
                .args(["download", "-q", &package])
                .current_dir(cache),
        )
    };
    if let Err(e) = download(&cache) {
        // Stale lists name a version the mirror no longer has: refresh once if we may.
        if !is_root() {
            return Err(e);
        }
        output(Command::new("apt-get").args(["update", "-qq"]))?;
        download(&cache)?;
    }
    let deb = std::fs::read_dir(&cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .map(|n| {
                    n.to_string_lossy().starts_with(&format!("{package}_"))
                        && n.to_string_lossy().ends_with(".deb")
                })
                .unwrap_or(false)
        })
        .ok_or_else(|| format!("apt-get download {package}: no .deb in {}", cache.display()))?;
    // Extract beside, then rename: a concurrent or interrupted run never sees half a tree.
    let tmp = cache.join(format!(".extract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
    let _ = std::fs::remove_file(&deb);
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp); // someone else won the race
    }
    find_kernel(&dir, &package)
        .ok_or_else(|| format!("{}: no vmlinuz or modules after extraction", dir.display()))
}

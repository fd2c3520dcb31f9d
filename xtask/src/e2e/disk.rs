//! Disk images for the NVMe controller, made on the host with sfdisk, and the host-side facts
//! about them that tests compare against (`/rig/` in the guest).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Image kinds (the guest-tests `Disk` names).
pub const KINDS: &[&str] = &["blank", "gpt", "mbr", "damaged-gpt"];

const SIZE: u64 = 64 << 20;

/// How many bytes of the start of the image go to `/rig/disk-head.bin`.
const HEAD: usize = 64 << 10;

const GPT_SCRIPT: &str = "label: gpt
label-id: 6B1F0C39-5D0A-4C1E-9E4B-70C1B0C5A001
first-lba: 2048
start=2048, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=6B1F0C39-5D0A-4C1E-9E4B-70C1B0C5A011, name=\"pcibox-data\"
start=18432, size=8192, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=6B1F0C39-5D0A-4C1E-9E4B-70C1B0C5A012, name=\"pcibox-swap\"
start=26624, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=6B1F0C39-5D0A-4C1E-9E4B-70C1B0C5A013, name=\"pcibox-esp\"
";

const MBR_SCRIPT: &str = "label: dos
label-id: 0x7063b0c5
start=2048, size=16384, type=83, bootable
start=18432, size=81920, type=5
start=20480, size=8192, type=83
start=30720, size=16384, type=82
start=100352, size=8192, type=c
";

/// Creates the image for `kind` under `dir` (recreated each run: cheap and deterministic).
pub fn create(dir: &Path, kind: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dest = dir.join(format!("{kind}.img"));
    // Built under a private name and renamed into place: a concurrent run's VM never opens a
    // half-written image (the content is deterministic, so either version is the same bytes).
    let path = dir.join(format!(".{kind}.img.{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.set_len(SIZE)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    drop(file);
    match kind {
        "blank" => {}
        "gpt" => sfdisk(&path, GPT_SCRIPT)?,
        "mbr" => sfdisk(&path, MBR_SCRIPT)?,
        "damaged-gpt" => {
            sfdisk(&path, GPT_SCRIPT)?;
            // Zero the primary header's CRC32 (LBA 1, offset 16): the header no longer verifies;
            // the backup header at the last LBA is intact.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            f.seek(SeekFrom::Start(512 + 16))
                .and_then(|_| f.write_all(&[0; 4]))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        other => {
            let _ = std::fs::remove_file(&path);
            return Err(format!("unknown disk kind {other:?}"));
        }
    }
    std::fs::rename(&path, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(dest)
}

fn sfdisk(path: &Path, script: &str) -> Result<(), String> {
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("sfdisk: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("sfdisk stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("sfdisk: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sfdisk {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Host-side facts about an image, put into the guest's `/rig/`.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `blank`, `gpt`, `mbr`, `damaged-gpt`, or `user` (`--disk PATH`).
    pub kind: String,
    /// Bytes, as text (`/rig/disk.size`).
    pub size: String,
    /// `sfdisk --dump IMAGE` (stdout; empty if sfdisk found no table) and its stderr.
    pub sfdisk_dump: String,
    pub sfdisk_err: String,
    /// `sgdisk -p IMAGE` (stdout and stderr together).
    pub sgdisk_p: String,
    pub head: Vec<u8>,
}

impl Facts {
    pub fn gather(path: &Path, kind: &str) -> Result<Facts, String> {
        let size = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        let dump = Command::new("sfdisk")
            .arg("--dump")
            .arg(path)
            .output()
            .map_err(|e| format!("sfdisk --dump: {e}"))?;
        let sgdisk = Command::new("sgdisk")
            .arg("-p")
            .arg(path)
            .output()
            .map_err(|e| format!("sgdisk -p: {e}"))?;
        let mut head = vec![0u8; HEAD.min(size as usize)];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // sgdisk's own words (e.g. "invalid main GPT header") matter as much as the table.
        let mut sgdisk_p = String::from_utf8_lossy(&sgdisk.stdout).into_owned();
        sgdisk_p.push_str(&String::from_utf8_lossy(&sgdisk.stderr));
        Ok(Facts {
            kind: kind.to_owned(),
            size: format!("{size}\n"),
            sfdisk_dump: if dump.status.success() {
                String::from_utf8_lossy(&dump.stdout).into_owned()
            } else {
                String::new()
            },
            sfdisk_err: String::from_utf8_lossy(&dump.stderr).into_owned(),
            sgdisk_p,
            head,
        })
    }

    /// `(file name in /rig/, contents)`.
    pub fn files(&self) -> Vec<(&'static str, &[u8])> {
        vec![
            ("disk.kind", self.kind.as_bytes()),
            ("disk.size", self.size.as_bytes()),
            ("sfdisk.dump", self.sfdisk_dump.as_bytes()),
            ("sfdisk.err", self.sfdisk_err.as_bytes()),
            ("sgdisk.p", self.sgdisk_p.as_bytes()),
            ("disk-head.bin", &self.head),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the real sfdisk/sgdisk (scripts/test.sh installs fdisk and gdisk).
    #[test]
    fn images_are_deterministic_and_tools_agree() {
        let dir = std::env::temp_dir().join(format!("xtask-disk-test-{}", std::process::id()));
        let a = create(&dir.join("a"), "gpt").expect("gpt a");
        let b = create(&dir.join("b"), "gpt").expect("gpt b");
        assert_eq!(
            std::fs::read(&a).expect("a"),
            std::fs::read(&b).expect("b"),
            "same script, same bytes"
        );
        let facts = Facts::gather(&a, "gpt").expect("facts");
        assert!(
            facts.sfdisk_dump.contains("label: gpt"),
            "{}",
            facts.sfdisk_dump
        );
        assert_eq!(facts.sfdisk_dump.matches(" : start=").count(), 3);
        assert_eq!(facts.head.len(), HEAD);
        assert_eq!(&facts.head[512..520], b"EFI PART");

        let mbr = Facts::gather(&create(&dir, "mbr").expect("mbr"), "mbr").expect("facts");
        assert!(mbr.sfdisk_dump.contains("label: dos"));
        // primary 1, extended 2, logical 5 and 6, primary 3
        assert_eq!(
            mbr.sfdisk_dump.matches(" : start=").count(),
            5,
            "{}",
            mbr.sfdisk_dump
        );
        assert!(
            mbr.sfdisk_dump.contains("img5 : start=       20480"),
            "{}",
            mbr.sfdisk_dump
        );

        let bad = Facts::gather(
            &create(&dir, "damaged-gpt").expect("damaged"),
            "damaged-gpt",
        )
        .expect("facts");
        assert!(bad.sgdisk_p.contains("corrupt GPT"), "{}", bad.sgdisk_p);
        assert_eq!(&bad.head[528..532], &[0; 4]);

        let blank = Facts::gather(&create(&dir, "blank").expect("blank"), "blank").expect("facts");
        assert!(blank.sfdisk_dump.is_empty() && !blank.sfdisk_err.is_empty());
        assert!(create(&dir, "bogus").is_err());
        for sub in ["a", "b"] {
            let _ = std::fs::remove_file(dir.join(sub).join("gpt.img"));
            let _ = std::fs::remove_dir(dir.join(sub));
        }
        for kind in ["mbr", "damaged-gpt", "blank"] {
            let _ = std::fs::remove_file(dir.join(format!("{kind}.img")));
        }
        let _ = std::fs::remove_dir(&dir);
    }
}

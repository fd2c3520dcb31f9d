//! What the host-tool tests share: finding the real tools, images in a temp dir built by
//! `sfdisk` or `sgdisk`, running a tool on an image, damaging bytes with plain file writes,
//! comparing our text with the tools'.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use partition_table::{read_table, sfdisk, sgdisk, Error, Gpt, SliceSource, Table};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install the fdisk and gdisk packages (scripts/test.sh does)");
}

/// A directory of images, removed on drop.
pub struct Image {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An empty `size`-byte image `name.img` in a fresh temp dir.
pub fn blank(name: &str, size: u64) -> Image {
    let dir = std::env::temp_dir().join(format!("partition-table-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.img"));
    let f = std::fs::File::create(&path).expect("create image");
    f.set_len(size).expect("size image");
    Image { dir, path }
}

/// A `size`-byte image partitioned by `sfdisk` with `script`.
pub fn image(name: &str, size: u64, script: &str) -> Image {
    let img = blank(name, size);
    let mut child = Command::new(tool("sfdisk"))
        .arg("-q")
        .arg(&img.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run sfdisk");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("feed sfdisk");
    assert!(
        child.wait().expect("sfdisk").success(),
        "sfdisk failed on {script}"
    );
    img
}

/// Runs `tool_name ARGS IMG`, whatever its exit status.
pub fn output(tool_name: &str, args: &[&str], img: &Path) -> Output {
    Command::new(tool(tool_name))
        .args(args)
        .arg(img)
        .output()
        .expect("run tool")
}

/// Runs `tool_name ARGS IMG`, which must succeed; its stdout.
pub fn run(tool_name: &str, args: &[&str], img: &Path) -> String {
    let out = output(tool_name, args, img);
    assert!(
        out.status.success(),
        "{tool_name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

pub fn parse(img: &Path) -> Result<Table, Error> {
    let data = std::fs::read(img).expect("read image");
    read_table(&mut SliceSource::new(&data, 512))
}

/// Writes `bytes` at byte offset `at` of the image.
pub fn write_at(img: &Path, at: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open");
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(bytes).expect("write");
}

/// Reads `len` bytes at byte offset `at` of the image.
pub fn read_at(img: &Path, at: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(img).expect("open");
    let mut b = vec![0u8; len];
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.read_exact(&mut b).expect("read");
    b
}

/// Flips bits of one byte: byte `byte` of block `lba` (512-byte blocks).
pub fn damage(img: &Path, lba: u64, byte: usize) {
    let at = lba * 512 + byte as u64;
    let b = read_at(img, at, 1)[0];
    write_at(img, at, &[b ^ 0x5a]);
}

/// Our `sfdisk --dump` text of `table` must equal `theirs` (printed with its device name).
pub fn compare_sfdisk(table: &Table, theirs: &str) -> Result<(), String> {
    let device = sfdisk::device_of(theirs).ok_or("no device: line in sfdisk's dump")?;
    let ours = sfdisk::dump(table, device);
    sfdisk::compare(&ours, theirs)
        .map_err(|e| format!("sfdisk --dump differs: {e}\nours:\n{ours}\ntheirs:\n{theirs}"))
}

/// Our `sgdisk -p` text of `g` on `device` must equal sgdisk's stdout `theirs` (normalized).
pub fn compare_sgdisk(g: &Gpt, device: &Path, theirs: &str) -> Result<(), String> {
    let theirs = sgdisk::normalize(theirs);
    let ours = sgdisk::print(g, &device.to_string_lossy());
    if ours == theirs {
        Ok(())
    } else {
        Err(format!(
            "sgdisk -p differs\nours:\n{ours}\ntheirs:\n{theirs}"
        ))
    }
}

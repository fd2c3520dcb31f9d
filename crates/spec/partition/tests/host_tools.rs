//! Builds disk images with the real `sfdisk` (util-linux) and compares our parse with what
//! `sfdisk --dump` and `sgdisk -p` (gdisk) print for the same image.

use partition_table::gpt::HeaderSource;
use partition_table::{read_table, sfdisk, sgdisk, Error, SliceSource, Table};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install the fdisk and gdisk packages (scripts/test.sh does)");
}

struct Image {
    dir: PathBuf,
    path: PathBuf,
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `size`-byte image partitioned by `sfdisk` with `script`.
fn image(name: &str, size: u64, script: &str) -> Image {
    let dir = std::env::temp_dir().join(format!("partition-table-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.img"));
    let f = std::fs::File::create(&path).expect("create image");
    f.set_len(size).expect("size image");
    drop(f);
    let mut child = Command::new(tool("sfdisk"))
        .arg("-q")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run sfdisk");
    use std::io::Write;
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
    Image { dir, path }
}

fn run(tool_name: &str, args: &[&str], img: &Path) -> String {
    let out = Command::new(tool(tool_name))
        .args(args)
        .arg(img)
        .output()
        .expect("run tool");
    assert!(
        out.status.success(),
        "{tool_name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn parse(img: &Path) -> Result<Table, Error> {
    let data = std::fs::read(img).expect("read image");
    read_table(&mut SliceSource::new(&data, 512))
}

fn check_sfdisk(img: &Path, table: &Table) {
    let theirs = run("sfdisk", &["--dump"], img);
    let device = sfdisk::device_of(&theirs).expect("device line");
    let ours = sfdisk::dump(table, device);
    if let Err(e) = sfdisk::compare(&ours, &theirs) {
        panic!("sfdisk --dump differs: {e}\nours:\n{ours}\ntheirs:\n{theirs}");
    }
}

fn check_sgdisk(img: &Path, table: &Table) {
    let Table::Gpt(g) = table else {
        panic!("not a GPT")
    };
    let theirs = sgdisk::normalize(&run("sgdisk", &["-p"], img));
    let ours = sgdisk::print(g, &img.to_string_lossy());
    assert_eq!(ours, theirs, "sgdisk -p differs");
}

const GPT_SCRIPT: &str = "label: gpt\n\
    size=1MiB, type=L, name=\"root fs\", attrs=\"RequiredPartition GUID:60\"\n\
    size=2MiB, type=U\n\
    size=512KiB, type=S\n\
    size=3MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"data\"\n\
    size=1MiB, type=21686148-6449-6E6F-744E-656564454649\n\
    size=1MiB, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n\
    size=1MiB, type=A19D880F-05FC-4D3B-A006-743F0F84911E\n\
    size=1MiB, type=933AC7E1-2EB4-4F13-B844-0E14E2AEF915\n\
    type=12345678-9ABC-DEF0-1234-56789ABCDEF0, name=\"unknown type\"\n";

#[test]
fn gpt_matches_sfdisk_and_sgdisk() {
    let img = image("gpt", 16 << 20, GPT_SCRIPT);
    let table = parse(&img.path).expect("parse");
    let Table::Gpt(g) = &table else {
        panic!("expected GPT, got {table:?}")
    };
    assert_eq!(g.source, HeaderSource::Primary);
    assert_eq!(g.entries.len(), 9);
    check_sfdisk(&img.path, &table);
    check_sgdisk(&img.path, &table);
}

#[test]
fn short_gpt_table_and_gaps() {
    // 16-entry table; the middle partition deleted leaves a gap in the numbering.
    let img = image(
        "gpt16",
        8 << 20,
        "label: gpt\ntable-length: 16\nsize=1MiB, type=L\nsize=1MiB, type=L\nsize=1MiB, type=L, attrs=\"LegacyBIOSBootable NoBlockIOProtocol\"\n",
    );
    let st = Command::new(tool("sfdisk"))
        .args(["-q", "--delete"])
        .arg(&img.path)
        .arg("2")
        .status()
        .expect("sfdisk --delete");
    assert!(st.success());
    let table = parse(&img.path).expect("parse");
    check_sfdisk(&img.path, &table);
    check_sgdisk(&img.path, &table);
}

#[test]
fn mbr_with_extended_and_logical_matches_sfdisk() {
    let img = image(
        "mbr",
        32 << 20,
        "label: dos\nlabel-id: 0x1234abcd\nsize=2MiB, type=83, bootable\nsize=20MiB, type=5\nsize=3MiB, type=c\nsize=1MiB, type=83\nsize=2MiB, type=82\nsize=4MiB, type=7\n",
    );
    let table = parse(&img.path).expect("parse");
    let Table::Mbr(m) = &table else {
        panic!("expected MBR, got {table:?}")
    };
    assert!(
        m.partitions.iter().filter(|p| p.number >= 5).count() >= 2,
        "{m:?}"
    );
    check_sfdisk(&img.path, &table);
}

fn damage(img: &Path, lba: u64, byte: usize) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("open");
    let at = lba * 512 + byte as u64;
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.read_exact(&mut b).expect("read");
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(&[b[0] ^ 0x5a]).expect("write");
}

#[test]
fn damaged_primary_header_uses_backup() {
    let img = image(
        "gptdmg",
        8 << 20,
        GPT_SCRIPT
            .lines()
            .take(4)
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    );
    damage(&img.path, 1, 60); // inside the disk GUID: header CRC fails
    let table = parse(&img.path).expect("parse");
    let Table::Gpt(g) = &table else {
        panic!("expected GPT")
    };
    assert_eq!(g.source, HeaderSource::Backup);
    assert!(g
        .primary_problem
        .as_deref()
        .unwrap_or("")
        .contains("header CRC32"));
    check_sfdisk(&img.path, &table);
}

#[test]
fn damaged_primary_entries_use_backup_and_both_damaged_fail() {
    let img = image("gptent", 8 << 20, "label: gpt\nsize=1MiB, type=L\n");
    damage(&img.path, 2, 40); // first entry's first LBA: entry CRC fails
    let table = parse(&img.path).expect("parse");
    let Table::Gpt(g) = &table else {
        panic!("expected GPT")
    };
    assert_eq!(g.source, HeaderSource::Backup);
    assert!(g
        .primary_problem
        .as_deref()
        .unwrap_or("")
        .contains("entry array CRC32"));
    check_sfdisk(&img.path, &table);
    // Now the backup header too.
    damage(&img.path, (8 << 20) / 512 - 1, 60);
    match parse(&img.path) {
        Err(Error::GptDamaged { primary, backup }) => {
            assert!(primary.contains("entry array"), "{primary}");
            assert!(backup.contains("header CRC32"), "{backup}");
        }
        other => panic!("expected GptDamaged, got {other:?}"),
    }
}

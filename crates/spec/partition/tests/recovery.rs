//! Every recovery case of the reader against the real tools. Tables are made by `sfdisk` and
//! `sgdisk` (four layouts), damaged with plain file writes (or turned hybrid by `sgdisk -h`),
//! then read by us, by `sfdisk --dump` and by `sgdisk -p`. Where a tool prints the table, our
//! text must be byte-identical to it; where it refuses or prints something else, the case
//! pins what it says and, when we still read the disk, compares with what the tool prints on
//! the image with its protective MBR put back, or on the undamaged image. docs/nvme.md
//! ("Damaged tables") lists the outcomes.

mod common;

use common::{
    blank, compare_sfdisk, compare_sgdisk, damage, image, output, read_at, run, write_at,
};
use partition_table::{read_table, Error, HeaderSource, MbrKind, SliceSource, Table};
use std::path::{Path, PathBuf};

const SIZE: u64 = 8 << 20;

/// A table as one of the real tools lays it out.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// sfdisk's defaults: 128 entries, first usable LBA 2048.
    Sfdisk,
    /// sfdisk with a 16-entry table (first usable LBA still 2048).
    Sfdisk16,
    /// sgdisk's defaults: 128 entries, first usable LBA 34.
    Sgdisk,
    /// sgdisk with a 16-entry table: first usable LBA 6.
    Sgdisk16,
}

impl Layout {
    fn build(self, name: &str) -> common::Image {
        let parts = "size=1MiB, type=L, name=\"root\"\nsize=2MiB, type=S\n";
        match self {
            Layout::Sfdisk => image(name, SIZE, &format!("label: gpt\n{parts}")),
            Layout::Sfdisk16 => image(
                name,
                SIZE,
                &format!("label: gpt\ntable-length: 16\n{parts}"),
            ),
            Layout::Sgdisk | Layout::Sgdisk16 => {
                let img = blank(name, SIZE);
                let mut args = Vec::new();
                if matches!(self, Layout::Sgdisk16) {
                    args.extend(["-S", "16"]);
                }
                args.extend(["-n", "1:0:+1M", "-c", "1:root"]);
                args.extend(["-n", "2:0:+2M", "-t", "2:8200"]);
                run("sgdisk", &args, &img.path);
                img
            }
        }
    }
}

/// One change to a tool-made image.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// A byte of the primary header's disk GUID: its CRC32 fails.
    PrimaryHeader,
    /// A byte of the first primary entry: the array's CRC32 fails.
    PrimaryEntries,
    /// A byte of the backup header's disk GUID.
    BackupHeader,
    /// A byte of the first backup entry.
    BackupEntries,
    /// LBA 0 all zeros: no MBR at all.
    NoMbr,
    /// Only the 55 AA signature cleared.
    NoSignature,
    /// The type byte of the 0xEE entry cleared (the rest of the entry stays).
    NoEeType,
}

/// The MBR of the image before the damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mbr {
    /// The protective MBR the tool wrote with the table.
    Protective,
    /// `sgdisk -h 1`: a hybrid MBR (0xEE entry first, partition 1 next).
    Hybrid,
    /// `sgdisk -h 1:EE`: a hybrid MBR with the 0xEE entry last.
    HybridEeLast,
}

impl Mbr {
    const ALL: [Mbr; 3] = [Mbr::Protective, Mbr::Hybrid, Mbr::HybridEeLast];

    /// Turns the intact image `img` into this kind (sgdisk writes take a second each: once
    /// per layout, not per case).
    fn make(self, img: &Path) {
        let arg = match self {
            Mbr::Protective => return,
            Mbr::Hybrid => "1",
            Mbr::HybridEeLast => "1:EE",
        };
        run("sgdisk", &["-h", arg], img);
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Applies `d` to `img`, whose headers were `primary` and `backup` before any damage.
fn apply(d: Damage, img: &Path, primary: &[u8], backup: &[u8]) {
    match d {
        Damage::PrimaryHeader => damage(img, 1, 60),
        Damage::PrimaryEntries => damage(img, le64(primary, 72), 40),
        Damage::BackupHeader => damage(img, le64(primary, 32), 60),
        Damage::BackupEntries => damage(img, le64(backup, 72), 40),
        Damage::NoMbr => write_at(img, 0, &[0; 512]),
        Damage::NoSignature => write_at(img, 510, &[0, 0]),
        Damage::NoEeType => {
            let mbr = read_at(img, 0, 512);
            let slot = (0..4)
                .find(|i| mbr[446 + 16 * i + 4] == 0xee)
                .expect("a 0xEE entry");
            write_at(img, (446 + 16 * slot + 4) as u64, &[0]);
        }
    }
}

/// What our reader must make of the damaged image.
#[derive(Debug)]
enum Ours {
    /// A GPT from this header, with warnings starting with these texts (in order).
    Gpt(HeaderSource, &'static [&'static str]),
    /// An MBR, with these warnings.
    Dos(&'static [&'static str]),
    /// `Error::GptDamaged`.
    Refused,
}

/// What a real tool does with the damaged image.
#[derive(Debug)]
enum Tool {
    /// It prints the table: ours must be byte-identical.
    Prints,
    /// It says these (stdout or stderr); nothing of ours to compare with.
    Says(&'static [&'static str]),
    /// It says this and prints no table we could compare with; ours must equal what it
    /// prints on the oracle image.
    SaysThen(&'static str, Oracle),
}

/// An image a tool prints the table of, for a case where it does not on the damaged one.
#[derive(Debug, Clone, Copy)]
enum Oracle {
    /// The damaged image with LBA 0 back as the tool made it (a protective MBR).
    ProtectiveMbr,
    /// The image before any damage.
    Intact,
}

#[derive(Debug)]
struct Case {
    name: &'static str,
    mbr: Mbr,
    damage: &'static [Damage],
    ours: Ours,
    sfdisk: Tool,
    sgdisk: Tool,
}

const PRIMARY_HEADER: &str = "primary GPT damaged (header CRC32 mismatch";
const PRIMARY_ENTRIES: &str = "primary GPT damaged (entry array CRC32 mismatch";
const BACKUP_HEADER: &str = "backup GPT damaged (at LBA 16383: header CRC32 mismatch";
const BACKUP_ENTRIES: &str = "backup GPT damaged (at LBA 16383: entry array CRC32 mismatch";
const NO_MBR: &str = "no MBR in LBA 0";
/// sfdisk without a GPT it trusts: the protective MBR as a DOS table.
const SFDISK_PMBR: Tool = Tool::Says(&["label: dos", "type=ee"]);
const SFDISK_NONE: &str = "does not contain a recognized partition table";
const SGDISK_REFUSES: &str = "Invalid partition data!";

use Damage::*;

const CASES: &[Case] = &[
    Case {
        name: "intact",
        mbr: Mbr::Protective,
        damage: &[],
        ours: Ours::Gpt(HeaderSource::Primary, &[]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::Prints,
    },
    Case {
        name: "primary-header",
        mbr: Mbr::Protective,
        damage: &[PrimaryHeader],
        ours: Ours::Gpt(HeaderSource::Backup, &[PRIMARY_HEADER]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::Prints,
    },
    Case {
        name: "primary-entries",
        mbr: Mbr::Protective,
        damage: &[PrimaryEntries],
        ours: Ours::Gpt(HeaderSource::Backup, &[PRIMARY_ENTRIES]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::Prints,
    },
    Case {
        name: "backup-header",
        mbr: Mbr::Protective,
        damage: &[BackupHeader],
        ours: Ours::Gpt(HeaderSource::Primary, &[BACKUP_HEADER]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::Prints,
    },
    Case {
        name: "backup-entries",
        mbr: Mbr::Protective,
        damage: &[BackupEntries],
        ours: Ours::Gpt(HeaderSource::Primary, &[BACKUP_ENTRIES]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::Prints,
    },
    Case {
        name: "both-headers",
        mbr: Mbr::Protective,
        damage: &[PrimaryHeader, BackupHeader],
        ours: Ours::Refused,
        sfdisk: SFDISK_PMBR,
        // sgdisk starts an empty table in memory and prints that.
        sgdisk: Tool::Says(&["Creating new GPT entries in memory."]),
    },
    Case {
        name: "primary-header-backup-entries",
        mbr: Mbr::Protective,
        damage: &[PrimaryHeader, BackupEntries],
        ours: Ours::Refused,
        sfdisk: SFDISK_PMBR,
        // sgdisk prints the backup entries that failed their CRC32.
        sgdisk: Tool::Says(&["Main header: ERROR", "Backup partition table: ERROR"]),
    },
    Case {
        name: "primary-entries-backup-header",
        mbr: Mbr::Protective,
        damage: &[PrimaryEntries, BackupHeader],
        // The primary header is sound and the backup's array matches its CRC32.
        ours: Ours::Gpt(HeaderSource::Primary, &[PRIMARY_ENTRIES, BACKUP_HEADER]),
        sfdisk: Tool::SaysThen("type=ee", Oracle::Intact),
        sgdisk: Tool::Prints,
    },
    Case {
        name: "both-entries",
        mbr: Mbr::Protective,
        damage: &[PrimaryEntries, BackupEntries],
        ours: Ours::Refused,
        sfdisk: SFDISK_PMBR,
        sgdisk: Tool::Says(&[
            "Main partition table: ERROR",
            "Backup partition table: ERROR",
        ]),
    },
    Case {
        name: "no-mbr",
        mbr: Mbr::Protective,
        damage: &[NoMbr],
        ours: Ours::Gpt(HeaderSource::Primary, &[NO_MBR]),
        sfdisk: Tool::SaysThen(SFDISK_NONE, Oracle::ProtectiveMbr),
        sgdisk: Tool::Prints,
    },
    Case {
        name: "no-mbr-signature",
        mbr: Mbr::Protective,
        damage: &[NoSignature],
        ours: Ours::Gpt(HeaderSource::Primary, &[NO_MBR]),
        sfdisk: Tool::SaysThen(SFDISK_NONE, Oracle::ProtectiveMbr),
        sgdisk: Tool::Prints,
    },
    Case {
        name: "no-mbr-primary-header",
        mbr: Mbr::Protective,
        damage: &[NoMbr, PrimaryHeader],
        ours: Ours::Gpt(HeaderSource::Backup, &[PRIMARY_HEADER, NO_MBR]),
        sfdisk: Tool::SaysThen(SFDISK_NONE, Oracle::ProtectiveMbr),
        sgdisk: Tool::SaysThen(SGDISK_REFUSES, Oracle::ProtectiveMbr),
    },
    Case {
        name: "no-ee-entry",
        mbr: Mbr::Protective,
        damage: &[NoEeType],
        ours: Ours::Dos(&["LBA 1 holds a GPT header, ignored"]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::Says(&[SGDISK_REFUSES]),
    },
    Case {
        name: "hybrid",
        mbr: Mbr::Hybrid,
        damage: &[],
        ours: Ours::Gpt(HeaderSource::Primary, &[]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::Prints,
    },
    Case {
        name: "hybrid-ee-last",
        mbr: Mbr::HybridEeLast,
        damage: &[],
        ours: Ours::Gpt(HeaderSource::Primary, &[]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::Prints,
    },
    Case {
        name: "hybrid-primary-header",
        mbr: Mbr::Hybrid,
        damage: &[PrimaryHeader],
        ours: Ours::Gpt(HeaderSource::Backup, &[PRIMARY_HEADER]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::SaysThen(SGDISK_REFUSES, Oracle::ProtectiveMbr),
    },
    Case {
        name: "hybrid-primary-entries",
        mbr: Mbr::HybridEeLast,
        damage: &[PrimaryEntries],
        ours: Ours::Gpt(HeaderSource::Backup, &[PRIMARY_ENTRIES]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::SaysThen(SGDISK_REFUSES, Oracle::ProtectiveMbr),
    },
    Case {
        name: "hybrid-backup-header",
        mbr: Mbr::HybridEeLast,
        damage: &[BackupHeader],
        ours: Ours::Gpt(HeaderSource::Primary, &[BACKUP_HEADER]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::SaysThen(SGDISK_REFUSES, Oracle::ProtectiveMbr),
    },
    Case {
        name: "hybrid-backup-entries",
        mbr: Mbr::Hybrid,
        damage: &[BackupEntries],
        ours: Ours::Gpt(HeaderSource::Primary, &[BACKUP_ENTRIES]),
        sfdisk: Tool::Prints,
        sgdisk: Tool::SaysThen(SGDISK_REFUSES, Oracle::ProtectiveMbr),
    },
];

/// The images of one case.
struct Images {
    /// As the tool made it, with the case's MBR.
    intact: PathBuf,
    /// As the tool made it, with its protective MBR.
    protective: PathBuf,
    damaged: PathBuf,
}

impl Images {
    fn oracle(&self, o: Oracle) -> PathBuf {
        match o {
            Oracle::Intact => self.intact.clone(),
            Oracle::ProtectiveMbr => {
                let path = self.damaged.with_extension("pmbr.img");
                std::fs::copy(&self.damaged, &path).expect("copy image");
                write_at(&path, 0, &read_at(&self.protective, 0, 512));
                path
            }
        }
    }
}

/// The MBR kind our reader must report for `case`'s GPT.
fn mbr_kind(case: &Case) -> MbrKind {
    if case
        .damage
        .iter()
        .any(|d| matches!(d, Damage::NoMbr | Damage::NoSignature))
    {
        return MbrKind::Missing;
    }
    match case.mbr {
        Mbr::Protective => MbrKind::Protective,
        Mbr::Hybrid | Mbr::HybridEeLast => MbrKind::Hybrid,
    }
}

fn check_ours(case: &Case, got: &Result<Table, Error>) -> Result<(), String> {
    let (want, table) = match (&case.ours, got) {
        (Ours::Refused, Err(Error::GptDamaged { .. })) => return Ok(()),
        (Ours::Gpt(source, want), Ok(t @ Table::Gpt(g))) => {
            if g.source != *source {
                return Err(format!(
                    "read the {:?} header, expected {source:?}",
                    g.source
                ));
            }
            if g.mbr != mbr_kind(case) {
                return Err(format!("MBR {:?}, expected {:?}", g.mbr, mbr_kind(case)));
            }
            (*want, t)
        }
        (Ours::Dos(want), Ok(t @ Table::Mbr(_))) => (*want, t),
        (want, got) => return Err(format!("expected {want:?}, read {got:?}")),
    };
    let warnings = table.warnings();
    let matches =
        warnings.len() == want.len() && warnings.iter().zip(want).all(|(w, p)| w.starts_with(p));
    if !matches {
        return Err(format!("warnings {warnings:?}, expected {want:?}…"));
    }
    Ok(())
}

/// Runs `name` (sfdisk or sgdisk) as `tool` expects and compares our reading with it.
fn check_tool(
    name: &str,
    tool: &Tool,
    ours: &Result<Table, Error>,
    imgs: &Images,
) -> Result<(), String> {
    let args: &[&str] = if name == "sfdisk" {
        &["--dump"]
    } else {
        &["-p"]
    };
    let out = output(name, args, &imgs.damaged);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let said = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let (device, theirs) = match tool {
        Tool::Prints => {
            if !out.status.success() {
                return Err(format!("{name} failed:\n{said}"));
            }
            // sgdisk's warnings go to stderr; given both streams (as the guest rig keeps them),
            // `sgdisk::normalize` must still find just the table.
            let theirs = if name == "sgdisk" {
                said.clone()
            } else {
                stdout
            };
            (imgs.damaged.clone(), theirs)
        }
        Tool::Says(texts) => {
            return match texts.iter().find(|t| !said.contains(*t)) {
                None => Ok(()),
                Some(t) => Err(format!("{name} did not say {t:?}:\n{said}")),
            };
        }
        Tool::SaysThen(text, oracle) => {
            if !said.contains(text) {
                return Err(format!("{name} did not say {text:?}:\n{said}"));
            }
            let path = imgs.oracle(*oracle);
            (path.clone(), run(name, args, &path))
        }
    };
    let table = ours.as_ref().map_err(|e| format!("we refused: {e}"))?;
    match (name, table) {
        ("sfdisk", t) => compare_sfdisk(t, &theirs),
        (_, Table::Gpt(g)) => compare_sgdisk(g, &device, &theirs),
        (_, t) => Err(format!("sgdisk printed a GPT, we read {t:?}")),
    }
}

fn check_layout(layout: Layout) {
    let name = format!("{layout:?}").to_lowercase();
    let img = layout.build(&format!("recovery-{name}"));
    let bases = Mbr::ALL.map(|mbr| {
        let path = img.dir.join(format!("intact-{mbr:?}.img"));
        std::fs::copy(&img.path, &path).expect("copy image");
        mbr.make(&path);
        (mbr, path)
    });
    let mut failures = Vec::new();
    for case in CASES {
        let intact = bases
            .iter()
            .find(|(mbr, _)| *mbr == case.mbr)
            .map(|(_, path)| path.clone())
            .expect("a base image per MBR kind");
        let imgs = Images {
            intact,
            protective: img.path.clone(),
            damaged: img.dir.join(format!("{}.img", case.name)),
        };
        std::fs::copy(&imgs.intact, &imgs.damaged).expect("copy image");
        let primary = read_at(&imgs.intact, 512, 512);
        let backup = read_at(&imgs.intact, le64(&primary, 32) * 512, 512);
        for d in case.damage {
            apply(*d, &imgs.damaged, &primary, &backup);
        }
        let data = std::fs::read(&imgs.damaged).expect("read image");
        let ours = read_table(&mut SliceSource::new(&data, 512));
        let results = [
            ("ours", check_ours(case, &ours)),
            ("sfdisk", check_tool("sfdisk", &case.sfdisk, &ours, &imgs)),
            ("sgdisk", check_tool("sgdisk", &case.sgdisk, &ours, &imgs)),
        ];
        for (what, r) in results {
            if let Err(e) = r {
                failures.push(format!("{name}/{} ({what}): {e}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn sfdisk_layout() {
    check_layout(Layout::Sfdisk);
}

#[test]
fn sfdisk_16_entries() {
    check_layout(Layout::Sfdisk16);
}

#[test]
fn sgdisk_layout() {
    check_layout(Layout::Sgdisk);
}

#[test]
fn sgdisk_16_entries() {
    check_layout(Layout::Sgdisk16);
}

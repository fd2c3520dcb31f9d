//! Builds disk images with the real `sfdisk` (util-linux) and compares our parse with what
//! `sfdisk --dump` and `sgdisk -p` (gdisk) print for the same image. Damaged tables are in
//! `recovery.rs`.

mod common;

use common::{compare_sfdisk, compare_sgdisk, image, parse, run, tool};
use partition_table::gpt::HeaderSource;
use partition_table::Table;
use std::path::Path;
use std::process::Command;

fn check_sfdisk(img: &Path, table: &Table) {
    if let Err(e) = compare_sfdisk(table, &run("sfdisk", &["--dump"], img)) {
        panic!("{e}");
    }
}

fn check_sgdisk(img: &Path, table: &Table) {
    let Table::Gpt(g) = table else {
        panic!("not a GPT")
    };
    if let Err(e) = compare_sgdisk(g, img, &run("sgdisk", &["-p"], img)) {
        panic!("{e}");
    }
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

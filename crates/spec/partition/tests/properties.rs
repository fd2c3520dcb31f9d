//! Property tests: built tables read back exactly, single-byte damage to the primary GPT is
//! always recovered from the backup, damage to the backup is reported, a damaged primary
//! array behind a damaged backup header is recovered from the backup's copy, and arbitrary
//! bytes never panic the reader.

use partition_table::gpt::{build_image, HeaderSource};
use partition_table::mbr::{emit_entry, emit_signature, RawEntry};
use partition_table::{read_table, GptEntry, Guid, SliceSource, Table};
use proptest::prelude::*;

fn entries() -> impl Strategy<Value = Vec<GptEntry>> {
    proptest::collection::vec(
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            0u64..200,
            1u64..50,
            any::<u64>(),
            "[a-z ]{0,36}",
        ),
        0..8,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (mut t, u, start, len, attrs, name))| {
                t[0] |= 1; // non-zero type: a used entry
                GptEntry {
                    number: i as u32 * 3 + 1,
                    type_guid: Guid(t),
                    unique_guid: Guid(u),
                    first_lba: 40 + start,
                    last_lba: 40 + start + len,
                    attributes: attrs,
                    name,
                }
            })
            .collect()
    })
}

fn gpt_of(t: Result<Table, partition_table::Error>) -> Result<partition_table::Gpt, TestCaseError> {
    match t {
        Ok(Table::Gpt(g)) => Ok(g),
        other => Err(TestCaseError::fail(format!(
            "expected a GPT, got {other:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn gpt_round_trip_and_recovery(es in entries(), guid in any::<[u8; 16]>(), at in 0usize..(92 + 32 * 128), flip in 1u8..) {
        let mut img = build_image(400, 512, Guid(guid), 32, &es);
        let g = gpt_of(read_table(&mut SliceSource::new(&img, 512)))?;
        prop_assert_eq!(g.source, HeaderSource::Primary);
        prop_assert_eq!(&g.entries, &es);
        prop_assert_eq!(g.header.disk_guid, Guid(guid));
        // Damage one byte of the primary header (LBA 1) or its entry array (LBA 2..).
        let off = if at < 92 { 512 + at } else { 1024 + at - 92 };
        img[off] ^= flip;
        let g2 = gpt_of(read_table(&mut SliceSource::new(&img, 512)))?;
        prop_assert_eq!(g2.source, HeaderSource::Backup);
        prop_assert_eq!(&g2.entries, &es);
        prop_assert!(g2.primary_problem.is_some());
    }

    #[test]
    fn backup_damage_is_reported(es in entries(), at in 0usize..(92 + 32 * 128), flip in 1u8..) {
        // 400 blocks, 32 entries (8 blocks): backup header at 399, its array at 391..399.
        let mut img = build_image(400, 512, Guid([7; 16]), 32, &es);
        let off = if at < 92 { 399 * 512 + at } else { 391 * 512 + at - 92 };
        img[off] ^= flip;
        let g = gpt_of(read_table(&mut SliceSource::new(&img, 512)))?;
        prop_assert_eq!(g.source, HeaderSource::Primary);
        prop_assert_eq!(&g.entries, &es);
        prop_assert!(g.backup_problem.is_some());
        prop_assert!(g.primary_problem.is_none());
    }

    #[test]
    fn primary_array_and_backup_header_damaged(es in entries().prop_filter("a used entry", |e| !e.is_empty()),
                                               at in 0usize..92, entry_byte in 0usize..128, flip in 1u8..) {
        let mut img = build_image(400, 512, Guid([7; 16]), 32, &es);
        // A byte of the first used entry of the primary array (LBA 2), and of the backup header.
        let first = (es[0].number as usize - 1) * 128;
        img[1024 + first + entry_byte] ^= flip;
        img[399 * 512 + at] ^= flip;
        let g = gpt_of(read_table(&mut SliceSource::new(&img, 512)))?;
        // The primary header with the backup's copy of the array, right after the usable range.
        prop_assert_eq!(g.source, HeaderSource::Primary);
        prop_assert_eq!(g.array_lba, g.header.last_usable + 1);
        prop_assert_eq!(&g.entries, &es);
        prop_assert!(g.primary_problem.is_some() && g.backup_problem.is_some());
    }

    #[test]
    fn mbr_chain_round_trip(prims in proptest::collection::vec((1u8..=0xff, any::<bool>(), 1u32..100), 0..3),
                            logicals in proptest::collection::vec((1u8..=0xff, any::<bool>(), 1u32..30), 1..6),
                            id in any::<u32>()) {
        // Layout: primaries at 100 + 100*i, the extended partition at 1000, one EBR per 64 blocks.
        let mut img = vec![0u8; 2000 * 512];
        let mut expect = Vec::new();
        for (i, (kind, boot, size)) in prims.iter().enumerate() {
            let kind = if matches!(kind, 0x05 | 0x0f | 0x85 | 0xee) { 0x83 } else { *kind };
            emit_entry(&mut img[..512], i, RawEntry { boot: if *boot { 0x80 } else { 0 }, kind, start: 100 + 100 * i as u32, sectors: *size });
            expect.push((i as u32 + 1, 100 + 100 * i as u64, *size as u64, kind, *boot));
        }
        emit_entry(&mut img[..512], 3, RawEntry { boot: 0, kind: 0x0f, start: 1000, sectors: 900 });
        expect.push((4, 1000, 900, 0x0f, false));
        emit_signature(&mut img[..512], id);
        for (j, (kind, boot, size)) in logicals.iter().enumerate() {
            let kind = if matches!(kind, 0x05 | 0x0f | 0x85) { 0x83 } else { *kind };
            let ebr = 1000 + 64 * j;
            let s = &mut img[ebr * 512..ebr * 512 + 512];
            emit_entry(s, 0, RawEntry { boot: if *boot { 0x80 } else { 0 }, kind, start: 2, sectors: *size });
            if j + 1 < logicals.len() {
                emit_entry(s, 1, RawEntry { boot: 0, kind: 0x05, start: 64 * (j as u32 + 1), sectors: 64 });
            }
            emit_signature(s, 0);
            expect.push((5 + j as u32, ebr as u64 + 2, *size as u64, kind, *boot));
        }
        let Ok(Table::Mbr(m)) = read_table(&mut SliceSource::new(&img, 512)) else {
            return Err(TestCaseError::fail("not read as MBR"));
        };
        let got: Vec<_> = m.partitions.iter().map(|p| (p.number, p.start, p.sectors, p.kind, p.bootable)).collect();
        prop_assert_eq!(got, expect);
        prop_assert_eq!(m.disk_id, id);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..8192), sig in any::<bool>(), ee in any::<bool>()) {
        let mut data = data;
        if data.len() >= 1024 && sig {
            data[510] = 0x55;
            data[511] = 0xaa;
            if ee { data[446 + 4] = 0xee; data[512..520].copy_from_slice(b"EFI PART"); }
        }
        let _ = read_table(&mut SliceSource::new(&data, 512));
    }
}

#[test]
fn mbr_loop_is_an_error() {
    let mut img = vec![0u8; 64 * 512];
    emit_entry(
        &mut img[..512],
        0,
        RawEntry {
            boot: 0,
            kind: 0x05,
            start: 10,
            sectors: 40,
        },
    );
    emit_signature(&mut img[..512], 1);
    let s = &mut img[10 * 512..11 * 512];
    emit_entry(
        s,
        0,
        RawEntry {
            boot: 0,
            kind: 0x83,
            start: 1,
            sectors: 2,
        },
    );
    emit_entry(
        s,
        1,
        RawEntry {
            boot: 0,
            kind: 0x05,
            start: 0,
            sectors: 2,
        },
    );
    emit_signature(s, 0);
    // A next-EBR pointer of 0 ends the chain; point it back at itself to make a loop.
    assert!(matches!(
        read_table(&mut SliceSource::new(&img, 512)),
        Ok(Table::Mbr(_))
    ));
    let s = &mut img[10 * 512..11 * 512];
    emit_entry(
        s,
        1,
        RawEntry {
            boot: 0,
            kind: 0x05,
            start: 5,
            sectors: 2,
        },
    );
    let s2 = &mut img[15 * 512..16 * 512];
    emit_entry(
        s2,
        1,
        RawEntry {
            boot: 0,
            kind: 0x05,
            start: 5,
            sectors: 2,
        },
    );
    emit_signature(s2, 0);
    let r = read_table(&mut SliceSource::new(&img, 512));
    assert!(format!("{r:?}").contains("loops"), "{r:?}");
}

#[test]
fn no_table_and_bad_block_size() {
    let img = vec![0u8; 8192];
    assert!(matches!(
        read_table(&mut SliceSource::new(&img, 512)),
        Err(partition_table::Error::NoTable)
    ));
    assert!(matches!(
        read_table(&mut SliceSource::new(&img, 100)),
        Err(partition_table::Error::BlockSize(100))
    ));
}

//! Property tests: every message kind round-trips through emit → parse, and
//! arbitrary bytes never make a parser panic.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use vfio_user_wire::*;

/// Raw random material a message is built from (constraints fixed up below).
#[derive(Debug, Clone)]
struct Nums {
    a: u64,
    b: u64,
    c: u64,
    x: u32,
    y: u32,
    z: u32,
    w: u16,
    flag: bool,
}

fn nums() -> impl Strategy<Value = Nums> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        any::<bool>(),
    )
        .prop_map(|(a, b, c, x, y, z, w, flag)| Nums {
            a,
            b,
            c,
            x,
            y,
            z,
            w,
            flag,
        })
}

fn caps(n: &Nums) -> Option<Capabilities> {
    if n.w.is_multiple_of(3) {
        return None;
    }
    Some(Capabilities {
        max_msg_fds: n.flag.then_some(n.x),
        max_data_xfer_size: Some(n.y),
        max_dma_maps: (!n.flag).then_some(n.z),
        pgsizes: n.flag.then_some(n.a),
        twin_socket: n.w.is_multiple_of(2).then_some(TwinSocket {
            supported: n.flag,
            fd_index: n.flag.then_some(n.x % 4),
        }),
        write_multiple: Some(!n.flag),
        migration: n.w.is_multiple_of(5).then_some(Migration {
            pgsize: Some(n.b),
            max_bitmap_size: None,
        }),
        unknown: Vec::new(),
    })
}

fn region_info(n: &Nums, reply: bool) -> RegionInfoRepr {
    let size = n.a >> 8;
    let sparse = (reply && n.flag).then(|| {
        (0..(n.x % 5) as u64)
            .map(|i| SparseArea {
                offset: (size / 8) * i,
                size: size / 8,
            })
            .collect()
    });
    let cap_type = (reply && n.w % 2 == 1).then_some((n.y, n.z));
    let caps = sparse.is_some() || cap_type.is_some();
    let mut r = RegionInfoRepr {
        argsz: n.x,
        flags: n.y & 0x7 | if caps { REGION_INFO_FLAG_CAPS } else { 0 },
        index: n.z % 9,
        size,
        offset: n.b,
        sparse,
        cap_type,
    };
    if !reply {
        r.flags = 0;
        r.size = 0;
        r.offset = 0;
    }
    r
}

/// A DMA_UNMAP body: with `DMA_UNMAP_FLAG_ALL` the range must be empty.
fn unmap(argsz: u32, flags: u32, n: &Nums) -> DmaUnmapRepr {
    let all = flags & DMA_UNMAP_FLAG_ALL != 0;
    DmaUnmapRepr {
        argsz,
        flags,
        address: if all { 0 } else { n.a },
        size: if all { 0 } else { n.b },
    }
}

fn request<'a>(kind: u8, n: &Nums, data: &'a [u8]) -> Request<'a> {
    let count = data.len() as u32;
    let size = n.c.max(1) >> 1;
    let irq_count = n.x % 64;
    match kind % 17 {
        0 => Request::Version(VersionRepr {
            major: n.w,
            minor: n.x as u16,
            caps: caps(n),
        }),
        1 => Request::DmaMap(DmaMapRepr {
            flags: n.x & 3,
            offset: n.a >> 1,
            address: n.b >> 1,
            size,
        }),
        2 => Request::DmaUnmap(unmap(24, n.x, n)),
        3 => Request::DeviceGetInfo(DeviceInfoRepr {
            argsz: n.x,
            flags: n.y,
            num_regions: n.z % 65,
            num_irqs: n.x % 17,
        }),
        4 => Request::GetRegionInfo(region_info(n, false)),
        5 => Request::GetRegionIoFds(RegionIoFdsRepr {
            argsz: n.x,
            flags: 0,
            index: n.y,
            count: n.z % 256,
            subregions: Vec::new(),
        }),
        6 => Request::GetIrqInfo(IrqInfoRepr {
            argsz: n.x,
            flags: n.y,
            index: n.z,
            count: n.x % 2049,
        }),
        7 => Request::SetIrqs(IrqSetRepr {
            action: [IrqAction::Mask, IrqAction::Unmask, IrqAction::Trigger][(n.y % 3) as usize],
            data: match n.z % 3 {
                0 => IrqData::None,
                1 => IrqData::Eventfd,
                _ => IrqData::Bool(&data[..(irq_count as usize).min(data.len())]),
            },
            index: n.w.into(),
            start: n.y % 1024,
            count: if n.z % 3 == 2 {
                (irq_count as usize).min(data.len()) as u32
            } else {
                irq_count
            },
        }),
        8 => Request::RegionRead(RegionAccessRepr {
            offset: n.a >> 1,
            region: n.x,
            count: n.y % (1 << 20),
            data: &[],
        }),
        9 => Request::RegionWrite(RegionAccessRepr {
            offset: n.a >> 1,
            region: n.x,
            count,
            data,
        }),
        10 => Request::DmaRead(DmaAccessRepr {
            address: n.a >> 1,
            count: (n.b % (1 << 20)),
            data: &[],
        }),
        11 => Request::DmaWrite(DmaAccessRepr {
            address: n.a >> 1,
            count: count.into(),
            data,
        }),
        12 => Request::DeviceReset,
        13 => Request::WriteMulti(WriteMultiRepr {
            writes: (0..n.x % 8)
                .map(|i| WriteEntry {
                    offset: (n.a >> 2) + u64::from(i),
                    region: n.y,
                    count: 1 + (n.z + i) % 8,
                    data: n.b.to_ne_bytes(),
                })
                .collect(),
        }),
        14 => Request::DeviceFeature(DeviceFeatureRepr {
            argsz: n.x,
            flags: u32::from(n.w) | DEVICE_FEATURE_GET << (n.y % 3),
            data,
        }),
        15 => Request::MigDataRead(MigDataRepr {
            argsz: n.x,
            size: n.y % 4096,
            data: &[],
        }),
        _ => Request::MigDataWrite(MigDataRepr {
            argsz: n.x,
            size: count,
            data,
        }),
    }
}

fn reply<'a>(kind: u8, n: &Nums, data: &'a [u8]) -> Reply<'a> {
    let count = data.len() as u32;
    match kind % 17 {
        0 => Reply::Version(VersionRepr {
            major: 0,
            minor: n.w,
            caps: caps(n),
        }),
        1 => Reply::DmaMap,
        2 => Reply::DmaUnmap(n.flag.then_some(unmap(n.x, n.y, n))),
        3 => Reply::DeviceGetInfo(DeviceInfoRepr {
            argsz: 16,
            flags: n.y & 3,
            num_regions: n.z % 65,
            num_irqs: n.x % 17,
        }),
        4 => Reply::GetRegionInfo(region_info(n, true)),
        5 => {
            let subregions: Vec<_> = (0..n.x % 4)
                .map(|i| SubRegionIoFdRepr {
                    offset: n.a.wrapping_add(i.into()),
                    size: n.b,
                    fd_index: i,
                    kind: n.y % 2,
                    flags: n.z,
                    data: n.c,
                })
                .collect();
            Reply::GetRegionIoFds(RegionIoFdsRepr {
                argsz: 16 + 40 * subregions.len() as u32,
                flags: 0,
                index: n.y,
                count: subregions.len() as u32,
                subregions,
            })
        }
        6 => Reply::GetIrqInfo(IrqInfoRepr {
            argsz: 16,
            flags: n.y & 0xf,
            index: n.z,
            count: n.x % 2049,
        }),
        7 => Reply::SetIrqs,
        8 => Reply::RegionRead(RegionAccessRepr {
            offset: n.a >> 1,
            region: n.x,
            count,
            data,
        }),
        9 => Reply::RegionWrite(RegionAccessRepr {
            offset: n.a >> 1,
            region: n.x,
            count: n.y % 4096,
            data: &[],
        }),
        10 => Reply::DmaRead(DmaAccessRepr {
            address: n.a >> 1,
            count: count.into(),
            data,
        }),
        11 => Reply::DmaWrite(DmaAccessRepr {
            address: n.a >> 1,
            count: n.b % 4096,
            data: &[],
        }),
        12 => Reply::DeviceReset,
        13 => Reply::WriteMulti(n.a),
        14 => Reply::DeviceFeature(DeviceFeatureRepr {
            argsz: n.x,
            flags: u32::from(n.w) | DEVICE_FEATURE_PROBE,
            data,
        }),
        15 => Reply::MigDataRead(MigDataRepr {
            argsz: n.x,
            size: count,
            data,
        }),
        _ => Reply::MigDataWrite(MigDataRepr {
            argsz: n.x,
            size: n.y % 4096,
            data: &[],
        }),
    }
}

proptest! {
    #[test]
    fn requests_roundtrip(kind in 0u8..17, n in nums(), data in proptest::collection::vec(any::<u8>(), 0..80), id in any::<u16>(), no_reply in any::<bool>()) {
        let req = request(kind, &n, &data);
        let bytes = req.to_message(id, no_reply);
        let (parsed, used) = parse_message(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        match parsed {
            Parsed::Request(h, r) => {
                prop_assert_eq!(h.msg_id, id);
                prop_assert_eq!(h.kind, Kind::Command { no_reply });
                prop_assert_eq!(r, req);
            }
            other => prop_assert!(false, "parsed as {:?}", other),
        }
    }

    #[test]
    fn replies_roundtrip(kind in 0u8..17, n in nums(), data in proptest::collection::vec(any::<u8>(), 0..80), id in any::<u16>()) {
        let rep = reply(kind, &n, &data);
        let bytes = rep.to_message(id);
        let (parsed, used) = parse_message(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        match parsed {
            Parsed::Reply(h, r) => {
                prop_assert_eq!(h.msg_id, id);
                prop_assert_eq!(r, rep);
            }
            other => prop_assert!(false, "parsed as {:?}", other),
        }
    }

    #[test]
    fn error_replies_roundtrip(id in any::<u16>(), cmd in any::<u16>(), errno in any::<u32>()) {
        let bytes = error_reply(id, Command::from_u16(cmd), errno);
        let (parsed, _) = parse_message(&bytes).unwrap();
        prop_assert_eq!(parsed, Parsed::Error(HeaderRepr {
            msg_id: id,
            command: Command::from_u16(cmd),
            payload_len: 0,
            kind: Kind::Error(errno),
        }));
    }

    #[test]
    fn arbitrary_payloads_never_panic(cmd in 0u16..20, payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let c = Command::from_u16(cmd);
        let _ = Request::parse(c, &payload);
        let _ = Reply::parse(c, &payload);
    }

    #[test]
    fn arbitrary_messages_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_message(&bytes);
    }

    /// Mutating one byte of a valid message never panics, and whatever still
    /// parses re-emits to a message that parses to the same value.
    #[test]
    fn mutated_messages_are_consistent(kind in 0u8..17, n in nums(), data in proptest::collection::vec(any::<u8>(), 0..40), at in any::<usize>(), val in any::<u8>()) {
        let mut bytes = request(kind, &n, &data).to_message(1, false);
        let i = at % bytes.len();
        bytes[i] = val;
        if let Ok((Parsed::Request(_, r), _)) = parse_message(&bytes) {
            let again = r.to_message(1, false);
            let (p2, _) = parse_message(&again).unwrap();
            match p2 {
                Parsed::Request(_, r2) => {
                    // Version JSON may lose unknown keys on re-emit.
                    if !matches!(r, Request::Version(_)) {
                        prop_assert_eq!(r2, r);
                    }
                }
                other => prop_assert!(false, "re-parsed as {:?}", other),
            }
        }
    }
}

#[test]
fn oversized_counts_refused() {
    // A REGION_READ asking for 16 MiB.
    let req = Request::RegionRead(RegionAccessRepr {
        offset: 0,
        region: 0,
        count: 16 << 20,
        data: &[],
    });
    let bytes = req.to_message(3, false);
    assert!(matches!(parse_message(&bytes), Err(Error::TooMany { .. })));
    // SET_IRQS over 4096 vectors.
    let mut payload = vec![0u8; 20];
    payload[4..8].copy_from_slice(&(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER).to_ne_bytes());
    payload[16..20].copy_from_slice(&4096u32.to_ne_bytes());
    assert!(matches!(
        Request::parse(Command::DeviceSetIrqs, &payload),
        Err(Error::TooMany { .. })
    ));
    // WRITE_MULTI claiming a million entries in a short message.
    let payload = 1_000_000u64.to_ne_bytes();
    assert!(matches!(
        Request::parse(Command::RegionWriteMulti, &payload),
        Err(Error::TooMany { .. })
    ));
}

#[test]
fn region_caps_cycle_and_overflow_refused() {
    let info = RegionInfoRepr {
        argsz: 0,
        flags: REGION_INFO_FLAG_MMAP | REGION_INFO_FLAG_CAPS,
        index: 0,
        size: 0x4000,
        offset: 0,
        sparse: Some(vec![SparseArea {
            offset: 0x1000,
            size: 0x1000,
        }]),
        cap_type: Some((1, 2)),
    };
    let mut bytes = Reply::GetRegionInfo(info.clone()).to_message(1);
    assert!(parse_message(&bytes).is_ok());
    // Point the second cap's `next` back at the first: a cycle.
    let second = HEADER_LEN + 32 + 8 + 8 + 16;
    bytes[second + 4..second + 8].copy_from_slice(&32u32.to_ne_bytes());
    assert!(parse_message(&bytes).is_err());
    // A `next` far past the payload (found by the fuzzer: used to panic).
    bytes[second + 4..second + 8].copy_from_slice(&0x0100_0100u32.to_ne_bytes());
    assert!(parse_message(&bytes).is_err());
    // An area past the end of the region.
    let mut bad = info;
    bad.sparse = Some(vec![SparseArea {
        offset: 0x3000,
        size: 0x2000,
    }]);
    assert!(parse_message(&Reply::GetRegionInfo(bad).to_message(1)).is_err());
}

#[test]
fn dma_map_validation() {
    let ok = DmaMapRepr {
        flags: DMA_FLAG_READ | DMA_FLAG_WRITE,
        offset: 0,
        address: 0x1000,
        size: 0x1000,
    };
    assert!(parse_message(&Request::DmaMap(ok).to_message(1, false)).is_ok());
    for bad in [
        DmaMapRepr { size: 0, ..ok },
        DmaMapRepr {
            address: u64::MAX - 10,
            ..ok
        },
        DmaMapRepr { flags: 4, ..ok },
    ] {
        assert!(parse_message(&Request::DmaMap(bad).to_message(1, false)).is_err());
    }
}

proptest! {
    /// DMA_UNMAP with FLAG_ALL parses exactly when address and size are both
    /// 0 (VFIO's rule), whatever other flag bits ride along; without it any
    /// range parses (the server matches it against its windows).
    #[test]
    fn dma_unmap_all_needs_an_empty_range(
        flags in any::<u32>(),
        address in prop_oneof![Just(0u64), any::<u64>()],
        size in prop_oneof![Just(0u64), any::<u64>()],
    ) {
        let r = DmaUnmapRepr { argsz: 24, flags, address, size };
        let bytes = Request::DmaUnmap(r).to_message(7, false);
        let parsed = parse_message(&bytes);
        let all = flags & DMA_UNMAP_FLAG_ALL != 0;
        prop_assert_eq!(parsed.is_ok(), !all || (address == 0 && size == 0));
        if let Ok((Parsed::Request(_, Request::DmaUnmap(back)), _)) = parsed {
            prop_assert_eq!(back, r);
            prop_assert_eq!(back.is_all(), all);
        }
        // The reply echoes the request and follows the same rule.
        let bytes = Reply::DmaUnmap(Some(r)).to_message(7);
        prop_assert_eq!(parse_message(&bytes).is_ok(), !all || (address == 0 && size == 0));
    }
}

#[test]
fn dma_unmap_all_is_vfio_flag_all() {
    // VFIO_DMA_UNMAP_FLAG_ALL is bit 1 of the type1 unmap flags.
    assert_eq!(DMA_UNMAP_FLAG_ALL, 2);
    let all = DmaUnmapRepr::all();
    assert!(all.is_all());
    assert_eq!((all.argsz, all.flags, all.address, all.size), (24, 2, 0, 0));
    let bytes = Request::DmaUnmap(all).to_message(3, false);
    assert_eq!(&bytes[HEADER_LEN..][4..8], &2u32.to_ne_bytes());
    match parse_message(&bytes).unwrap().0 {
        Parsed::Request(_, Request::DmaUnmap(r)) => assert_eq!(r, all),
        other => panic!("{other:?}"),
    }
    for (address, size) in [(0x1000, 0), (0, 0x1000), (0x1000, 0x1000)] {
        let bad = DmaUnmapRepr {
            address,
            size,
            ..all
        };
        assert!(matches!(
            parse_message(&Request::DmaUnmap(bad).to_message(3, false)),
            Err(Error::Invalid { .. })
        ));
    }
    let one = DmaUnmapRepr {
        flags: 0,
        address: 0x1000,
        size: 0x1000,
        ..all
    };
    assert!(!one.is_all());
}

#[test]
fn dma_write_reply_short_count_accepted() {
    // The spec's table gives DMA_WRITE's reply a 4-byte count.
    let mut payload = Vec::new();
    payload.extend_from_slice(&0x1000u64.to_ne_bytes());
    payload.extend_from_slice(&4u32.to_ne_bytes());
    let r = Reply::parse(Command::DmaWrite, &payload).unwrap();
    assert_eq!(
        r,
        Reply::DmaWrite(DmaAccessRepr {
            address: 0x1000,
            count: 4,
            data: &[]
        })
    );
}

/// Regenerates the fuzz seed corpus: one file per request and reply kind plus
/// a few streams and error replies. Run by hand:
/// `cargo test -p vfio-user-wire --test properties -- --ignored write_seed_corpus`.
#[test]
#[ignore]
fn write_seed_corpus() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../fuzz/corpus/vfio_user_message");
    std::fs::create_dir_all(&dir).unwrap();
    let n = Nums {
        a: 0x1_0000,
        b: 0x2000,
        c: 0x4000,
        x: 3,
        y: 0x20,
        z: 2,
        w: 4,
        flag: true,
    };
    let data = [0xa5u8; 8];
    let mut stream = Vec::new();
    for kind in 0..17u8 {
        let req = request(kind, &n, &data).to_message(u16::from(kind), false);
        let rep = reply(kind, &n, &data).to_message(u16::from(kind));
        std::fs::write(dir.join(format!("req-{kind:02}")), &req).unwrap();
        std::fs::write(dir.join(format!("rep-{kind:02}")), &rep).unwrap();
        stream.extend_from_slice(&req);
        stream.extend_from_slice(&rep);
    }
    std::fs::write(dir.join("stream-all"), &stream).unwrap();
    let mut errs = Vec::new();
    errs.extend_from_slice(&error_reply(1, Command::DmaMap, errno::EEXIST));
    errs.extend_from_slice(&error_reply(2, Command::Unknown(99), errno::ENOSYS));
    std::fs::write(dir.join("errors"), &errs).unwrap();
    // Dialects of VERSION as real peers send them.
    for (name, json) in [
        ("version-libvfio-user", &br#"{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576,"migration":{"pgsize":4096}}}"#[..]),
        ("version-qemu", &br#"{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"write_multiple":true,"twin_socket":{"supported":true}}}"#[..]),
        ("version-spdk", &b""[..]),
    ] {
        let mut payload = vec![0, 0, 2, 0];
        payload.extend_from_slice(json);
        if !json.is_empty() {
            payload.push(0);
        }
        let mut msg = HeaderRepr {
            msg_id: 0,
            command: Command::Version,
            payload_len: payload.len() as u32,
            kind: Kind::Command { no_reply: false },
        }
        .to_bytes()
        .to_vec();
        msg.extend_from_slice(&payload);
        std::fs::write(dir.join(name), &msg).unwrap();
    }
    // DMA_UNMAP of every window as QEMU's client and libvfio-user send it,
    // its echoed reply, and the contradictory form (FLAG_ALL with a range).
    let all = DmaUnmapRepr::all();
    let mut unmap_all = Request::DmaUnmap(all).to_message(5, false);
    unmap_all.extend(Reply::DmaUnmap(Some(all)).to_message(5));
    std::fs::write(dir.join("dma-unmap-all"), &unmap_all).unwrap();
    let bad = DmaUnmapRepr {
        address: 0x1_0000,
        size: 0x2000,
        ..all
    };
    std::fs::write(
        dir.join("dma-unmap-all-with-range"),
        Request::DmaUnmap(bad).to_message(6, false),
    )
    .unwrap();
}

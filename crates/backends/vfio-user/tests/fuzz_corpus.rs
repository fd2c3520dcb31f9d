//! Replays the server fuzz corpus (`fuzz/corpus/vfio_user_server`) through
//! the fuzz target's body on stable Rust: each file is one client's byte
//! stream; the server must survive it and leave the device clean.
#![allow(clippy::unwrap_used, clippy::single_range_in_vec_init)]

#[path = "../../../../fuzz/replay.rs"]
mod replay;

use pcibox_kit::IrqKind;
use pcibox_model::fake::Fake;
use std::path::PathBuf;
use vfio_user_wire::*;

fn corpus() -> PathBuf {
    replay::corpus_dir("vfio_user_server")
}

fn fake() -> Fake {
    Fake::new(0x8086, 0x10d3)
        .with_region(0, 0x4000, vec![0..0x4000])
        .with_region(2, 0x1000, vec![])
        .with_irqs(IrqKind::Msix, 4)
        .with_irqs(IrqKind::Intx, 1)
}

#[test]
fn replay_vfio_user_server_corpus() {
    let mut answered = 0;
    let files = replay::replay("vfio_user_server", |path, bytes| {
        let fake = fake();
        let stats = pcibox_vfio_user::fuzzing::serve_bytes(Box::new(fake.clone()), bytes);
        assert!(
            fake.irq_enabled().is_none(),
            "{}: interrupts left on",
            path.display()
        );
        assert_eq!(
            fake.mapping_count(),
            0,
            "{}: DMA left mapped",
            path.display()
        );
        answered += stats.messages;
    });
    assert!(
        answered >= 20,
        "only {answered} messages handled in {files} files"
    );
}

/// Regenerates the seeds: a VERSION then one request of each kind, and a
/// few sessions that set interrupts up (fds cannot ride in a fuzz input).
/// `cargo test -p pcibox-vfio-user --test fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn write_server_seed_corpus() {
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    let version = Request::Version(VersionRepr {
        major: 0,
        minor: 2,
        caps: Some(Capabilities {
            max_msg_fds: Some(8),
            ..Default::default()
        }),
    })
    .to_message(0, false);
    let reqs: Vec<(&str, Request<'static>)> = vec![
        (
            "info",
            Request::DeviceGetInfo(DeviceInfoRepr {
                argsz: 16,
                flags: 0,
                num_regions: 0,
                num_irqs: 0,
            }),
        ),
        (
            "region-info",
            Request::GetRegionInfo(RegionInfoRepr {
                argsz: 64,
                flags: 0,
                index: 0,
                size: 0,
                offset: 0,
                sparse: None,
                cap_type: None,
            }),
        ),
        (
            "irq-info",
            Request::GetIrqInfo(IrqInfoRepr {
                argsz: 16,
                flags: 0,
                index: 2,
                count: 0,
            }),
        ),
        (
            "config-read",
            Request::RegionRead(RegionAccessRepr {
                offset: 0,
                region: 7,
                count: 4,
                data: &[],
            }),
        ),
        (
            "bar-write",
            Request::RegionWrite(RegionAccessRepr {
                offset: 8,
                region: 2,
                count: 4,
                data: &[1, 2, 3, 4],
            }),
        ),
        (
            "bar-read",
            Request::RegionRead(RegionAccessRepr {
                offset: 0x3ff8,
                region: 0,
                count: 8,
                data: &[],
            }),
        ),
        (
            "dma-map-nofd",
            Request::DmaMap(DmaMapRepr {
                flags: 3,
                offset: 0,
                address: 0x20_0000,
                size: 0x2000,
            }),
        ),
        (
            "dma-unmap",
            Request::DmaUnmap(DmaUnmapRepr {
                argsz: 24,
                flags: 0,
                address: 0x20_0000,
                size: 0x2000,
            }),
        ),
        (
            "irq-trigger",
            Request::SetIrqs(IrqSetRepr {
                action: IrqAction::Trigger,
                data: IrqData::None,
                index: 2,
                start: 0,
                count: 0,
            }),
        ),
        (
            "irq-mask",
            Request::SetIrqs(IrqSetRepr {
                action: IrqAction::Mask,
                data: IrqData::Bool(&[1, 0]),
                index: 2,
                start: 0,
                count: 2,
            }),
        ),
        ("reset", Request::DeviceReset),
        (
            "write-multi",
            Request::WriteMulti(WriteMultiRepr {
                writes: vec![WriteEntry {
                    offset: 0,
                    region: 2,
                    count: 4,
                    data: [9; 8],
                }],
            }),
        ),
        (
            "feature",
            Request::DeviceFeature(DeviceFeatureRepr {
                argsz: 16,
                flags: DEVICE_FEATURE_PROBE | 1,
                data: &[],
            }),
        ),
        ("dma-unmap-all", Request::DmaUnmap(DmaUnmapRepr::all())),
        (
            "dma-unmap-all-with-range",
            Request::DmaUnmap(DmaUnmapRepr {
                address: 0x20_0000,
                size: 0x2000,
                ..DmaUnmapRepr::all()
            }),
        ),
    ];
    let mut all = version.clone();
    for (i, (name, req)) in reqs.iter().enumerate() {
        let mut bytes = version.clone();
        bytes.extend(req.to_message(i as u16 + 1, false));
        bytes.extend(req.to_message(i as u16 + 100, true));
        std::fs::write(dir.join(name), &bytes).unwrap();
        all.extend(req.to_message(i as u16 + 1, false));
    }
    std::fs::write(dir.join("all"), &all).unwrap();
    // Nothing before VERSION, and a lying header at the end.
    let mut bad = reqs[3].1.to_message(1, false);
    bad.extend(&version);
    bad.extend(error_reply(9, Command::Version, 0));
    std::fs::write(dir.join("before-version"), &bad).unwrap();
}

//! A damaged or incomplete state directory: only a torn last record (a crash
//! mid-write, never acknowledged) is cut off; damage anywhere else, or a
//! missing log or snapshot, stops start-up with one line, touching nothing;
//! `--check` shows the damage and `--salvage` keeps everything intact.
#![allow(clippy::unwrap_used)]

mod xs;

use pcibox_xenstore::persist::frame::{read_frame, FILE_HEADER_LEN, FRAME_HEADER_LEN};
use pcibox_xenstore::persist::{encode_body, encode_v1};
use std::path::PathBuf;
use std::process::{Command, Output};
use xs::{Scratch, Xenstored};

const KEYS: usize = 20;

/// A daemon that acknowledged `KEYS` writes (one log record each), then was
/// killed.
fn written(tag: &str, extra: &[&str]) -> (Scratch, Xenstored) {
    let s = Scratch::new(tag);
    let mut x = Xenstored::start_in(&s.0, extra);
    for i in 0..KEYS {
        x.ok("xenstore-write", &[&format!("/k/{i}"), &format!("v{i}")]);
    }
    x.kill9();
    (s, x)
}

fn segments(x: &Xenstored) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(x.dir.join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log.") && n.len() == 24)
        })
        .collect();
    v.sort();
    v
}

/// Offsets of the frames of a log segment.
fn frames(data: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    while let Ok(f) = read_frame(data, pos) {
        out.push(pos);
        pos = f.end;
    }
    assert_eq!(pos, data.len(), "the test's segment is whole");
    out
}

fn xenstored(x: &Xenstored, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .arg("xenstored")
        .arg("--state-dir")
        .arg(x.dir.join("state"))
        .args(args)
        .env("PCIBOX_LOG", "warn")
        .output()
        .unwrap()
}

/// Starting the daemon fails with one line; returns it.
fn refused(x: &Xenstored) -> String {
    let sock = x.dir.join("refused.sock");
    let out = xenstored(x, &["--socket", sock.to_str().unwrap()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "started on a damaged state: {err}");
    assert!(
        err.starts_with("pcibox: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!sock.exists());
    err
}

fn read(x: &Xenstored, key: &str) -> Option<String> {
    let out = x.tool("xenstore-read", &[key]);
    out.status.success().then(|| {
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    })
}

fn assert_keys(x: &Xenstored, except: Option<usize>) {
    for i in 0..KEYS {
        let want = (Some(i) != except).then(|| format!("v{i}"));
        assert_eq!(read(x, &format!("/k/{i}")), want, "key {i}");
    }
}

#[test]
fn only_a_torn_last_record_is_cut_off() {
    let (_s, mut x) = written("xs-torn", &[]);
    let seg = segments(&x).pop().unwrap();
    let whole = std::fs::read(&seg).unwrap();
    let last = *frames(&whole).last().unwrap();
    // A record cut short by the crash (header, or body), or a header that is
    // garbage: nothing intact follows, so it was never acknowledged.
    let next = encode_body(&[pcibox_xenstore::Change::Domain {
        domid: 9,
        introduced: true,
    }]);
    let extra = pcibox_xenstore::persist::frame::frame(KEYS as u64 + 2, &next);
    let torn: [Vec<u8>; 4] = [
        [&whole[..], &extra[..10]].concat(),
        [&whole[..], &extra[..FRAME_HEADER_LEN + 1]].concat(),
        [&whole[..], &[0u8; 100][..]].concat(),
        whole[..last + 30].to_vec(),
    ];
    for (n, data) in torn.iter().enumerate() {
        std::fs::write(&seg, data).unwrap();
        let check = xenstored(&x, &["--check"]);
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "case {n}: {report}");
        assert!(
            report.contains("a torn last record of"),
            "case {n}: {report}"
        );
        x.restart();
        // The last case cut into the last acknowledged record itself: the
        // one case that cannot be told from a crash (see docs/xenstore.md).
        assert_keys(&x, (n == 3).then_some(KEYS - 1));
        x.kill9();
    }
    // A segment a compaction had started but not yet put in place, and a
    // snapshot being written: nothing in them was acknowledged.
    std::fs::write(x.dir.join("state/log.next"), b"partial").unwrap();
    std::fs::write(x.dir.join("state/snapshot.tmp"), b"partial").unwrap();
    x.restart();
    assert!(!x.dir.join("state/log.next").exists());
    assert!(!x.dir.join("state/snapshot.tmp").exists());
    // Records written after a cut tail follow the last whole one.
    x.restart();
    x.ok("xenstore-write", &["/after", "w"]);
    x.restart();
    assert_eq!(read(&x, "/after").as_deref(), Some("w"));
}

#[test]
fn damage_before_the_tail_stops_start_up_and_changes_nothing() {
    let (_s, x) = written("xs-damage", &[]);
    let seg = segments(&x).pop().unwrap();
    let whole = std::fs::read(&seg).unwrap();
    let offsets = frames(&whole);
    // Every field of every record but the last: magic, length, number, body
    // checksum, header checksum, a body byte.
    let mut cases = 0;
    for &at in &offsets[..offsets.len() - 1] {
        for (field, bit) in [(0, 1), (4, 0), (5, 4), (8, 2), (16, 7), (20, 3), (24, 5)] {
            let mut bad = whole.clone();
            bad[at + field] ^= 1 << bit;
            std::fs::write(&seg, &bad).unwrap();
            let err = refused(&x);
            assert!(
                err.contains(&format!("damaged at byte {at} ("))
                    && err.contains("intact records follow")
                    && err.contains("--salvage"),
                "record at {at}, byte {field}: {err}"
            );
            assert_eq!(
                std::fs::read(&seg).unwrap(),
                bad,
                "the daemon changed the file"
            );
            cases += 1;
        }
    }
    assert!(cases >= 7 * (KEYS - 1));
    // The segment's own header.
    let mut bad = whole.clone();
    bad[17] ^= 1;
    std::fs::write(&seg, &bad).unwrap();
    assert!(refused(&x).contains("damaged file header"));
    std::fs::write(&seg, &whole).unwrap();
}

#[test]
fn a_missing_log_or_snapshot_stops_start_up() {
    let (_s, mut x) = written("xs-missing", &["--compact-after", "8192"]);
    let state = x.dir.join("state");
    let seg = segments(&x).pop().unwrap();
    let keep = std::fs::read(&seg).unwrap();
    // The log deleted: the snapshot says which record comes next.
    std::fs::remove_file(&seg).unwrap();
    assert!(refused(&x).contains("there is no log (deleted or lost)"));
    std::fs::write(&seg, &keep).unwrap();
    // A segment further on: the records in between are missing.
    let ahead = state.join(format!("log.{:020}", 1000));
    let mut h = keep[..FILE_HEADER_LEN].to_vec();
    h[16..24].copy_from_slice(&1000u64.to_le_bytes());
    let crc = pcibox_xenstore::persist::frame::crc32(&h[..28]);
    h[28..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&ahead, &h).unwrap();
    let err = refused(&x);
    assert!(err.contains("log records 22 to 999 are missing"), "{err}");
    std::fs::remove_file(&ahead).unwrap();
    // After a compaction the log no longer starts at record 1: without the
    // snapshot it cannot be replayed.
    x.restart();
    let mut c = pcibox_xenstore::client::Client::connect(&x.socket).unwrap();
    for i in 0..300 {
        c.write(0, &format!("/more/{i}"), &[b'x'; 100]).unwrap();
    }
    x.kill9();
    let snap = state.join("snapshot");
    std::fs::remove_file(&snap).unwrap();
    let err = refused(&x);
    assert!(err.contains("but there is no snapshot"), "{err}");
    // Nothing at all (the lock aside) is a new registry: that cannot be told
    // from a directory nobody used yet.
    for e in std::fs::read_dir(&state).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != "lock" {
            std::fs::remove_file(p).unwrap();
        }
    }
    x.restart();
    assert_eq!(read(&x, "/k/0"), None);
    x.assert_alive();
}

#[test]
fn check_shows_the_damage_and_salvage_keeps_what_is_intact() {
    let (_s, mut x) = written("xs-salvage", &[]);
    let seg = segments(&x).pop().unwrap();
    let mut data = std::fs::read(&seg).unwrap();
    let offsets = frames(&data);
    // The 6th record (the 5th key, /k/4: record 1 is the domains' start-up)
    // gets a flipped bit in its length.
    let at = offsets[5];
    data[at + 5] ^= 0x10;
    std::fs::write(&seg, &data).unwrap();
    let check = xenstored(&x, &["--check"]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{report}");
    assert!(
        report.contains(&format!("damaged bytes {at}..{}", offsets[6]))
            && report.contains("verdict: the daemon refuses to start"),
        "{report}"
    );
    let out = xenstored(&x, &["--salvage"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("log records 6..=6 are lost") && report.contains("some changes were lost"),
        "{report}"
    );
    let aside: Vec<PathBuf> = std::fs::read_dir(x.dir.join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("salvaged-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        std::fs::read(aside[0].join(seg.file_name().unwrap())).unwrap(),
        data,
        "the damaged segment is kept aside as it was"
    );
    let check = xenstored(&x, &["--check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    x.restart();
    assert_keys(&x, Some(4));
    x.ok("xenstore-write", &["/after", "1"]);
    x.restart();
    assert_eq!(read(&x, "/after").as_deref(), Some("1"));
}

#[test]
fn a_damaged_snapshot_stops_start_up() {
    let (_s, mut x) = written("xs-snapshot", &["--compact-after", "512"]);
    let snap = x.dir.join("state/snapshot");
    let mut data = std::fs::read(&snap).unwrap();
    let whole = data.clone();
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    std::fs::write(&snap, &data).unwrap();
    assert!(refused(&x).contains("snapshot: damaged at byte"));
    // Cut short at a frame boundary: the end marker is missing.
    let end = read_frame(&whole, FILE_HEADER_LEN).unwrap().end;
    std::fs::write(&snap, &whole[..end]).unwrap();
    assert!(refused(&x).contains("ends before its end marker"));
    std::fs::write(&snap, &whole).unwrap();
    x.restart();
    assert_keys(&x, None);
}

#[test]
fn a_format_1_state_directory_is_converted() {
    use pcibox_xenstore::{Change, Node};
    use std::sync::Arc;
    let s = Scratch::new("xs-v1");
    let state = s.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut root = Node::new(0, pcibox_xenstore::wire::PermKind::None);
    root.children = vec!["local".into(), "tool".into(), "old".into()];
    let node = |n: Node| Some(Arc::new(n));
    let mut old = Node::new(0, pcibox_xenstore::wire::PermKind::None);
    old.value = b"kept".to_vec();
    let mut log = encode_v1(&[
        Change::Node {
            path: "/".into(),
            node: node(root),
        },
        Change::Node {
            path: "/old".into(),
            node: node(old),
        },
    ]);
    log.extend_from_slice(&[9, 0, 0]);
    std::fs::write(state.join("log"), &log).unwrap();
    let x = Xenstored::start_in(&s.0, &[]);
    assert_eq!(x.ok("xenstore-read", &["/old"]), "kept\n");
    assert_eq!(std::fs::read(state.join("log.v1")).unwrap(), log);
    assert!(!state.join("log").exists());
}

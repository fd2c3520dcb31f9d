//! Xen's own `test-xenstore` (Debian's xen-utils-4.17, fetched with
//! `apt-get download` and unpacked with `dpkg-deb -x` into the target
//! directory, never installed) runs all its tests against
//! `pcibox xenstored`. Its per-test timings are printed next to a raw
//! Unix-socket round trip measured in the same run (no timing is asserted).
#![allow(clippy::unwrap_used)]

mod xs;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use xs::{Scratch, Xenstored};

/// The packages that carry test-xenstore and the libraries it links.
const PACKAGES: [&str; 3] = ["xen-utils-4.17", "libxenstore4", "libxentoolcore1"];
/// test-xenstore inside the unpacked packages.
const BIN: &str = "usr/lib/xen-4.17/bin/test-xenstore";

/// Fetches and unpacks the packages once; returns the unpacked root.
/// Concurrent runs each work in their own folder and the first to finish
/// renames its result into place.
fn fetch() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xen-utils-4.17");
    let root = base.join("root");
    if root.join(BIN).exists() {
        return root;
    }
    let work = base.join(format!("work-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let debs = work.join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let download = || {
        Command::new("apt-get")
            .arg("download")
            .args(PACKAGES)
            .current_dir(&debs)
            .output()
            .expect("apt-get is needed to fetch xen-utils-4.17")
    };
    let mut out = download();
    if !out.status.success() {
        // Package lists may never have been fetched on a fresh machine.
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        out = download();
    }
    assert!(
        out.status.success(),
        "apt-get download {PACKAGES:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unpacked = work.join("root");
    for entry in std::fs::read_dir(&debs).unwrap() {
        let deb = entry.unwrap().path();
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(st.success(), "dpkg-deb -x {}", deb.display());
    }
    if std::fs::rename(&unpacked, &root).is_err() {
        assert!(
            root.join(BIN).exists(),
            "could not move {}",
            unpacked.display()
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    root
}

/// Round trip of a 19-byte message (a header and `/a\0`) over a Unix
/// socket pair to an echoing thread, in nanoseconds: the median of 21
/// batches of 500, robust against a busy machine.
fn raw_round_trip_ns() -> f64 {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 19];
        while b.read_exact(&mut buf).is_ok() {
            if b.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let msg = [7u8; 19];
    let mut buf = [0u8; 19];
    let mut round = || {
        a.write_all(&msg).unwrap();
        a.read_exact(&mut buf).unwrap();
    };
    for _ in 0..1000 {
        round();
    }
    let mut batches: Vec<f64> = (0..21)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..500 {
                round();
            }
            start.elapsed().as_nanos() as f64 / 500.0
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    drop(a);
    echo.join().unwrap();
    batches[batches.len() / 2]
}

#[test]
fn xen_test_xenstore_passes_all_tests() {
    let root = fetch();
    let bin = root.join(BIN);
    assert!(bin.exists(), "{} missing from the package", bin.display());
    let libs = root.join("usr/lib/x86_64-linux-gnu");
    let s = Scratch::new("xs-test-xenstore");
    let x = Xenstored::start_in(&s.0, &[]);
    let run = |args: &[&str]| {
        let out = Command::new(&bin)
            .args(args)
            .env("XENSTORED_PATH", &x.socket)
            .env("LD_LIBRARY_PATH", &libs)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "test-xenstore {args:?} failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let names: Vec<String> = run(&["--list-tests"])
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_string())
        .collect();
    assert_eq!(
        names.len(),
        12,
        "test-xenstore 4.17 has 12 tests: {names:?}"
    );
    let iterations = std::env::var("PCIBOX_TEST_XENSTORE_ITERATIONS").unwrap_or("100".into());
    // The baseline is measured just before and just after; the smaller
    // median is used.
    let raw_before = raw_round_trip_ns();
    let out = run(&["--iterations", &iterations]);
    assert!(!out.contains("failed"), "{out}");
    let raw = raw_before.min(raw_round_trip_ns());
    let mut report = format!(
        "test-xenstore -i {iterations} against pcibox xenstored (durable, fdatasync per change)\n\
         raw unix-socket round trip (19 bytes, median batch, same run): {raw:.0} ns\n\
         test          avg ns   (x raw)      min ns  (x raw)\n"
    );
    for name in &names {
        let line = out
            .lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no result for {name}:\n{out}"));
        // "name: avg: A ns (MIN ns .. MAX ns)"
        let num = |after: &str| -> f64 {
            line.split(after)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no timing in {line:?}"))
        };
        let (avg, min) = (num("avg:"), num("("));
        report.push_str(&format!(
            "{name:<11} {avg:>10.0} ({:>6.1}) {min:>10.0} ({:>6.1})\n",
            avg / raw,
            min / raw
        ));
    }
    println!("{report}");
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-xenstore-timings.txt"),
        &report,
    )
    .unwrap();
}

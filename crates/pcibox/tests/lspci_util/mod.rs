//! What the lspci test files share: running `pcibox lspci` and pciutils'
//! `lspci` on the same input, the dumps to compare on, and fake sysfs
//! trees (`sysfs.rs`) that both read through `-O sysfs.path=`.

#![allow(dead_code, clippy::unwrap_used)]

pub mod sysfs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn pcibox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .arg("lspci")
        .args(args)
        .output()
        .expect("run pcibox")
}

/// The real lspci. The test command installs pciutils; without it these
/// tests fail rather than pass vacuously.
pub fn lspci(args: &[&str]) -> Output {
    Command::new("lspci")
        .args(args)
        .output()
        .expect("run lspci (pciutils must be installed: ./scripts/test.sh installs it)")
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// lspci's output without the kernel module lines (`Kernel modules:`,
/// `-vmm`'s `Module:`), which need libkmod and which pcibox does not print.
pub fn without_modules(s: &str) -> String {
    s.split_inclusive('\n')
        .filter(|l| !l.starts_with("\tKernel modules:") && !l.starts_with("Module:\t"))
        .collect()
}

/// Runs `pcibox lspci OURS` and `lspci THEIRS`, requires both to succeed
/// and print the same (module lines aside), and returns the output.
pub fn same_as(ours: &[&str], theirs: &[&str]) -> String {
    let o = pcibox(ours);
    let t = lspci(theirs);
    assert!(
        t.status.success(),
        "lspci {theirs:?} failed: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    assert!(
        o.status.success(),
        "pcibox lspci {ours:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (a, b) = (text(&o), without_modules(&text(&t)));
    assert!(!b.is_empty(), "lspci {theirs:?} printed nothing");
    if a != b {
        let diff: Vec<String> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .take(5)
            .map(|(x, y)| format!("  ours:   {x:?}\n  lspci:  {y:?}"))
            .collect();
        panic!(
            "pcibox lspci {ours:?} differs from lspci ({} vs {} lines):\n{}",
            a.lines().count(),
            b.lines().count(),
            diff.join("\n")
        );
    }
    a
}

/// Runs both with `args` and requires identical stdout and success.
pub fn same(args: &[&str]) -> String {
    same_as(args, args)
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `crates/pcibox/tests/data`.
pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Real config spaces of a small VM, kept in `tests/data/pci-config`
/// (provenance in its README).
pub fn fixtures() -> PathBuf {
    let dir = data().join("pci-config");
    assert!(dir.is_dir(), "fixtures missing at {}", dir.display());
    dir
}

/// Every dump to compare on: the fixtures' hex dumps, each raw config file
/// turned into a dump, and the synthetic dumps of `tests/data`.
pub fn dumps() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lspci-dumps");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut bins = 0;
    for p in names {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with("-x.txt") || name.ends_with("-xxxx.txt") {
            out.push(p);
        } else if let Some(slot) = name
            .strip_suffix(".config.bin")
            .and_then(|s| s.rsplit_once('-').map(|(_, s)| s.to_string()))
        {
            // microvm-0000-00-01.0.config.bin -> "00:01.0 …" + hex lines.
            let bytes = std::fs::read(&p).unwrap();
            let mut t = format!("00:{slot} fixture\n");
            for (i, chunk) in bytes.chunks(16).enumerate() {
                let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                t.push_str(&format!("{:02x}: {}\n", i * 16, hex.join(" ")));
            }
            let dump = tmp.join(format!("{name}.txt"));
            std::fs::write(&dump, t).unwrap();
            out.push(dump);
            bins += 1;
        }
    }
    assert!(bins >= 6, "expected the six raw config fixtures");
    let mut synthetic: Vec<PathBuf> = std::fs::read_dir(data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    synthetic.sort();
    out.extend(synthetic);
    out
}

/// A failure: non-zero exit, exactly one stderr line starting `pcibox: `,
/// no panic, nothing on stdout.
pub fn fails(args: &[&str], needle: &str) {
    let o = pcibox(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "{args:?}: stderr {err:?}");
    assert!(err.starts_with("pcibox: "), "{args:?}: {err:?}");
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{args:?}: {err:?}");
    assert!(o.stdout.is_empty(), "{args:?} printed {:?}", text(&o));
}

/// The slots (`dddd:bb:dd.f`) lspci lists for `args` (plus `-D`).
pub fn slots(args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.push("-D");
    text(&lspci(&all))
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

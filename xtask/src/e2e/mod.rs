//! `cargo xtask e2e`: run the guest tests, each in its own QEMU VM. See docs/rig.md.

mod args;
mod child;
mod disk;
mod host;
mod initramfs;
mod report;
mod vm;

use report::{Expect, Outcome};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Console lines shown under a failed test's line.
const TAIL_LINES: usize = 20;

/// One entry of `pcibox-guest-tests list --json` (the single source of truth for needs).
#[derive(Debug, Clone, Deserialize)]
struct Listing {
    name: String,
    about: String,
    needs: Needs,
}

#[derive(Debug, Clone, Deserialize)]
struct Needs {
    timeout_s: u64,
    disk: String,
    /// The test needs `disk` itself: `--disk PATH` does not replace it.
    own_disk: bool,
    monitor: bool,
    hidden: bool,
    expect: Expect,
}

pub fn main(argv: Vec<String>) -> ExitCode {
    let args = match args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("xtask e2e: {e}");
            }
            eprintln!("{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn list_tests(bins: &Path) -> Result<Vec<Listing>, String> {
    let json =
        host::output(Command::new(bins.join("pcibox-guest-tests")).args(["list", "--json"]))?;
    let tests: Vec<Listing> =
        serde_json::from_str(&json).map_err(|e| format!("pcibox-guest-tests list --json: {e}"))?;
    // Names become file and directory names: keep them plain.
    if let Some(bad) = tests.iter().find(|t| !valid_name(&t.name)) {
        return Err(format!("test name {:?} is not [a-z0-9-]+", bad.name));
    }
    Ok(tests)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The image a test gets: the user's (`user`) when `--disk` is given and the test works on any
/// disk, otherwise the kind it declares.
fn disk_key<'a>(args: &args::Args, needs: &'a Needs) -> &'a str {
    if args.disk.is_some() && !needs.own_disk {
        "user"
    } else {
        needs.disk.as_str()
    }
}

/// The tests that keep their own image although `--disk` was given, as `NAME (KIND)`.
fn keeping_own_disk(args: &args::Args, tests: &[Listing]) -> Vec<String> {
    if args.disk.is_none() {
        return Vec::new();
    }
    tests
        .iter()
        .filter(|t| t.needs.own_disk)
        .map(|t| format!("{} ({})", t.name, t.needs.disk))
        .collect()
}

/// A prepared disk: the image QEMU attaches and the facts put into `/rig/`.
struct Prepared {
    image: PathBuf,
    facts: disk::Facts,
}

fn run(args: &args::Args) -> Result<bool, String> {
    let t0 = Instant::now();
    let root = workspace_root();
    let rig = root.join(".rig");
    eprintln!("e2e: building the guest binaries (pcibox, pcibox-guest-tests)…");
    let bins = host::build_guest_binaries(&root)?;
    let all = list_tests(&bins)?;
    let tests: Vec<Listing> = all
        .into_iter()
        .filter(|t| t.needs.hidden == args.self_test && args::selected(&args.filters, &t.name))
        .collect();
    if tests.is_empty() {
        return Err(format!(
            "no {}test matches {:?}",
            if args.self_test { "self-" } else { "" },
            args.filters
        ));
    }
    let own = keeping_own_disk(args, &tests);
    if args.list {
        // Lists only: no packages, no kernel, no disks.
        let width = tests.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in &tests {
            let n = &t.needs;
            let disk = match disk_key(args, n) {
                key if n.own_disk && args.disk.is_some() => format!("{key} (own)"),
                key => key.to_owned(),
            };
            println!(
                "{:<width$} disk={:<17} timeout={}s{}  {}",
                t.name,
                disk,
                n.timeout_s,
                if n.monitor { " monitor" } else { "" },
                t.about
            );
        }
        if !own.is_empty() {
            println!("(own): needs its own image; --disk does not replace it");
        }
        return Ok(true);
    }
    host::ensure_packages()?;
    let kernel = host::guest_kernel(&rig)?;
    let base = initramfs::base(&bins, &kernel.modules)?;

    // Disks: the user's image for every test that works on any disk, and each kind the other
    // selected tests need.
    let mut disks: BTreeMap<String, Prepared> = BTreeMap::new();
    for t in &tests {
        let key = disk_key(args, &t.needs);
        if disks.contains_key(key) {
            continue;
        }
        let image = match &args.disk {
            Some(p) if key == "user" => {
                std::fs::canonicalize(p).map_err(|e| format!("--disk {}: {e}", p.display()))?
            }
            _ if disk::KINDS.contains(&key) => disk::create(&rig.join("disks"), key)?,
            _ => return Err(format!("{} needs an unknown disk kind {key:?}", t.name)),
        };
        let facts = disk::Facts::gather(&image, key)?;
        disks.insert(key.to_owned(), Prepared { image, facts });
    }

    let logs = rig.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    println!(
        "e2e: {} test(s), -j {}, kernel {}, prepared in {:.1} s; logs in {}",
        tests.len(),
        args.jobs,
        kernel.package,
        t0.elapsed().as_secs_f64(),
        logs.display()
    );
    if let Some(p) = &args.disk {
        if !own.is_empty() {
            println!(
                "e2e: --disk {} is not attached to {} test(s) that need their own image: {}",
                p.display(),
                own.len(),
                own.join(", ")
            );
        }
    }

    let next = AtomicUsize::new(0);
    let tally = Mutex::new((0usize, 0usize));
    let boots = Mutex::new(Vec::new());
    let run_one = |t: &Listing| -> Result<vm::Run, String> {
        let key = disk_key(args, &t.needs);
        let prepared = disks
            .get(key)
            .ok_or_else(|| format!("disk {key} not prepared"))?;
        let run_dir = vm::run_dir(&t.name);
        std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
        let initrd = run_dir.join("initrd");
        let mut image = base.clone();
        image.extend_from_slice(&initramfs::overlay(&t.name, &prepared.facts));
        std::fs::write(&initrd, &image).map_err(|e| format!("{}: {e}", initrd.display()))?;
        let log = logs.join(format!("{}.log", t.name));
        let spec = vm::Spec {
            test: &t.name,
            kernel: &kernel.vmlinuz,
            initrd: &initrd,
            disk: &prepared.image,
            timeout: Duration::from_secs(t.needs.timeout_s),
            monitor: t.needs.monitor,
            run_dir: &run_dir,
            log: &log,
            verbose: args.verbose,
            append: &args.append,
        };
        let result = vm::run(&spec);
        // Remove exactly what this VM left (vm::run removed its sockets), never a tree.
        let _ = std::fs::remove_file(&initrd);
        let _ = std::fs::remove_dir(&run_dir);
        Ok(result)
    };
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(tests.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = tests.get(i) else { break };
                let run = run_one(t).unwrap_or_else(|e| vm::Run {
                    outcome: Outcome::Fail(e),
                    took: Duration::ZERO,
                    boot: None,
                });
                if let Some(b) = run.boot {
                    boots.lock().unwrap_or_else(|p| p.into_inner()).push(b);
                }
                let (ok, line) = report::line(&t.name, &run.outcome, t.needs.expect, run.took);
                let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                if ok {
                    tally.0 += 1;
                } else {
                    tally.1 += 1;
                }
                println!("{line}");
                if !ok {
                    // CI keeps only stdout: show the end of the guest console with the verdict.
                    let log = logs.join(format!("{}.log", t.name));
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    for l in report::tail(&text, TAIL_LINES) {
                        println!("    | {l}");
                    }
                    println!("    | (whole console: {})", log.display());
                }
            });
        }
    });
    // Only this run's own directory (each VM removed its subdirectory already).
    let _ = std::fs::remove_dir(vm::run_root());
    let (passed, failed) = *tally.lock().unwrap_or_else(|p| p.into_inner());
    let boots = boots.into_inner().unwrap_or_else(|p| p.into_inner());
    println!("{}", report::summary(passed, failed, t0.elapsed(), &boots));
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(name: &str, disk: &str, own_disk: bool) -> Listing {
        Listing {
            name: name.into(),
            about: String::new(),
            needs: Needs {
                timeout_s: 20,
                disk: disk.into(),
                own_disk,
                monitor: false,
                hidden: false,
                expect: Expect::Pass,
            },
        }
    }

    #[test]
    fn user_disk_replaces_only_what_works_on_any_disk() {
        let tests = [
            listing("nvme-partitions-mbr", "mbr", false),
            listing("vfio-user-nvme", "gpt", true),
        ];
        let plain = args::Args::default();
        let user = args::Args {
            disk: Some("/x/mine.img".into()),
            ..args::Args::default()
        };
        assert_eq!(disk_key(&plain, &tests[0].needs), "mbr");
        assert_eq!(disk_key(&plain, &tests[1].needs), "gpt");
        assert_eq!(disk_key(&user, &tests[0].needs), "user");
        assert_eq!(disk_key(&user, &tests[1].needs), "gpt");
        assert!(keeping_own_disk(&plain, &tests).is_empty());
        assert_eq!(
            keeping_own_disk(&user, &tests),
            vec!["vfio-user-nvme (gpt)"]
        );
    }

    #[test]
    fn names_must_be_plain() {
        assert!(valid_name("rig-boot"));
        assert!(valid_name("e1000e-dhcp"));
        assert!(!valid_name(""));
        assert!(!valid_name("../x"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("Rig"));
    }
}

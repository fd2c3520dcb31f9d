//! The lspci modes scripts use, against pciutils' `lspci` run in the same
//! test on the same input: `-m`/`-mm` (with `-v`, `-n`, `-nn`, `-k`,
//! `-x`), `-t`/`-tv`, `-P`/`-PP`, `-b`, and the `-s`/`-d` filters, on this
//! machine's devices, on every dump (`-F`) and on fake sysfs trees that
//! lay the dumps' functions out as the kernel does. Flags pcibox does not
//! implement must be refused, and filter errors read as lspci's.

#![allow(clippy::unwrap_used)]

mod lspci_util;

use lspci_util::sysfs::FakeSysfs;
use lspci_util::{data, dumps, fails, lspci, pcibox, same, same_as, text};

/// Every mode, each compared in full.
const MODES: &[&[&str]] = &[
    &["-m"],
    &["-mm"],
    &["-vm"],
    &["-vmm"],
    &["-vvmm"],
    &["-nmm"],
    &["-nnmm"],
    &["-nnvmm"],
    &["-mmD"],
    &["-mD", "-v"],
    &["-mm", "-x"],
    &["-vmm", "-xxx"],
    &["-t"],
    &["-tv"],
    &["-tvnn"],
    &["-tvn"],
    &["-tD"],
    &["-P"],
    &["-PP"],
    &["-PPvmm"],
    &["-Pv"],
    &["-b"],
    &["-bv"],
    &["-bvv"],
    &["-bvmm"],
];

/// `-s` and `-d` filters built from the first devices' own slots, IDs and
/// classes (so that each matches something), in turn with each mode that
/// filters; `ours` and `theirs` are the arguments selecting the input.
fn filters(ours: &[&str], theirs: &[&str]) {
    let mut args = theirs.to_vec();
    args.push("-n");
    let listing = text(&lspci(&args));
    let modes: [&[&str]; 5] = [&["-t"], &["-mm"], &["-tv"], &["-vmm"], &["-P"]];
    let mut k = 0;
    for line in listing.lines().take(4) {
        // "00:03.0 0200: 1af4:1041 (rev 01)"
        let mut f = line.split(' ');
        let slot = f.next().unwrap();
        let class = f.next().unwrap().trim_end_matches(':');
        let ids = f.next().unwrap();
        let (vendor, device) = ids.split_once(':').unwrap();
        for sel in [
            vec!["-s", slot],
            vec!["-d", ids],
            vec!["-d", &format!("{vendor}:")],
            vec!["-d", &format!(":{device}")],
            vec!["-d", &format!("::{class}")],
            vec!["-d", &format!("::{}x", &class[..3])],
            vec!["-d", &format!("{vendor}::x{}", &class[1..])],
            vec!["-s", slot, "-d", &format!("::{class}")],
        ] {
            let tail: Vec<&str> = sel.iter().chain(modes[k % modes.len()]).copied().collect();
            same_as(&[ours, &tail].concat(), &[theirs, &tail].concat());
            k += 1;
        }
    }
    assert!(k > 0, "no device listed by lspci {theirs:?}");
}

#[test]
fn sysfs_modes_match_lspci() {
    for mode in MODES {
        same(mode);
    }
    same(&["-kvmm"]);
    same(&["-kvm"]);
    same(&["-bkv"]);
    filters(&[], &[]);
    // Masks that match several classes.
    same(&["-d", "::0x00"]);
    same(&["-d", "::xxxx", "-mm"]);
    same(&["-d", "*:*:*"]);
}

#[test]
fn dump_modes_match_lspci() {
    for dump in dumps() {
        let f = dump.to_str().unwrap();
        for mode in MODES {
            let mut args = vec!["-F", f];
            args.extend_from_slice(mode);
            same(&args);
        }
        filters(&["-F", f], &["-F", f]);
    }
}

#[test]
fn tree_covers_the_topology_cases() {
    // synthetic-tree.lspci-x.txt has the bridge layouts the tree code
    // distinguishes; make sure lspci draws each (the comparison itself
    // is in dump_modes_match_lspci).
    let f = data().join("synthetic-tree.lspci-x.txt");
    let f = f.to_str().unwrap();
    let tree = same(&["-F", f, "-tv"]);
    for needle in [
        "-[01-03]----00.0-[02-03]--+-00.0-[03]--+-00.0",
        "+-02.0--\n",
        "-[05-06]--+-[0000:05]---00.0",
        " +-[0000:0a]---00.0",
        " +-[0002:10]---00.0-[11]----00.0",
        "Red Hat, ...\n",
    ] {
        assert!(tree.contains(needle), "lspci -tv lacks {needle:?}:\n{tree}");
    }
    let path = same(&["-F", f, "-PP"]);
    assert!(
        path.contains("0000:00:01.0/01:00.0/02:00.0/03:00.7 "),
        "{path}"
    );
}

#[test]
fn fake_sysfs_matches_lspci() {
    let trees = [
        // Devices behind a function that is no bridge (as behind a VMD
        // endpoint), one of them in turn the parent of another.
        FakeSysfs::build(
            "sysfs-tree",
            &data().join("synthetic-tree.lspci-x.txt"),
            &[
                ("0000:0a:00.0", "0000:00:04.0"),
                ("0000:08:00.0", "0000:0a:00.0"),
            ],
        ),
        FakeSysfs::build(
            "sysfs-synthetic",
            &data().join("synthetic.lspci-xxxx.txt"),
            &[],
        ),
        FakeSysfs::build("sysfs-msi", &data().join("msi-pm.lspci-xxx.txt"), &[]),
    ];
    let mut seen = String::new();
    for t in &trees {
        for mode in MODES {
            seen.push_str(&t.same(mode));
        }
        for args in [
            &[][..],
            &["-v"],
            &["-vv"],
            &["-k"],
            &["-kvmm"],
            &["-nn", "-v"],
            &["-x"],
            &["-xxxx"],
            &["-D"],
        ] {
            seen.push_str(&t.same(args));
        }
        let param = t.param();
        filters(&["-O", &param], &["-A", "linux-sysfs", "-O", &param]);
    }
    // The tree exercised what it was built for.
    for needle in [
        "\tPhysical Slot: 11-1\n",
        "\tDeviceName:  Onboard \"LAN\" 1\n",
        "\tDevice tree node: ",
        "DTNode:\t",
        "PhySlot:\t",
        ", IOMMU group 1",
        "IOMMUGroup:\t",
        "NUMANode:\t0\n",
        ", NUMA node 0",
        "Driver:\tdrv",
        "\tKernel driver in use: drv",
        " [virtual]",
        "-04.0-[0a]----00.0-[08]----00.0",
        "0000:00:04.0/00.0/00.0 ",
    ] {
        assert!(seen.contains(needle), "no output had {needle:?}");
    }
}

/// pcibox's message for a bad filter ends in lspci's own words.
#[test]
fn filter_errors_match_lspci() {
    for (flag, spec) in [
        ("-s", "1:2:3:4"),
        ("-s", "00:0.1.2"),
        ("-s", "zz"),
        ("-s", ".x"),
        ("-s", "100:"),
        ("-s", "fffffffff:0:0"),
        ("-d", "1af4"),
        ("-d", "12345:"),
        ("-d", "x:1"),
        ("-d", "1:2:3:4:5"),
        ("-d", "::xxxxx"),
        ("-d", "::0200:100"),
        ("-d", &"0".repeat(70)),
    ] {
        let theirs = lspci(&[flag, spec]);
        assert!(!theirs.status.success(), "lspci {flag} {spec} succeeded");
        let err = String::from_utf8_lossy(&theirs.stderr);
        let reason = err.trim_end().rsplit(": ").next().unwrap();
        fails(&[flag, spec], &format!("{flag} {spec}: {reason}"));
    }
    // A filter that matches nothing is an error (lspci prints nothing).
    fails(&["-d", "ffff:"], "-d ffff:: no such device");
    fails(&["-t", "-s", "99:"], "-s 99:: no such device");
}

#[test]
fn unsupported_flags_are_refused() {
    for (args, needle) in [
        (&["-M"][..], "-M (bus mapping mode"),
        (&["-q"], "-q/-Q"),
        (&["-Q"], "-q/-Q"),
        (&["-p", "/lib/modules/pcimap"], "-p (modules.pcimap"),
        (&["-A", "linux-proc"], "-A (pcibox reads sysfs"),
        (&["-H", "1"], "-H (direct hardware"),
        (&["-G"], "-G (libpci debugging)"),
        (
            &["-O", "proc.path=/proc/bus/pci"],
            "-O proc.path=/proc/bus/pci",
        ),
        (&["-mk"], "-k with -m shows drivers only with -v"),
    ] {
        fails(args, needle);
        assert!(text(&pcibox(args)).is_empty(), "{args:?} printed a listing");
    }
    // Combinations where a flag would have no effect, and flags lspci
    // does not have either: clap's usage error.
    for args in [
        &["-t", "-m"][..],
        &["-t", "-x"],
        &["-t", "-k"],
        &["-t", "-b"],
        &["-t", "-P"],
        &["--json", "-m"],
        &["--json", "-t"],
        &["--json", "-n"],
        &["--json", "-b"],
        &["-F", "x", "-O", "sysfs.path=/sys/bus/pci"],
        &["-g"],
        &["extra"],
    ] {
        let o = pcibox(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    // What the help lists.
    let help = text(&pcibox(&["--help"]));
    for flag in ["-m", "-t", "-d", "-b", "-P", "-O", "--json"] {
        assert!(help.contains(&format!("  {flag}")), "--help lacks {flag}");
    }
}

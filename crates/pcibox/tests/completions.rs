//! Shell completions and man pages come from the CLI definition: every
//! subcommand appears, the bash script parses, and every page renders
//! through the real groff without a warning.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

const PCIBOX: &str = env!("CARGO_BIN_EXE_pcibox");

/// The subcommands `pcibox --help` lists (the CLI's own account).
fn subcommands() -> Vec<String> {
    let out = Command::new(PCIBOX).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let cmds: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // "  name   about"; a wrapped about line is indented deeper.
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(cmds.len() >= 9, "{cmds:?}");
    cmds
}

fn stdout(args: &[&str]) -> String {
    let out = Command::new(PCIBOX).args(args).output().unwrap();
    assert!(out.status.success(), "pcibox {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completion_parses_and_knows_every_subcommand() {
    let script = stdout(&["completions", "bash"]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("pcibox.bash");
    std::fs::write(&file, &script).unwrap();
    let st = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(st.success(), "bash -n rejects the completion script");
    for c in subcommands() {
        assert!(
            script.contains(&format!(" {c} ")),
            "bash completion lacks {c}"
        );
    }
    // Options of a subcommand complete too.
    assert!(script.contains("--socket"));
}

#[test]
fn other_shells_and_bad_shell() {
    for sh in ["zsh", "fish", "elvish", "powershell"] {
        assert!(
            stdout(&["completions", sh]).contains("serve-device"),
            "{sh}"
        );
    }
    let out = Command::new(PCIBOX)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"));
}

#[test]
fn man_pages_render_without_warnings() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("man");
    let _ = std::fs::remove_dir_all(&dir);
    stdout(&["man", "--dir", dir.to_str().unwrap()]);
    let mut pages = vec!["pcibox".to_string()];
    pages.extend(subcommands().iter().map(|c| format!("pcibox-{c}")));
    for p in &pages {
        let file = dir.join(format!("{p}.1"));
        let roff = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{p}.1: {e}"));
        assert!(roff.contains(&format!(".TH {p} 1")), "{p}.1 title");
        // groff -z: format, discard output; -ww: every warning; -k: UTF-8 input.
        let out = Command::new("groff")
            .args(["-k", "-man", "-z", "-ww", "-Tutf8"])
            .arg(&file)
            .output()
            .expect("groff (Debian groff-base)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{p}.1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), pages.len());
    // Without --dir: the top page on stdout, naming every subcommand.
    let top = stdout(&["man"]);
    for c in subcommands() {
        assert!(top.contains(&c.replace('-', "\\-")), "pcibox.1 lacks {c}");
    }
}

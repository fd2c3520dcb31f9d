//! `cargo xtask deps [--check]`: the crate dependency picture in
//! docs/architecture.md, drawn from `cargo metadata` (a Mermaid flowchart
//! between the `deps:begin`/`deps:end` markers), and the layering rule
//! checked on the same data: a crate depends only on crates in its own
//! layer or below. `--check` changes nothing and fails if the picture is
//! out of date or a dependency goes upward; `scripts/test.sh` runs it.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const DOC: &str = "docs/architecture.md";
const BEGIN: &str = "<!-- deps:begin (cargo xtask deps) -->";
const END: &str = "<!-- deps:end -->";

/// The layers, bottom up: (rank, title, path prefix under the workspace).
const LAYERS: &[(u8, &str, &str)] = &[
    (1, "1. spec", "crates/spec/"),
    (2, "2. kit", "crates/kit"),
    (3, "3. backends and host access", "crates/backends/"),
    (3, "3. backends and host access", "crates/sysfs"),
    (4, "4. drivers", "crates/drivers/"),
    (5, "5. registry", "crates/registry/"),
    (6, "6. broker and CLI", "crates/pcibox"),
    (7, "test rig", "crates/guest-tests"),
    (7, "test rig", "xtask"),
];

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_root: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    kind: Option<String>,
    path: Option<PathBuf>,
}

/// A workspace crate: its layer and its normal dependencies on other
/// workspace crates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    pub rank: u8,
    pub layer: &'static str,
    pub deps: BTreeSet<String>,
}

pub fn main(args: Vec<String>) -> ExitCode {
    let check = match args.as_slice() {
        [] => false,
        [a] if a == "--check" => true,
        _ => {
            eprintln!("usage: cargo xtask deps [--check]");
            return ExitCode::from(2);
        }
    };
    match run(check) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask deps: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(check: bool) -> Result<(), String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: Metadata =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let crates = workspace(&meta)?;
    let upward = violations(&crates);
    if !upward.is_empty() {
        return Err(format!(
            "dependencies going up a layer: {}",
            upward.join(", ")
        ));
    }
    let doc_path = meta.workspace_root.join(DOC);
    let doc = std::fs::read_to_string(&doc_path)
        .map_err(|e| format!("cannot read {}: {e}", doc_path.display()))?;
    let updated = splice(&doc, &mermaid(&crates))?;
    if updated == doc {
        println!("xtask deps: {DOC} is up to date ({} crates)", crates.len());
        return Ok(());
    }
    if check {
        return Err(format!(
            "{DOC}'s dependency picture is out of date: run `cargo xtask deps`"
        ));
    }
    std::fs::write(&doc_path, updated)
        .map_err(|e| format!("cannot write {}: {e}", doc_path.display()))?;
    println!("xtask deps: {DOC} updated");
    Ok(())
}

/// The workspace crates, each placed in its layer by where it lives.
fn workspace(meta: &Metadata) -> Result<BTreeMap<String, Crate>, String> {
    let root = &meta.workspace_root;
    let mut out = BTreeMap::new();
    for p in &meta.packages {
        let dir = p.manifest_path.parent().unwrap_or(Path::new(""));
        let rel = dir
            .strip_prefix(root)
            .unwrap_or(dir)
            .to_string_lossy()
            .into_owned();
        let (rank, layer) = layer_of(&rel)
            .ok_or_else(|| format!("{} ({rel}) is in no layer: add it to LAYERS", p.name))?;
        let deps = p
            .dependencies
            .iter()
            .filter(|d| d.kind.is_none() && d.path.is_some())
            .map(|d| d.name.clone())
            .collect();
        out.insert(p.name.clone(), Crate { rank, layer, deps });
    }
    Ok(out)
}

fn layer_of(rel: &str) -> Option<(u8, &'static str)> {
    LAYERS
        .iter()
        .find(|(_, _, prefix)| rel == prefix.trim_end_matches('/') || rel.starts_with(prefix))
        .map(|&(rank, title, _)| (rank, title))
}

/// Every dependency from a crate to one in a higher layer, as `a → b`.
pub fn violations(crates: &BTreeMap<String, Crate>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, c) in crates {
        for d in &c.deps {
            if crates.get(d).is_some_and(|t| t.rank > c.rank) {
                out.push(format!("{name} → {d}"));
            }
        }
    }
    out
}

/// Edges without the ones another path already implies (a transitive
/// reduction), so the picture shows structure rather than every link.
fn reduced(crates: &BTreeMap<String, Crate>) -> BTreeSet<(String, String)> {
    let reach = |from: &str, skip: &str| -> bool {
        // Is `skip` reachable from `from` without the direct edge from→skip?
        let mut stack: Vec<&str> = crates[from]
            .deps
            .iter()
            .filter(|d| d.as_str() != skip && crates.contains_key(*d))
            .map(String::as_str)
            .collect();
        let mut seen = BTreeSet::new();
        while let Some(n) = stack.pop() {
            if n == skip {
                return true;
            }
            if seen.insert(n) {
                stack.extend(
                    crates[n]
                        .deps
                        .iter()
                        .filter(|d| crates.contains_key(*d))
                        .map(String::as_str),
                );
            }
        }
        false
    };
    let mut out = BTreeSet::new();
    for (name, c) in crates {
        for d in c.deps.iter().filter(|d| crates.contains_key(*d)) {
            if !reach(name, d) {
                out.insert((name.clone(), d.clone()));
            }
        }
    }
    out
}

/// The Mermaid flowchart: one subgraph per layer, bottom layer last.
pub fn mermaid(crates: &BTreeMap<String, Crate>) -> String {
    let id = |n: &str| n.replace('-', "_");
    let mut layers: BTreeMap<(u8, &str), Vec<&str>> = BTreeMap::new();
    for (name, c) in crates {
        layers.entry((c.rank, c.layer)).or_default().push(name);
    }
    let mut s = String::from("```mermaid\nflowchart TB\n");
    for (i, ((_, title), names)) in layers.iter().rev().enumerate() {
        s.push_str(&format!("  subgraph L{i}[\"{title}\"]\n"));
        for n in names {
            s.push_str(&format!("    {}[{n}]\n", id(n)));
        }
        s.push_str("  end\n");
    }
    for (a, b) in reduced(crates) {
        s.push_str(&format!("  {} --> {}\n", id(&a), id(&b)));
    }
    s.push_str("```\n");
    s
}

/// `doc` with the text between the markers replaced by `picture`.
fn splice(doc: &str, picture: &str) -> Result<String, String> {
    let (Some(a), Some(b)) = (doc.find(BEGIN), doc.find(END)) else {
        return Err(format!("{DOC} lacks the markers {BEGIN} … {END}"));
    };
    if b < a {
        return Err(format!("{DOC}: {END} before {BEGIN}"));
    }
    Ok(format!("{}{BEGIN}\n{picture}{}", &doc[..a], &doc[b..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c(rank: u8, deps: &[&str]) -> Crate {
        Crate {
            rank,
            layer: "x",
            deps: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn upward_dependencies_are_found() {
        let mut g = BTreeMap::new();
        g.insert("spec".to_string(), c(1, &[]));
        g.insert("kit".to_string(), c(2, &["spec"]));
        assert!(violations(&g).is_empty());
        g.insert("spec".to_string(), c(1, &["kit"]));
        assert_eq!(violations(&g), vec!["spec → kit".to_string()]);
    }

    #[test]
    fn implied_edges_are_not_drawn() {
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), c(1, &[]));
        g.insert("b".to_string(), c(2, &["a"]));
        g.insert("c".to_string(), c(3, &["a", "b", "serde"]));
        let edges = reduced(&g);
        assert!(edges.contains(&("c".into(), "b".into())));
        assert!(
            !edges.contains(&("c".into(), "a".into())),
            "c→a is implied by c→b→a"
        );
        assert!(mermaid(&g).contains("  c --> b\n"));
    }

    #[test]
    fn layers_cover_the_workspace_folders() {
        assert_eq!(layer_of("crates/spec/pci").map(|l| l.0), Some(1));
        assert_eq!(layer_of("crates/kit").map(|l| l.0), Some(2));
        assert_eq!(layer_of("crates/pcibox").map(|l| l.0), Some(6));
        assert_eq!(layer_of("xtask").map(|l| l.0), Some(7));
        assert_eq!(layer_of("crates/elsewhere"), None);
    }

    #[test]
    fn splice_replaces_only_between_markers() {
        let doc = format!("head\n{BEGIN}\nold\n{END}\ntail\n");
        let out = splice(&doc, "new\n").unwrap();
        assert_eq!(out, format!("head\n{BEGIN}\nnew\n{END}\ntail\n"));
        assert!(splice("no markers", "x").is_err());
    }
}

//! Looking into a state directory the daemon refuses (`--check`), and
//! keeping what is intact (`--salvage`).
//!
//! Salvage reads every intact frame — of the snapshot and of every log
//! segment, also past damage — applies the snapshot's, then every log record
//! it does not hold, in order; changes that no longer apply are skipped, and
//! the tree is repaired (missing parents created, missing children
//! dropped). The old files move to `salvaged-<unix time>/` in the directory
//! and a new snapshot and log are written. It reports everything it could
//! not keep.

use super::frame::Kind;
use super::recover::{self, Scan, SNAPSHOT};
use super::{apply, create_segment, io_err, sync_dir, write_snapshot, Lock, PersistError};
use crate::store::{Change, Domain};
use crate::tree::Tree;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// What `check` found, or what `salvage` did.
#[derive(Debug)]
pub struct Report {
    /// Human-readable lines.
    pub text: String,
    /// `check`: the daemon would start; `salvage`: nothing was lost.
    pub whole: bool,
}

fn describe(out: &mut String, s: &Scan) {
    let header = match &s.header {
        Ok(seq) => format!("record {seq}"),
        Err(e) => format!("header: {e}"),
    };
    let seqs = match (s.frames.first(), s.frames.last()) {
        (Some(a), Some(b)) => format!("records {}..={}", a.1, b.1),
        _ => "no records".into(),
    };
    let _ = writeln!(
        out,
        "{}: {} bytes, {header}, {} intact frames ({seqs})",
        s.path.display(),
        s.len,
        s.frames.len()
    );
    for d in &s.damage {
        let _ = writeln!(
            out,
            "  damaged bytes {}..{}: {}{}",
            d.start,
            d.end,
            d.what,
            if d.end == s.len {
                " (to the end of the file)"
            } else {
                ""
            }
        );
    }
}

fn scans(dir: &Path) -> Result<(Option<Scan>, Vec<Scan>), PersistError> {
    let snap = dir.join(SNAPSHOT);
    let snap = match snap.exists() {
        true => Some(recover::scan(&snap, Kind::Snapshot)?),
        false => None,
    };
    let mut segs = Vec::new();
    for (_, path) in recover::segments(dir)? {
        segs.push(recover::scan(&path, Kind::Log)?);
    }
    Ok((snap, segs))
}

/// Describes the state in `dir` and whether the daemon would start on it.
pub fn check(dir: &Path) -> Result<Report, PersistError> {
    let _lock = Lock::take(dir)?;
    let (snap, segs) = scans(dir)?;
    let mut text = String::new();
    match &snap {
        Some(s) => describe(&mut text, s),
        None => text.push_str("no snapshot\n"),
    }
    for s in &segs {
        describe(&mut text, s);
    }
    let whole = match recover::load(dir) {
        Ok(Some(l)) => {
            let _ = writeln!(
                text,
                "verdict: the daemon starts with {} nodes ({} log records replayed{})",
                l.tree.len(),
                l.replayed,
                if l.dropped > 0 {
                    format!(", a torn last record of {} bytes dropped", l.dropped)
                } else {
                    String::new()
                }
            );
            true
        }
        Ok(None) => {
            text.push_str("verdict: no state; the daemon starts a new registry\n");
            true
        }
        Err(e) => {
            let _ = writeln!(text, "verdict: the daemon refuses to start: {e}");
            false
        }
    };
    Ok(Report { text, whole })
}

/// Keeps what is intact in `dir` as a new state (see the module's doc).
pub fn salvage(dir: &Path) -> Result<Report, PersistError> {
    let _lock = Lock::take(dir)?;
    let (snap, segs) = scans(dir)?;
    let mut text = String::new();
    let mut whole = true;
    let mut tree = Tree::empty();
    let mut domains: BTreeMap<u16, Domain> = BTreeMap::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut put = |tree: &mut Tree, domains: &mut BTreeMap<u16, Domain>, changes: Vec<Change>| {
        for c in changes {
            if let Err(e) = apply(tree, domains, vec![c]) {
                skipped.push(e);
            }
        }
    };
    // The snapshot's intact frames, and the first record it does not hold.
    let start = match &snap {
        Some(s) => {
            for (_, _, changes) in &s.frames {
                put(&mut tree, &mut domains, changes.clone());
            }
            if !s.damage.is_empty() || s.end_marker.is_none() {
                whole = false;
            }
            s.header.clone().unwrap_or(0)
        }
        None => {
            tree = Tree::new();
            0
        }
    };
    // Every intact log record it does not hold, in order, once each.
    let mut records: BTreeMap<u64, Vec<Change>> = BTreeMap::new();
    for s in &segs {
        if !s.damage.is_empty() {
            whole = false;
        }
        for (_, seq, changes) in &s.frames {
            records.entry(*seq).or_insert_with(|| changes.clone());
        }
    }
    let mut expect: Option<u64> = None;
    let mut replayed = 0usize;
    for (seq, changes) in records.range(start..) {
        if let Some(e) = expect.filter(|e| e < seq) {
            whole = false;
            let _ = writeln!(text, "log records {e}..={} are lost", seq - 1);
        }
        expect = Some(seq + 1);
        put(&mut tree, &mut domains, changes.clone());
        replayed += 1;
    }
    let next = expect.unwrap_or(start.max(1));
    for e in &skipped {
        let _ = writeln!(text, "skipped a change that no longer applies: {e}");
    }
    let repairs = tree.repair();
    for r in &repairs {
        let _ = writeln!(text, "repaired {r}");
    }
    if !skipped.is_empty() || !repairs.is_empty() {
        whole = false;
    }
    tree.check().map_err(PersistError::Inconsistent)?;
    // The old files go aside; the new state is what was kept.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = dir.join(format!("salvaged-{secs}"));
    std::fs::create_dir(&aside).map_err(io_err(&aside))?;
    let mut moved = Vec::new();
    for s in snap.iter().chain(&segs) {
        if let Some(name) = s.path.file_name() {
            std::fs::rename(&s.path, aside.join(name)).map_err(io_err(&s.path))?;
            moved.push(name.to_string_lossy().into_owned());
        }
    }
    sync_dir(dir)?;
    write_snapshot(dir, &tree, &domains, next)?;
    create_segment(dir, next)?;
    let _ = writeln!(
        text,
        "salvaged {} nodes ({replayed} log records replayed); the old files ({}) are in {}",
        tree.len(),
        moved.join(" "),
        aside.display()
    );
    if !whole {
        text.push_str("some changes were lost: see above\n");
    }
    Ok(Report { text, whole })
}

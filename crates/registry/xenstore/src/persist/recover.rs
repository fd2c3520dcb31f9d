//! Reading a state directory back: each file is scanned into its intact
//! frames and its damaged spans; [`load`] then insists on a whole history
//! (a snapshot, and log records continuing it without a gap, damage allowed
//! only as a torn tail of the last segment), while the salvage tool
//! ([`super::salvage`]) keeps whatever is intact.

use super::codec::decode_body;
use super::frame::{self, HeaderError, Kind, FILE_HEADER_LEN};
use super::{apply, io_err, PersistError};
use crate::store::{Change, Domain};
use crate::tree::Tree;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The snapshot's file name.
pub const SNAPSHOT: &str = "snapshot";
/// Prefix of log segment file names (`log.<first record, 20 digits>`).
pub const SEGMENT_PREFIX: &str = "log.";
/// Sequence number of a snapshot's end marker frame.
pub const END_MARKER: u64 = u64::MAX;

/// The name of the segment whose first record is `first`.
pub fn segment_name(first: u64) -> String {
    format!("{SEGMENT_PREFIX}{first:020}")
}

/// The log segments in `dir`, by first record.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, PersistError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name();
        let Some(n) = name.to_str().and_then(|n| n.strip_prefix(SEGMENT_PREFIX)) else {
            continue;
        };
        if n.len() == 20 {
            if let Ok(first) = n.parse() {
                out.push((first, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A damaged span of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// First byte.
    pub start: usize,
    /// First byte after it: the next intact frame, or the end of the file.
    pub end: usize,
    /// What is wrong at `start`.
    pub what: String,
}

/// What one file holds.
#[derive(Debug)]
pub struct Scan {
    /// The file.
    pub path: PathBuf,
    /// Its length.
    pub len: usize,
    /// The header's sequence number, or what is wrong with the header.
    pub header: Result<u64, HeaderError>,
    /// Intact frames: offset, sequence number, changes.
    pub frames: Vec<(usize, u64, Vec<Change>)>,
    /// A snapshot's end marker: its offset and the frame count it states.
    pub end_marker: Option<(usize, u64)>,
    /// Damaged spans, in order.
    pub damage: Vec<Damage>,
}

impl Scan {
    /// Whether the only damage is a torn tail: one span reaching the end of
    /// the file with nothing intact after it.
    pub fn torn_tail_only(&self) -> bool {
        matches!(&self.damage[..], [d] if d.end == self.len)
    }

    /// Where the intact part ends (the torn tail starts).
    pub fn valid_len(&self) -> usize {
        self.damage.first().map_or(self.len, |d| d.start)
    }

    /// The first damage as an error (for a strict load).
    pub fn damaged(&self, d: &Damage) -> PersistError {
        let intact_after = self.frames.iter().filter(|f| f.0 > d.start).count();
        PersistError::Damaged {
            path: self.path.clone(),
            offset: d.start,
            what: format!("{}; {intact_after} intact records follow", d.what),
        }
    }
}

/// Scans the file at `path` as a `kind` file.
pub fn scan(path: &Path, kind: Kind) -> Result<Scan, PersistError> {
    let data = std::fs::read(path).map_err(io_err(path))?;
    let header = frame::parse_file_header(&data, kind);
    let mut s = Scan {
        path: path.to_path_buf(),
        len: data.len(),
        header,
        frames: Vec::new(),
        end_marker: None,
        damage: Vec::new(),
    };
    let mut pos = FILE_HEADER_LEN.min(data.len());
    while pos < data.len() {
        let what = match frame::read_frame(&data, pos) {
            Ok(f) if f.seq == END_MARKER && kind == Kind::Snapshot && f.body.len() == 8 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(f.body);
                s.end_marker = Some((pos, u64::from_le_bytes(n)));
                pos = f.end;
                continue;
            }
            Ok(f) => match decode_body(f.body) {
                Some(changes) => {
                    s.frames.push((pos, f.seq, changes));
                    pos = f.end;
                    continue;
                }
                None => format!("record {} is malformed", f.seq),
            },
            Err(e) => format!("damaged record: {e}"),
        };
        let next = frame::next_intact(&data, pos);
        let end = next.unwrap_or(data.len());
        s.damage.push(Damage {
            start: pos,
            end,
            what,
        });
        pos = end;
    }
    Ok(s)
}

/// What a strict load found.
#[derive(Debug)]
pub struct Loaded {
    /// The tree.
    pub tree: Tree,
    /// Domain states.
    pub domains: BTreeMap<u16, Domain>,
    /// The number the next log record gets.
    pub next_seq: u64,
    /// Log records replayed over the snapshot.
    pub replayed: usize,
    /// The last segment (appended to from now on), its first record and
    /// the length of its intact part.
    pub last: Option<(u64, PathBuf, usize)>,
    /// Bytes of torn tail to cut off the last segment.
    pub dropped: usize,
    /// Segments wholly contained in the snapshot (a compaction stopped
    /// before removing them).
    pub obsolete: Vec<PathBuf>,
    /// Bytes of log since the snapshot.
    pub log_bytes: u64,
}

fn header_of(s: &Scan) -> Result<u64, PersistError> {
    s.header.clone().map_err(|e| PersistError::Damaged {
        path: s.path.clone(),
        offset: 0,
        what: e.to_string(),
    })
}

/// Loads a state directory strictly; `Ok(None)` if it holds no state at
/// all (a new registry).
pub fn load(dir: &Path) -> Result<Option<Loaded>, PersistError> {
    let snap_path = dir.join(SNAPSHOT);
    let segs = segments(dir)?;
    let have_snapshot = snap_path.exists();
    if !have_snapshot && segs.is_empty() {
        return Ok(None);
    }
    let mut domains = BTreeMap::new();
    let (mut tree, start) = if have_snapshot {
        let s = scan(&snap_path, Kind::Snapshot)?;
        let next = header_of(&s)?;
        if let Some(d) = s.damage.first() {
            return Err(s.damaged(d));
        }
        match s.end_marker {
            Some((_, n)) if n == s.frames.len() as u64 => {}
            _ => {
                return Err(PersistError::Damaged {
                    path: s.path.clone(),
                    offset: s.len,
                    what: "the snapshot ends before its end marker".into(),
                })
            }
        }
        let mut t = Tree::empty();
        for (_, _, changes) in s.frames {
            apply(&mut t, &mut domains, changes).map_err(PersistError::Inconsistent)?;
        }
        (t, next)
    } else {
        (Tree::new(), 1)
    };
    let mut loaded = Loaded {
        tree: Tree::empty(),
        domains: BTreeMap::new(),
        next_seq: start,
        replayed: 0,
        last: None,
        dropped: 0,
        obsolete: Vec::new(),
        log_bytes: 0,
    };
    let Some(&(first, _)) = segs.first() else {
        return Err(PersistError::Missing {
            dir: dir.to_path_buf(),
            what: format!(
                "the snapshot continues with log record {start}, but there is no log \
                 (deleted or lost)"
            ),
        });
    };
    if first > start {
        return Err(PersistError::Missing {
            dir: dir.to_path_buf(),
            what: if have_snapshot {
                format!("log records {start} to {} are missing", first - 1)
            } else {
                format!("the log starts at record {first}, but there is no snapshot")
            },
        });
    }
    let mut expect = first;
    let mut segs = segs;
    // A last segment without even a whole header was being created when the
    // daemon stopped (it is flushed before any record goes in): not part of
    // the history.
    if let Some((_, path)) = segs.last().filter(|_| segs.len() > 1) {
        let len = std::fs::metadata(path).map_err(io_err(path))?.len();
        if len < FILE_HEADER_LEN as u64 {
            tracing::warn!(
                "{}: removing a segment that was never started",
                path.display()
            );
            loaded.obsolete.push(path.clone());
            segs.pop();
        }
    }
    for (i, (first, path)) in segs.iter().enumerate() {
        let is_last = i + 1 == segs.len();
        let s = scan(path, Kind::Log)?;
        let named = header_of(&s)?;
        if named != *first {
            return Err(PersistError::Damaged {
                path: path.clone(),
                offset: 0,
                what: format!("its header says it starts at record {named}"),
            });
        }
        if *first != expect {
            return Err(PersistError::Missing {
                dir: dir.to_path_buf(),
                what: format!("log records {expect} to {} are missing", first - 1),
            });
        }
        if let Some(d) = s.damage.first() {
            if !(is_last && s.torn_tail_only()) {
                return Err(s.damaged(d));
            }
            tracing::warn!(
                "{}: dropping a torn last record ({} bytes at byte {}: {})",
                path.display(),
                s.len - d.start,
                d.start,
                d.what
            );
            loaded.dropped = s.len - d.start;
        }
        let end = *first + s.frames.len() as u64;
        // A segment the snapshot wholly holds is left over from a compaction.
        if end <= start && !is_last {
            loaded.obsolete.push(path.clone());
        } else {
            loaded.log_bytes += s.valid_len() as u64;
        }
        for (offset, seq, changes) in s.frames.iter().cloned() {
            if seq != expect {
                return Err(PersistError::Damaged {
                    path: path.clone(),
                    offset,
                    what: format!("record {seq} where {expect} was due"),
                });
            }
            expect += 1;
            if seq >= start {
                apply(&mut tree, &mut domains, changes).map_err(PersistError::Inconsistent)?;
                loaded.replayed += 1;
            }
        }
        if is_last {
            loaded.last = Some((*first, path.clone(), s.valid_len()));
        }
    }
    if expect < start {
        return Err(PersistError::Missing {
            dir: dir.to_path_buf(),
            what: format!(
                "the log ends at record {}, before the snapshot's {start}",
                expect.saturating_sub(1)
            ),
        });
    }
    tree.check().map_err(PersistError::Inconsistent)?;
    loaded.tree = tree;
    loaded.domains = domains;
    loaded.next_seq = expect;
    Ok(Some(loaded))
}

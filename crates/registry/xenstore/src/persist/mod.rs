//! Durability: every change is appended to a log and flushed with
//! `fdatasync` (by the [`sync`] thread) before the replies it caused, or
//! any answer revealing it, are sent. The log is a series of segments
//! (`log.<first record>`); once it grows past a threshold the daemon starts
//! a new segment (written as `log.next`; the syncer flushes the old one and
//! renames it into place), then a thread writes the whole tree, as it was
//! then, as a snapshot that the next records continue (`snapshot`, written
//! aside, flushed and renamed into place), after which the older segments
//! go. The loop only creates a file and copies the tree (its nodes and
//! paths are shared, so that is a copy of pointers): no flush, no walk. See [`frame`] for the file
//! format and [`recover`] for what start-up accepts: a whole history, with
//! damage allowed only as a torn last record.

mod codec;
pub mod frame;
pub mod recover;
pub mod salvage;
mod space;
mod sync;
#[cfg(test)]
mod tests;

pub use codec::{
    decode_body, decode_v1, encode_body, encode_v1, entry_len, fnv1a32, node_len, CodecError,
};

use crate::store::{Change, Domain, Store};
use crate::tree::Tree;
use frame::Kind;
use recover::{segment_name, END_MARKER, SNAPSHOT};
use space::Reserve;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sync::Syncer;

/// Snapshot bytes written between flushes.
const SNAPSHOT_FLUSH: usize = 4 << 20;

/// Log space allocated ahead at a time (see [`space`]).
const RESERVE_CHUNK: u64 = 256 << 10;

/// A snapshot being written on its own thread.
#[derive(Debug)]
struct Snapshotting {
    thread: std::thread::JoinHandle<Result<(), PersistError>>,
    nodes: usize,
    started: Instant,
}

/// Where to find out more when start-up refuses a state directory.
const HINT: &str = "refusing to start; `pcibox xenstored --state-dir DIR --check` shows what is \
                    there, `--salvage` keeps what is intact";

/// A persistence failure.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A file could not be read or written.
    #[error("cannot read or write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another daemon holds the state directory.
    #[error("{dir}: in use by another pcibox xenstored{holder}")]
    Locked {
        /// The state directory.
        dir: PathBuf,
        /// ` (pid N)` if the holder's pid is known.
        holder: String,
    },
    /// A file is damaged where a crash cannot have damaged it (the
    /// snapshot, a header, or a log record with intact records after it).
    #[error("{path}: damaged at byte {offset} ({what}): {HINT}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: usize,
        /// What was found.
        what: String,
    },
    /// Part of the history is missing.
    #[error("{dir}: {what}: {HINT}")]
    Missing {
        /// The state directory.
        dir: PathBuf,
        /// What is missing.
        what: String,
    },
    /// The recovered tree breaks an invariant.
    #[error("recovered tree is inconsistent: {0}")]
    Inconsistent(String),
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// The tree.
    pub tree: Tree,
    /// Domain states.
    pub domains: BTreeMap<u16, Domain>,
    /// Log records replayed over the snapshot.
    pub replayed: usize,
    /// Bytes of torn log tail dropped.
    pub dropped: usize,
    /// The directory held no state: a new registry was created.
    pub created: bool,
}

/// The state directory.
#[derive(Debug)]
pub struct Persist {
    dir: PathBuf,
    /// Held for as long as the daemon runs.
    _lock: Lock,
    /// The segment appended to (by the [`sync`] thread), its first record
    /// and its length.
    log_path: PathBuf,
    log_first: u64,
    log_len: u64,
    /// Bytes of log since the snapshot (all segments).
    log_bytes: u64,
    /// Room for the store's changes in the segment.
    reserve: Reserve,
    /// A compaction started a new segment: the syncer's switch count once
    /// it is in place; the snapshot is still to come.
    rotated: Option<u64>,
    /// The snapshot being written.
    snapshotting: Option<Snapshotting>,
    /// After a failed compaction: when to try again, and the next delay.
    compact_retry: Option<Instant>,
    compact_backoff: Duration,
    /// The number the next record gets.
    next_seq: u64,
    compact_after: u64,
    syncer: Syncer,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Replays one record's changes, in order.
pub(crate) fn apply(
    tree: &mut Tree,
    domains: &mut BTreeMap<u16, Domain>,
    record: Vec<Change>,
) -> Result<(), String> {
    for c in record {
        match c {
            Change::Node { path, node } => tree.set(&path, node),
            Change::Children {
                path,
                removed,
                added,
            } => {
                if !tree.edit_children(&path, &removed, &added) {
                    return Err(format!("{path}: children changed, but it does not exist"));
                }
            }
            Change::Domain { domid, introduced } => {
                domains.entry(domid).or_default().introduced = introduced;
            }
        }
    }
    Ok(())
}

impl Drop for Persist {
    /// Lets a snapshot being written finish (the flush in progress finishes
    /// as the syncer stops).
    fn drop(&mut self) {
        if let Some(s) = self.snapshotting.take() {
            let _ = s.thread.join();
        }
    }
}

impl Persist {
    /// Opens a state directory (locked with [`Lock::take`]) and recovers its
    /// state. A directory without state gets a new registry (the initial
    /// tree).
    pub fn open(lock: Lock, compact_after: u64) -> Result<(Persist, Recovered), PersistError> {
        let dir = &lock.dir.clone();
        // A snapshot being written when the daemon stopped is not one, and
        // a segment not yet put in place holds nothing acknowledged.
        for leftover in ["snapshot.tmp", NEXT_SEGMENT] {
            let tmp = dir.join(leftover);
            if tmp.exists() {
                std::fs::remove_file(&tmp).map_err(io_err(&tmp))?;
            }
        }
        convert_v1(dir)?;
        let (loaded, created) = match recover::load(dir)? {
            Some(l) => (l, false),
            None => {
                let tree = Tree::new();
                write_snapshot(dir, &tree, &BTreeMap::new(), 1)?;
                create_segment(dir, 1)?;
                let l = recover::load(dir)?.ok_or_else(|| PersistError::Missing {
                    dir: dir.to_path_buf(),
                    what: "the new registry vanished".into(),
                })?;
                (l, true)
            }
        };
        let (log_first, log_path, valid) =
            loaded.last.clone().ok_or_else(|| PersistError::Missing {
                dir: dir.to_path_buf(),
                what: "no log segment".into(),
            })?;
        let log = OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        // Cut a torn tail so new records follow the last whole one.
        if loaded.dropped > 0 {
            log.set_len(valid as u64).map_err(io_err(&log_path))?;
            log.sync_all().map_err(io_err(&log_path))?;
        }
        for old in &loaded.obsolete {
            std::fs::remove_file(old).map_err(io_err(old))?;
        }
        sync_dir(dir)?;
        let reserve = Reserve::new(&log, valid as u64, RESERVE_CHUNK, dir.display().to_string())
            .map_err(io_err(&log_path))?;
        let syncer = Syncer::start(log, loaded.tree.generation() - 1).map_err(io_err(&log_path))?;
        Ok((
            Persist {
                dir: dir.to_path_buf(),
                _lock: lock,
                log_path,
                log_first,
                log_len: valid as u64,
                log_bytes: loaded.log_bytes,
                reserve,
                rotated: None,
                snapshotting: None,
                compact_retry: None,
                compact_backoff: Duration::from_secs(1),
                next_seq: loaded.next_seq,
                compact_after,
                syncer,
            },
            Recovered {
                tree: loaded.tree,
                domains: loaded.domains,
                replayed: loaded.replayed,
                dropped: loaded.dropped,
                created,
            },
        ))
    }

    /// Appends one record holding `changes`, which bring the tree to
    /// generation `gen`, and asks for it to be flushed; [`Persist::durable`]
    /// tells when it is.
    pub fn append(&mut self, changes: &[Change], gen: u64) -> Result<(), PersistError> {
        if changes.is_empty() {
            return Ok(());
        }
        let rec = frame::frame(self.next_seq, &encode_body(changes));
        let len = rec.len() as u64;
        self.syncer.write(rec, gen);
        self.next_seq += 1;
        self.log_len += len;
        self.log_bytes += len;
        self.reserve.settle(self.log_len);
        Ok(())
    }

    /// Every change up to this generation is on disk.
    pub fn durable(&self) -> u64 {
        self.syncer.durable()
    }

    /// Readable when a flush has finished (or failed): poll it, then call
    /// [`Persist::check`].
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.syncer.wake_fd()
    }

    /// Clears the wake-up; fails if a flush failed.
    pub fn check(&self) -> Result<(), PersistError> {
        self.syncer.check().map_err(io_err(&self.log_path))
    }

    /// Bytes in the log since the last snapshot.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Limits the store's changes to the room the log has (see [`space`]).
    pub fn space(&self) -> Box<dyn crate::Space> {
        Box::new(self.reserve.clone())
    }

    /// Whether changes are being refused for want of disk space.
    pub fn full(&self) -> bool {
        self.reserve.full()
    }

    /// Compacts if the log has grown past the threshold, on a thread (see
    /// the module's doc); call it every iteration, also to finish a
    /// compaction. A compaction that fails (a full disk) is no error: the
    /// log goes on, the leftovers are removed, and it is tried again later
    /// (after 1 s, doubling up to a minute). Returns whether one finished.
    pub fn maybe_compact(&mut self, store: &Store) -> bool {
        if let Some(s) = self.snapshotting.take_if(|s| s.thread.is_finished()) {
            let result = s.thread.join().unwrap_or_else(|_| {
                Err(PersistError::Inconsistent(
                    "the snapshot thread panicked".into(),
                ))
            });
            return match result {
                // (After a failure the new segment stays: the next attempt
                // only writes the snapshot.)
                Ok(()) => {
                    self.rotated = None;
                    self.log_bytes = self.log_len;
                    tracing::debug!(
                        "compacted: snapshot of {} nodes in {:?}",
                        s.nodes,
                        s.started.elapsed()
                    );
                    self.compact_retry = None;
                    self.compact_backoff = Duration::from_secs(1);
                    true
                }
                Err(e) => {
                    self.compaction_failed(&e);
                    false
                }
            };
        }
        if self.snapshotting.is_some()
            || (self.log_bytes < self.compact_after && self.rotated.is_none())
            || self.compact_retry.is_some_and(|t| Instant::now() < t)
        {
            return false;
        }
        if let Err(e) = self.start_compaction(store) {
            self.compaction_failed(&e);
        }
        false
    }

    /// Whether a compaction is under way.
    pub fn compacting(&self) -> bool {
        self.rotated.is_some() || self.snapshotting.is_some()
    }

    fn compaction_failed(&mut self, e: &PersistError) {
        tracing::warn!(
            "compaction failed, trying again in {:?}: {}",
            self.compact_backoff,
            crate::daemon::chain(e)
        );
        self.compact_retry = Some(Instant::now() + self.compact_backoff);
        self.compact_backoff = (self.compact_backoff * 2).min(Duration::from_secs(60));
    }

    /// Starts a new segment (once per compaction), and once it is in place
    /// a thread writing the snapshot of the tree as it is then. (A snapshot
    /// continued by a segment that might not be on disk yet could make a
    /// crash look like a deleted log.)
    fn start_compaction(&mut self, store: &Store) -> Result<(), PersistError> {
        let switched = match self.rotated {
            Some(n) => n,
            None => {
                let n = self.rotate()?;
                self.rotated = Some(n);
                n
            }
        };
        if self.syncer.switched() < switched {
            return Ok(());
        }
        let (dir, next, first) = (self.dir.clone(), self.next_seq, self.log_first);
        let tree = store.tree().clone();
        let domains = store.domains().clone();
        let nodes = tree.len();
        let thread = std::thread::Builder::new()
            .name("xenstored-snapshot".into())
            .spawn(move || {
                // Background work: the loop comes first for the CPU.
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
                write_snapshot(&dir, &tree, &domains, next)?;
                remove_segments_before(&dir, first)
            })
            .map_err(io_err(&self.dir))?;
        self.snapshotting = Some(Snapshotting {
            thread,
            nodes,
            started: Instant::now(),
        });
        Ok(())
    }

    /// Starts a new segment with the next record, as `log.next`; the
    /// syncer puts it in place (see [`Syncer::switch`]). Returns the
    /// syncer's switch count once that is done.
    fn rotate(&mut self) -> Result<u64, PersistError> {
        let next = self.next_seq;
        let tmp = self.dir.join(NEXT_SEGMENT);
        let log = create_segment_at(&tmp, next, false)?;
        let path = self.dir.join(segment_name(next));
        let len = frame::FILE_HEADER_LEN as u64;
        self.reserve.switch(&log, len).map_err(io_err(&path))?;
        let switched = self
            .syncer
            .switch(log, self.log_len, &self.dir, tmp, path.clone());
        self.log_path = path;
        self.log_first = next;
        self.log_len = len;
        self.log_bytes += len;
        Ok(switched)
    }
}

/// Removes the segments before the one starting at `first` (a snapshot
/// holds them).
fn remove_segments_before(dir: &Path, first: u64) -> Result<(), PersistError> {
    for (f, path) in recover::segments(dir)? {
        if f < first {
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    sync_dir(dir)
}

/// Where a new segment is written until the syncer puts it in place.
const NEXT_SEGMENT: &str = "log.next";

/// Creates, durably, the segment whose first record is `first`, and opens it
/// for appending.
fn create_segment(dir: &Path, first: u64) -> Result<File, PersistError> {
    let f = create_segment_at(&dir.join(segment_name(first)), first, true)?;
    sync_dir(dir)?;
    Ok(f)
}

/// Creates a segment file at `path` whose first record is `first` and opens
/// it for appending; `durable`: flushed. On failure (a full disk) nothing is
/// left behind.
fn create_segment_at(path: &Path, first: u64, durable: bool) -> Result<File, PersistError> {
    // A leftover of a rotation that failed, or of a crash: never in use.
    if path.file_name().is_some_and(|n| n == NEXT_SEGMENT) {
        let _ = std::fs::remove_file(path);
    }
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    let written = f
        .write_all(&frame::file_header(Kind::Log, first))
        .and_then(|()| if durable { f.sync_all() } else { Ok(()) });
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(io_err(path)(e));
    }
    Ok(f)
}

/// Writes `tree` and `domains` as the snapshot that log record `next`
/// continues: to `snapshot.tmp`, flushed, then renamed over `snapshot`.
pub(crate) fn write_snapshot(
    dir: &Path,
    tree: &Tree,
    domains: &BTreeMap<u16, Domain>,
    next: u64,
) -> Result<(), PersistError> {
    let tmp = dir.join("snapshot.tmp");
    let result = (|| {
        let mut f = io::BufWriter::with_capacity(1 << 16, File::create(&tmp)?);
        f.write_all(&frame::file_header(Kind::Snapshot, next))?;
        let mut frames = 0u64;
        let mut unflushed = 0usize;
        // One frame per node keeps frames small; parents come first.
        for (path, node) in tree.walk() {
            let body = encode_body(&[Change::Node {
                path,
                node: Some(node.clone()),
            }]);
            let fr = frame::frame(frames, &body);
            f.write_all(&fr)?;
            frames += 1;
            // Flushed as it goes: a pile of dirty pages would hold up the
            // log's writes when the kernel throttles writers.
            unflushed += fr.len();
            if unflushed >= SNAPSHOT_FLUSH {
                f.flush()?;
                f.get_ref().sync_data()?;
                unflushed = 0;
            }
        }
        let doms: Vec<Change> = domains
            .iter()
            .map(|(d, s)| Change::Domain {
                domid: *d,
                introduced: s.introduced,
            })
            .collect();
        f.write_all(&frame::frame(frames, &encode_body(&doms)))?;
        frames += 1;
        f.write_all(&frame::frame(END_MARKER, &frames.to_le_bytes()))?;
        f.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    let snap = dir.join(SNAPSHOT);
    std::fs::rename(&tmp, &snap).map_err(io_err(&snap))?;
    sync_dir(dir)
}

/// State directories of format 1 (`log` and `snapshot` without headers)
/// are converted: read with format 1's rules and written as format 2; the
/// old files are kept as `log.v1` and `snapshot.v1`. Each step can be
/// redone after a crash.
fn convert_v1(dir: &Path) -> Result<(), PersistError> {
    let (log, snap, snap_v1) = (dir.join("log"), dir.join(SNAPSHOT), dir.join("snapshot.v1"));
    let snap_is_v1 = std::fs::read(&snap).is_ok_and(|d| {
        matches!(
            frame::parse_file_header(&d, Kind::Snapshot),
            Err(frame::HeaderError::Foreign)
        )
    });
    if snap_is_v1 {
        std::fs::rename(&snap, &snap_v1).map_err(io_err(&snap))?;
        sync_dir(dir)?;
    }
    // Format 1 is there while its log is, or (after a crash in the middle
    // of converting) its snapshot has been set aside and no new one written.
    let pending = log.exists() || (snap_v1.exists() && !snap.exists());
    if !pending {
        return Ok(());
    }
    let mut domains = BTreeMap::new();
    let mut tree = Tree::new();
    for (path, is_snapshot) in [(&snap_v1, true), (&log, false)] {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        let (records, valid, err) = decode_v1(&data);
        if let Some(e) = err {
            // Format 1 could only tell a torn last record by its length.
            if is_snapshot || !matches!(e, CodecError::Truncated(_)) {
                return Err(PersistError::Damaged {
                    path: path.clone(),
                    offset: valid,
                    what: format!("format 1: {e}"),
                });
            }
        }
        if is_snapshot {
            tree = Tree::empty();
        }
        for r in records {
            apply(&mut tree, &mut domains, r).map_err(PersistError::Inconsistent)?;
        }
    }
    tree.check().map_err(PersistError::Inconsistent)?;
    for (_, path) in recover::segments(dir)? {
        std::fs::remove_file(&path).map_err(io_err(&path))?;
    }
    write_snapshot(dir, &tree, &domains, 1)?;
    create_segment(dir, 1)?;
    if log.exists() {
        std::fs::rename(&log, dir.join("log.v1")).map_err(io_err(&log))?;
    }
    tracing::info!(
        "{}: converted format 1 state ({} nodes); the old files are kept as *.v1",
        dir.display(),
        tree.len()
    );
    sync_dir(dir)
}

/// The state directory's lock: `DIR/lock`, an exclusive `flock`, held
/// until dropped (or the process ends, however it ends), with the holder's
/// pid inside.
#[derive(Debug)]
pub struct Lock {
    dir: PathBuf,
    _file: File,
}

impl Lock {
    /// Creates `dir` if needed and takes its lock; fails if another daemon
    /// holds it.
    pub fn take(dir: &Path) -> Result<Lock, PersistError> {
        use rustix::fs::{flock, FlockOperation};
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join("lock");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        match flock(&f, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                let pid = pid.trim();
                return Err(PersistError::Locked {
                    dir: dir.to_path_buf(),
                    holder: if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    },
                });
            }
            Err(e) => return Err(io_err(&path)(e.into())),
        }
        // Only informative: a full disk must not stop the daemon here.
        if let Err(e) = f
            .set_len(0)
            .and_then(|()| writeln!(f, "{}", std::process::id()))
        {
            tracing::warn!("{}: {e}", path.display());
        }
        Ok(Lock {
            dir: dir.to_path_buf(),
            _file: f,
        })
    }
}

fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

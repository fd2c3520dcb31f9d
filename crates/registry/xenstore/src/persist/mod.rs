//! Durability: every change is appended to a log and flushed with
//! `fdatasync` (by the [`sync`] thread) before the replies it caused, or
//! any answer revealing it, are sent; the log is compacted
//! into a snapshot (written aside, flushed, renamed over the old one) once it
//! grows past a threshold. On start the snapshot is loaded and the log
//! replayed; a torn record at the log's end (a crash mid-write, never
//! acknowledged) is cut off.

mod codec;
mod sync;

pub use codec::{decode_all, encode, fnv1a32, CodecError};

use crate::store::{Change, Domain, Store};
use crate::tree::{ChangeSet, Tree};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use sync::Syncer;

/// A persistence failure.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The snapshot is damaged (it is only ever replaced whole, so this is
    /// not a crash artefact), or the log is damaged before its last record.
    #[error("{path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: CodecError,
    },
    /// Another daemon holds the state directory.
    #[error("{dir}: in use by another pcibox xenstored{holder}")]
    Locked {
        /// The state directory.
        dir: PathBuf,
        /// ` (pid N)` if the holder's pid is known.
        holder: String,
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
    /// Log records replayed.
    pub replayed: usize,
    /// Bytes of torn log tail dropped.
    pub dropped: usize,
}

/// The state directory: `snapshot` and `log`.
#[derive(Debug)]
pub struct Persist {
    dir: PathBuf,
    /// `lock`, held (`flock`) for as long as the daemon runs.
    _lock: File,
    log: File,
    log_len: u64,
    compact_after: u64,
    syncer: Syncer,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn apply(tree: &mut Tree, domains: &mut BTreeMap<u16, Domain>, record: Vec<Change>) {
    let mut set = ChangeSet::new();
    for c in record {
        match c {
            Change::Node { path, node } => {
                set.insert(path, node);
            }
            Change::Domain { domid, introduced } => {
                domains.entry(domid).or_default().introduced = introduced;
            }
        }
    }
    tree.apply(&mut set);
}

impl Persist {
    /// Opens (creating if needed) a state directory and recovers its state.
    /// An empty directory yields the initial tree.
    pub fn open(dir: &Path, compact_after: u64) -> Result<(Persist, Recovered), PersistError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = lock(dir)?;
        let snap_path = dir.join("snapshot");
        let log_path = dir.join("log");
        let mut domains = BTreeMap::new();
        let mut tree = match std::fs::read(&snap_path) {
            Ok(data) => {
                let (records, _, err) = decode_all(&data);
                if let Some(source) = err {
                    return Err(PersistError::Corrupt {
                        path: snap_path,
                        source,
                    });
                }
                let mut t = Tree::empty();
                for r in records {
                    apply(&mut t, &mut domains, r);
                }
                t
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Tree::new(),
            Err(e) => return Err(io_err(&snap_path)(e)),
        };
        let data = match std::fs::read(&log_path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&log_path)(e)),
        };
        let (records, valid, err) = decode_all(&data);
        if let Some(e) = err {
            // Only the last record can be torn by a crash: it either runs past
            // the end of the file or ends exactly there with a bad body.
            // Damage followed by more records is not a crash artefact, and
            // cutting there would drop acknowledged changes.
            let declared_end = data
                .get(valid..valid + 4)
                .map(|l| valid + 8 + u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize);
            let torn = matches!(e, CodecError::Truncated(_)) || declared_end == Some(data.len());
            if !torn {
                return Err(PersistError::Corrupt {
                    path: log_path,
                    source: e,
                });
            }
            tracing::warn!("{}: dropping torn tail: {e}", log_path.display());
        }
        let replayed = records.len();
        for r in records {
            apply(&mut tree, &mut domains, r);
        }
        tree.check().map_err(PersistError::Inconsistent)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        // Cut a torn tail so new records follow the last whole one.
        log.set_len(valid as u64).map_err(io_err(&log_path))?;
        log.sync_all().map_err(io_err(&log_path))?;
        sync_dir(dir)?;
        let syncer = log
            .try_clone()
            .and_then(|l| Syncer::start(l, tree.generation() - 1))
            .map_err(io_err(&log_path))?;
        Ok((
            Persist {
                dir: dir.to_path_buf(),
                _lock: lock,
                log,
                log_len: valid as u64,
                compact_after,
                syncer,
            },
            Recovered {
                tree,
                domains,
                replayed,
                dropped: data.len() - valid,
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
        let rec = encode(changes);
        let path = self.dir.join("log");
        self.log.write_all(&rec).map_err(io_err(&path))?;
        self.log_len += rec.len() as u64;
        self.syncer.request(gen);
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
        self.syncer.check().map_err(io_err(&self.dir.join("log")))
    }

    /// Bytes in the log since the last snapshot.
    pub fn log_len(&self) -> u64 {
        self.log_len
    }

    /// Writes a snapshot if the log has grown past the threshold.
    pub fn maybe_compact(&mut self, store: &Store) -> Result<bool, PersistError> {
        if self.log_len < self.compact_after {
            return Ok(false);
        }
        self.compact(store)?;
        Ok(true)
    }

    /// Writes the whole state as a snapshot, then empties the log.
    pub fn compact(&mut self, store: &Store) -> Result<(), PersistError> {
        let tmp = self.dir.join("snapshot.tmp");
        let snap = self.dir.join("snapshot");
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        // One record per node keeps records small; parents come first.
        for (path, node) in store.tree().walk() {
            let rec = encode(&[Change::Node {
                path,
                node: Some(node.clone()),
            }]);
            f.write_all(&rec).map_err(io_err(&tmp))?;
        }
        let doms: Vec<Change> = store
            .domains()
            .iter()
            .map(|(d, s)| Change::Domain {
                domid: *d,
                introduced: s.introduced,
            })
            .collect();
        f.write_all(&encode(&doms)).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &snap).map_err(io_err(&snap))?;
        sync_dir(&self.dir)?;
        // Replaying the old log over the new snapshot is harmless, so a
        // crash before this point loses nothing.
        let log_path = self.dir.join("log");
        self.log.set_len(0).map_err(io_err(&log_path))?;
        self.log.sync_all().map_err(io_err(&log_path))?;
        self.log_len = 0;
        // The snapshot holds everything, also what was still being flushed.
        self.syncer.mark_durable(store.tree().generation() - 1);
        Ok(())
    }
}

/// Takes `dir/lock` (an exclusive `flock`, released when the process ends,
/// however it ends) and writes our pid into it; fails if another daemon
/// holds it.
fn lock(dir: &Path) -> Result<File, PersistError> {
    use rustix::fs::{flock, FlockOperation};
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
    f.set_len(0).map_err(io_err(&path))?;
    writeln!(f, "{}", std::process::id()).map_err(io_err(&path))?;
    Ok(f)
}

fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

//! The log writer: a thread that writes the log and makes it durable
//! (`fdatasync`) while the daemon's loop goes on serving, so the loop never
//! waits for the disk. The loop hands over each batch's record; the writer
//! writes everything handed over so far and flushes it in one call, so
//! writers arriving while a flush runs share the next one (group commit),
//! and readers are not held up by anybody's flush. When a flush ends the
//! writer publishes the generation it covered and wakes the loop through an
//! eventfd, which then sends what waited for it.
//!
//! When compaction starts a new segment, the loop creates it under a
//! temporary name and hands it over ([`Syncer::switch`]) in line with the
//! records: the writer flushes the old segment wholly, renames the new one
//! into place and flushes the directory before any record in it counts as
//! durable.

use rustix::event::{eventfd, EventfdFlags};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

/// A new segment: its file, created as `from`, to be renamed `to`; the old
/// one is `old_len` bytes long.
#[derive(Debug)]
struct Switch {
    file: File,
    old_len: u64,
    from: PathBuf,
    to: PathBuf,
    dir: PathBuf,
}

#[derive(Debug)]
enum Item {
    /// Bytes to append.
    Bytes(Vec<u8>),
    /// Append to a new segment from here on.
    Switch(Switch),
}

#[derive(Debug, Default)]
struct State {
    /// Handed over, not yet written, in order.
    queue: VecDeque<Item>,
    /// Highest generation handed over.
    wanted: u64,
    stop: bool,
    error: Option<io::Error>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    /// Every change up to this generation is on disk.
    durable: AtomicU64,
    /// Segment switches completed.
    switched: AtomicU64,
    /// Readable when `durable` moved or the writer failed.
    wake: OwnedFd,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_loop(&self) {
        // A full counter (never, at 2^64-2) would only delay a wake-up.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

/// The writer thread and its hand-over state.
#[derive(Debug)]
pub struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Writes `items` to `log` (switching segments as told); `true` if a
/// segment was switched.
fn write_items(log: &mut File, items: VecDeque<Item>, shared: &Shared) -> io::Result<()> {
    for item in items {
        match item {
            Item::Bytes(b) => log.write_all(&b)?,
            Item::Switch(sw) => {
                // The old segment must be whole before the new one exists
                // on disk: only the last segment may end torn.
                log.sync_data()?;
                // Give back the old segment's space allocated ahead.
                let _ = log.set_len(sw.old_len);
                sw.file.sync_all()?;
                std::fs::rename(&sw.from, &sw.to)?;
                File::open(&sw.dir)?.sync_all()?;
                *log = sw.file;
                shared.switched.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
    Ok(())
}

fn run(shared: &Shared, mut log: File) {
    loop {
        let (target, items) = {
            let mut st = shared.lock();
            loop {
                if !st.queue.is_empty() || st.wanted > shared.durable.load(Ordering::Acquire) {
                    break (st.wanted, std::mem::take(&mut st.queue));
                }
                if st.stop {
                    return;
                }
                st = shared.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let done = write_items(&mut log, items, shared).and_then(|()| log.sync_data());
        if let Err(e) = done {
            shared.lock().error = Some(e);
            shared.wake_loop();
            return;
        }
        shared.durable.fetch_max(target, Ordering::AcqRel);
        shared.wake_loop();
    }
}

impl Syncer {
    /// Starts a writer appending to `log` (a handle on the last segment)
    /// with everything up to generation `durable` already on disk.
    pub fn start(log: File, durable: u64) -> io::Result<Syncer> {
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                wanted: durable,
                ..State::default()
            }),
            cv: Condvar::new(),
            durable: AtomicU64::new(durable),
            switched: AtomicU64::new(0),
            wake,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("xenstored-log".into())
            .spawn(move || run(&s, log))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Appends `bytes` (a record holding changes up to generation `gen`)
    /// and makes them durable.
    pub fn write(&self, bytes: Vec<u8>, gen: u64) {
        let mut st = self.shared.lock();
        st.queue.push_back(Item::Bytes(bytes));
        st.wanted = st.wanted.max(gen);
        self.shared.cv.notify_one();
    }

    /// Records from now on go to `log`, a new segment created as `from` in
    /// `dir`, to be renamed `to` once the segment before it (`old_len`
    /// bytes) is wholly on disk. Returns the number [`Syncer::switched`]
    /// reaches when that is done.
    pub fn switch(&self, log: File, old_len: u64, dir: &Path, from: PathBuf, to: PathBuf) -> u64 {
        let mut st = self.shared.lock();
        st.queue.push_back(Item::Switch(Switch {
            file: log,
            old_len,
            from,
            to,
            dir: dir.to_path_buf(),
        }));
        self.shared.cv.notify_one();
        self.shared.switched.load(Ordering::Acquire) + 1
    }

    /// Segment switches completed so far.
    pub fn switched(&self) -> u64 {
        self.shared.switched.load(Ordering::Acquire)
    }

    /// Every change up to this generation is on disk.
    pub fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The eventfd the loop polls for completed flushes.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.shared.wake.as_fd()
    }

    /// Clears the wake-up; returns the error if writing or flushing failed
    /// (the log is then in an unknown state and nothing more may be
    /// acknowledged).
    pub fn check(&self) -> io::Result<()> {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.shared.wake, &mut buf);
        match self.shared.lock().error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Syncer {
    /// Writes and flushes what was handed over, then stops the thread.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

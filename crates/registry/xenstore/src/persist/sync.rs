//! The syncer: a thread that makes the log durable (`fdatasync`) while the
//! daemon's loop goes on serving. The loop writes each batch's record and
//! asks for it to be synced; the syncer flushes everything written so far in
//! one call, so writers arriving while a flush runs share the next one
//! (group commit), and readers are not held up by anybody's flush. When a
//! flush ends the syncer publishes the generation it covered and wakes the
//! loop through an eventfd, which then sends what waited for it.

use rustix::event::{eventfd, EventfdFlags};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

#[derive(Debug, Default)]
struct State {
    /// Highest generation written to the log and asked to be made durable.
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
    /// Readable when `durable` moved or a flush failed.
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

/// The syncer thread and its hand-over state.
#[derive(Debug)]
pub struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn run(shared: &Shared, log: &File) {
    loop {
        let target = {
            let mut st = shared.lock();
            loop {
                if st.wanted > shared.durable.load(Ordering::Acquire) {
                    break st.wanted;
                }
                if st.stop {
                    return;
                }
                st = shared.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
        };
        if let Err(e) = log.sync_data() {
            shared.lock().error = Some(e);
            shared.wake_loop();
            return;
        }
        shared.durable.fetch_max(target, Ordering::AcqRel);
        shared.wake_loop();
    }
}

impl Syncer {
    /// Starts a syncer for `log` (a handle on the log file) with everything
    /// up to generation `durable` already on disk.
    pub fn start(log: File, durable: u64) -> io::Result<Syncer> {
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                wanted: durable,
                ..State::default()
            }),
            cv: Condvar::new(),
            durable: AtomicU64::new(durable),
            wake,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("xenstored-sync".into())
            .spawn(move || run(&s, &log))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for everything written to the log so far, holding changes up to
    /// generation `gen`, to be made durable.
    pub fn request(&self, gen: u64) {
        let mut st = self.shared.lock();
        if gen > st.wanted {
            st.wanted = gen;
            self.shared.cv.notify_one();
        }
    }

    /// Every change up to this generation is on disk.
    pub fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The eventfd the loop polls for completed flushes.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.shared.wake.as_fd()
    }

    /// Clears the wake-up; returns the error if a flush failed (the log is
    /// then in an unknown state and nothing more may be acknowledged).
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
    /// Finishes the flush asked for, then stops the thread.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

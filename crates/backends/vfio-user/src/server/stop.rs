//! One stop for every thread of a server or a set of servers: the accept
//! loops `poll` its eventfd (readable once stopped, never drained), and
//! each live session's socket is registered so that stopping shuts it down,
//! which wakes the session's blocking read.

use crate::Error;
use rustix::event::EventfdFlags;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Stops a running server or set of servers (from another thread): every
/// live session ends (with its teardown) and every accept loop returns.
/// Clones share the same stop.
#[derive(Debug, Clone)]
pub struct StopHandle(pub(crate) Arc<Stop>);

#[derive(Debug)]
pub(crate) struct Stop {
    /// Readable once stopped (wakes the accept loops' `poll`).
    pub fd: OwnedFd,
    /// Set once stopped (checked between messages without a system call).
    flag: AtomicBool,
    /// The connections being served, shut down to wake their blocking reads.
    sessions: Mutex<Vec<(u64, UnixStream)>>,
    next_id: AtomicU64,
}

impl StopHandle {
    /// Asks every session to end (cleaning up) and every accept loop
    /// ([`crate::Server::run`], [`crate::ServerSet::run`]) to return.
    pub fn stop(&self) {
        self.0.flag.store(true, Ordering::SeqCst);
        let _ = rustix::io::write(&self.0.fd, &1u64.to_ne_bytes());
        for (_, s) in self.0.sessions().iter() {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
    }
}

impl Stop {
    pub(crate) fn new() -> Result<Arc<Stop>, Error> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| Error::io("eventfd", e))?;
        Ok(Arc::new(Stop {
            fd,
            flag: AtomicBool::new(false),
            sessions: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        }))
    }

    pub(crate) fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn sessions(&self) -> MutexGuard<'_, Vec<(u64, UnixStream)>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session's connection until the guard is dropped. A
    /// connection registered after the stop is shut down at once.
    pub(crate) fn register(self: &Arc<Self>, stream: &UnixStream) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(dup) = stream.try_clone() {
            let mut sessions = self.sessions();
            if self.stopped() {
                let _ = dup.shutdown(std::net::Shutdown::Read);
            }
            sessions.push((id, dup));
        }
        Registration {
            stop: self.clone(),
            id,
        }
    }
}

/// A registered connection; unregistered on drop.
pub(crate) struct Registration {
    stop: Arc<Stop>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.stop.sessions().retain(|(id, _)| *id != self.id);
    }
}

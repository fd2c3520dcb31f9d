//! Several devices served at once — what the broker runs.
//!
//! The event-loop choice (docs/architecture.md, "Event loops"): a thread
//! per session with one shared stop. Each device gets a thread that waits
//! for its next client and serves it on the spot, so a session blocked in
//! a slow device operation (a function reset waits 100 ms or more) or on a
//! slow client holds up no other device, the per-message path stays one
//! blocking `recvmsg` with no readiness call in front, and a device's
//! clients still come one at a time. One [`StopHandle`] ends every live
//! session (with its teardown) and every accept loop.

use super::stop::Stop;
use super::{Server, StopHandle};
use crate::Error;
use pcibox_kit::Chain;
use std::os::unix::net::UnixListener;
use std::sync::Arc;

/// Devices served together, each on its own listener; see the module docs.
#[derive(Debug)]
pub struct ServerSet {
    stop: Arc<Stop>,
    exports: Vec<(Server, UnixListener)>,
    max_sessions: Option<u64>,
}

impl ServerSet {
    /// An empty set.
    pub fn new() -> Result<ServerSet, Error> {
        Ok(ServerSet {
            stop: Stop::new()?,
            exports: Vec::new(),
            max_sessions: None,
        })
    }

    /// Adds a device's server and the listener its clients connect to. The
    /// server now stops with the set: take stop handles from the set.
    pub fn add(&mut self, mut server: Server, listener: UnixListener) {
        server.stop = self.stop.clone();
        self.exports.push((server, listener));
    }

    /// Number of devices in the set.
    pub fn len(&self) -> usize {
        self.exports.len()
    }

    /// True if no device was added.
    pub fn is_empty(&self) -> bool {
        self.exports.is_empty()
    }

    /// With `Some(n)`, each device serves `n` sessions and is then done
    /// (as [`Server::run_sessions`]); [`ServerSet::run`] returns once all
    /// are. `None` (the default): until stopped.
    pub fn set_max_sessions(&mut self, max: Option<u64>) {
        self.max_sessions = max;
    }

    /// Stops every device of the set.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Serves every device, each on its own thread, until stopped (or each
    /// has served its sessions, see [`ServerSet::set_max_sessions`]). A device
    /// whose accept loop fails is logged and left; the others go on. Returns
    /// once every thread has ended, with the first failure.
    pub fn run(self) -> Result<(), Error> {
        std::thread::scope(|scope| {
            let threads: Vec<_> = self
                .exports
                .into_iter()
                .map(|(mut server, listener)| {
                    let max = self.max_sessions;
                    let name = format!("vfio-user {}", server.device().name());
                    std::thread::Builder::new()
                        .name(name.clone())
                        .spawn_scoped(scope, move || {
                            let result = server.run_sessions(&listener, max);
                            if let Err(e) = &result {
                                tracing::error!("{name}: {}", Chain(e));
                            }
                            result
                        })
                        .map_err(|e| Error::io("spawn a device thread", e))
                })
                .collect();
            let mut first = Ok(());
            for t in threads {
                let result = match t {
                    Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    Err(e) => {
                        // Without its thread the device is not served: stop
                        // the others rather than run half a set.
                        StopHandle(self.stop.clone()).stop();
                        Err(e)
                    }
                };
                if first.is_ok() {
                    first = result;
                }
            }
            first
        })
    }
}

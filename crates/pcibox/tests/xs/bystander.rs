//! A bystander: a well-behaved client that reads one node at a steady pace
//! and records how long each read takes, while attackers run in bursts.
//!
//! The attack is switched on and off in rounds ([`Gate`]); the bystander
//! tags each read with the phase it started in. Reads during the bursts are
//! "under attack"; reads in the second half of each pause (once the daemon
//! has settled) are "idle". Interleaving the two means a noisy neighbour on
//! a shared machine slows both alike, so their ratio measures the attack.
//! Attackers run at the lowest CPU priority: in Xen a guest runs on its own
//! vCPUs, not on the CPU the registry needs.

use pcibox_xenstore::client::Client;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The node the bystander reads.
const NODE: &str = "/bystander/node";
/// Pause between two reads: a client with work of its own, not a flood.
const PACE: Duration = Duration::from_micros(500);

const SETTLING: u8 = 0;
const IDLE: u8 = 1;
const ATTACK: u8 = 2;
const OVER: u8 = 3;

/// Switches the attack on and off; shared by the attackers, the bystander
/// and the test.
#[derive(Debug, Default)]
pub struct Gate {
    phase: AtomicU8,
}

impl Gate {
    /// Blocks while the attack is paused; `false` once it is over.
    pub fn active(&self) -> bool {
        loop {
            match self.phase.load(Ordering::Relaxed) {
                ATTACK => return true,
                OVER => return false,
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    /// Whether the attack is over (for attackers that must not block).
    pub fn over(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == OVER
    }

    /// Whether a burst is on.
    pub fn attacking(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == ATTACK
    }

    fn set(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Runs `rounds` bursts of `on`, each followed by a pause of `off`
    /// (the second half of which is idle time), then ends the attack.
    pub fn run(&self, rounds: usize, on: Duration, off: Duration) {
        for _ in 0..rounds {
            self.set(ATTACK);
            std::thread::sleep(on);
            self.set(SETTLING);
            std::thread::sleep(off / 2);
            self.set(IDLE);
            std::thread::sleep(off / 2);
        }
        self.set(OVER);
    }
}

/// Lowers the calling thread's CPU priority to the minimum (nice 19).
pub fn lowest_priority() {
    let tid = rustix::thread::gettid();
    rustix::process::setpriority_process(Some(tid), 19).expect("setpriority");
}

/// A bystander running on its own thread.
#[derive(Debug)]
pub struct Bystander {
    thread: Option<JoinHandle<Vec<(Duration, u8)>>>,
}

impl Bystander {
    /// Starts reading on `socket` until `gate` says the attack is over.
    pub fn start(socket: &Path, gate: Arc<Gate>) -> Bystander {
        let socket: PathBuf = socket.to_path_buf();
        let mut c = Client::connect(&socket).expect("bystander connect");
        c.write(0, NODE, b"v").expect("bystander setup");
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            loop {
                let phase = gate.phase.load(Ordering::Relaxed);
                if phase == OVER {
                    return out;
                }
                let t = Instant::now();
                let v = c.read(0, NODE).expect("bystander read");
                out.push((t.elapsed(), phase));
                assert_eq!(v, b"v", "bystander read the wrong value");
                std::thread::sleep(PACE);
            }
        });
        Bystander {
            thread: Some(thread),
        }
    }

    /// Waits for the end of the attack; returns the idle and the
    /// under-attack latencies.
    pub fn finish(mut self) -> (Vec<Duration>, Vec<Duration>) {
        let samples = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(v)) => v,
            Some(Err(e)) => std::panic::resume_unwind(e),
            None => Vec::new(),
        };
        let pick = |p| samples.iter().filter(|s| s.1 == p).map(|s| s.0).collect();
        (pick(IDLE), pick(ATTACK))
    }
}

/// The `q`-quantile (0..=1) of `v`.
pub fn quantile(v: &[Duration], q: f64) -> Duration {
    assert!(!v.is_empty(), "no samples");
    let mut s = v.to_vec();
    s.sort();
    let i = ((s.len() - 1) as f64 * q).round() as usize;
    s[i]
}

/// Asserts the bystander's p99 under attack is at most `ratio` times its
/// idle p99, printing both (run with `--nocapture` to see them).
pub fn assert_bounded(what: &str, idle: &[Duration], busy: &[Duration], ratio: f64) {
    for (v, name) in [(idle, "idle"), (busy, "under attack")] {
        assert!(
            v.len() >= 200,
            "{what}: the bystander managed only {} reads {name}",
            v.len()
        );
    }
    let (i50, i99) = (quantile(idle, 0.5), quantile(idle, 0.99));
    let (b50, b99, bmax) = (
        quantile(busy, 0.5),
        quantile(busy, 0.99),
        quantile(busy, 1.0),
    );
    let r = b99.as_secs_f64() / i99.as_secs_f64();
    eprintln!(
        "{what}: bystander idle p50 {i50:?} p99 {i99:?} ({} reads); under attack p50 {b50:?} \
         p99 {b99:?} max {bmax:?} ({} reads): p99 ratio {r:.1} (bound {ratio})",
        idle.len(),
        busy.len()
    );
    assert!(
        r <= ratio,
        "{what}: bystander p99 {b99:?} is {r:.1}x its idle p99 {i99:?} (bound {ratio}x)"
    );
}

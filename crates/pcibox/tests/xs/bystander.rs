//! A bystander: a well-behaved client that reads one node at a steady pace
//! and records how long each read takes. The hostile-guest tests measure it
//! idle, then while a guest attacks, and bound the ratio of the two p99s:
//! a guest may slow the daemon down a little, never stall it for others.

use pcibox_xenstore::client::Client;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The node the bystander reads (created by [`Bystander::idle`]).
const NODE: &str = "/bystander/node";
/// Pause between two reads: a client with work of its own, not a flood.
const PACE: Duration = Duration::from_micros(500);

/// A bystander running on its own thread.
#[derive(Debug)]
pub struct Bystander {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Duration>>>,
}

fn sample(c: &mut Client, out: &mut Vec<Duration>) {
    let t = Instant::now();
    let v = c.read(0, NODE).expect("bystander read");
    out.push(t.elapsed());
    assert_eq!(v, b"v", "bystander read the wrong value");
    std::thread::sleep(PACE);
}

impl Bystander {
    /// Measures `n` reads on `socket` with nothing else going on.
    pub fn idle(socket: &Path, n: usize) -> Vec<Duration> {
        let mut c = Client::connect(socket).expect("bystander connect");
        c.write(0, NODE, b"v").expect("bystander setup");
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            sample(&mut c, &mut out);
        }
        out
    }

    /// Starts reading on `socket` until [`Bystander::finish`].
    pub fn start(socket: &Path) -> Bystander {
        let socket: PathBuf = socket.to_path_buf();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut c = Client::connect(&socket).expect("bystander connect");
            let mut out = Vec::new();
            while !s.load(Ordering::Relaxed) {
                sample(&mut c, &mut out);
            }
            out
        });
        Bystander {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns the latencies seen.
    pub fn finish(mut self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(v)) => v,
            Some(Err(e)) => std::panic::resume_unwind(e),
            None => Vec::new(),
        }
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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
    assert!(
        busy.len() >= 100,
        "{what}: the bystander managed only {} reads during the attack",
        busy.len()
    );
    let (i50, i99) = (quantile(idle, 0.5), quantile(idle, 0.99));
    let (b50, b99, bmax) = (
        quantile(busy, 0.5),
        quantile(busy, 0.99),
        quantile(busy, 1.0),
    );
    let r = b99.as_secs_f64() / i99.as_secs_f64();
    eprintln!(
        "{what}: bystander idle p50 {i50:?} p99 {i99:?}; under attack p50 {b50:?} p99 {b99:?} \
         max {bmax:?} ({} reads): p99 ratio {r:.1} (bound {ratio})",
        busy.len()
    );
    assert!(
        r <= ratio,
        "{what}: bystander p99 {b99:?} is {r:.1}x its idle p99 {i99:?} (bound {ratio}x)"
    );
}

//! `pcibox xenstored` against raw baselines measured in the same run
//! (`cargo bench -p pcibox-xenstore`), daemon in-process, over its socket:
//!
//! - `xenstored_read` / `xenstored_write_memory` (a 1-byte node, tree in
//!   memory) against `raw_unix_round_trip`, the same 19-byte request bounced
//!   over a raw Unix socket pair between two threads;
//! - `xenstored_write_durable` (log record appended and `fdatasync`ed by the
//!   log thread before the reply) against `raw_write_fdatasync`, a `write`
//!   of the same record size plus `fdatasync` to a file in the same
//!   directory;
//! - throughput of durable against in-memory writes with 1, 4 and 16
//!   clients writing at once (group commit: concurrent writers share a
//!   flush);
//! - the stall compaction causes: a client's write latencies while 20 000
//!   nodes are snapshotted over and over, against the same without
//!   compaction.
//!
//! Every thread is pinned to one CPU (as in the vfio-user bench): on a small
//! VM a wakeup across CPUs costs tens of microseconds and varies run to run.
//! After divan's table the ratios are measured again in interleaved rounds —
//! ours, then the baseline, then ours… — so a noisy neighbour slows both
//! alike, and the median of the per-round ratios is printed.
#![allow(clippy::unwrap_used)]

use divan::Bencher;
use pcibox_xenstore::client::Client;
use pcibox_xenstore::daemon::{Config, Daemon, DaemonThread};
use pcibox_xenstore::wire::Request;
use pcibox_xenstore::{Output, Quotas, Store};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    pin_to_one_cpu();
    divan::main();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        ratios();
    }
}

/// Pins this thread, and so every thread it starts later, to the CPU it
/// runs on now.
fn pin_to_one_cpu() {
    let cpu = rustix::thread::sched_getcpu();
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    match rustix::thread::sched_setaffinity(None, &set) {
        Ok(()) => eprintln!("all benchmark threads pinned to CPU {cpu}"),
        Err(e) => eprintln!("not pinned ({e}): expect cross-CPU wakeup noise"),
    }
}

/// A daemon in a scratch directory (removed on drop).
struct Running {
    dir: PathBuf,
    socket: PathBuf,
    daemon: Option<DaemonThread>,
}

impl Running {
    fn start(durable: bool, compact_after: u64) -> Running {
        let dir = std::env::temp_dir().join(format!(
            "pcibox-xs-bench-{}-{durable}-{compact_after}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = Config::new(dir.join("socket"));
        cfg.compact_after = compact_after;
        if durable {
            cfg.state_dir = Some(dir.join("state"));
        }
        let daemon = Daemon::spawn(&cfg).unwrap();
        let mut c = Client::connect(&cfg.socket).unwrap();
        c.write(0, "/bench/node", b"x").unwrap();
        Running {
            socket: cfg.socket,
            dir,
            daemon: Some(daemon),
        }
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.daemon.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 16-byte header + `/a\0` to an echoing thread and back.
fn raw_round_trip_case() -> impl FnMut() {
    let (mut a, mut e) = UnixStream::pair().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 19];
        while e.read_exact(&mut buf).is_ok() && e.write_all(&buf).is_ok() {}
    });
    let (msg, mut buf) = ([7u8; 19], [0u8; 19]);
    move || {
        a.write_all(&msg).unwrap();
        a.read_exact(&mut buf).unwrap();
    }
}

/// Bytes of the log record of a 1-byte write of `/bench/node`: the frame
/// header and one node entry (see `persist/codec.rs`).
const RECORD: usize = 24 + 3 + 11 + 4 + 1 + 4 + 3 + 4;

/// `write` of a record's size and `fdatasync`, appending to a file in the
/// directory a durable daemon keeps its state in.
fn raw_write_fdatasync_case() -> impl FnMut() {
    let dir = std::env::temp_dir().join(format!("pcibox-xs-bench-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("raw");
    let mut f = std::fs::File::create(&path).unwrap();
    let rec = [9u8; RECORD];
    move || {
        f.write_all(&rec).unwrap();
        f.sync_data().unwrap();
        let _ = &path;
    }
}

fn write_case(durable: bool) -> impl FnMut() {
    let r = Running::start(durable, 4 << 20);
    let mut c = r.client();
    move || {
        c.write(0, "/bench/node", b"y").unwrap();
        let _ = &r;
    }
}

fn read_case() -> impl FnMut() {
    let r = Running::start(false, 4 << 20);
    let mut c = r.client();
    move || {
        c.read(0, "/bench/node").unwrap();
        let _ = &r;
    }
}

#[divan::bench]
fn raw_unix_round_trip(b: Bencher) {
    b.bench_local(raw_round_trip_case());
}

#[divan::bench]
fn xenstored_read(b: Bencher) {
    b.bench_local(read_case());
}

#[divan::bench]
fn xenstored_write_memory(b: Bencher) {
    b.bench_local(write_case(false));
}

#[divan::bench(sample_count = 20, sample_size = 5)]
fn raw_write_fdatasync(b: Bencher) {
    b.bench_local(raw_write_fdatasync_case());
}

#[divan::bench(sample_count = 20, sample_size = 5)]
fn xenstored_write_durable(b: Bencher) {
    b.bench_local(write_case(true));
}

/// The store alone handling a `READ` (no socket): the protocol cost.
#[divan::bench]
fn store_handle_read(b: Bencher) {
    let mut store = Store::new(Quotas::default());
    let c = store.connect(0, true);
    let handle = |store: &mut Store, r: Request<'_>| {
        let mut out = Output::default();
        store.handle_request(c, 1, 0, &r, &mut out);
        out
    };
    let w = Request::Write {
        path: "/bench/node",
        value: b"x",
    };
    handle(&mut store, w);
    b.bench_local(|| {
        handle(
            &mut store,
            Request::Read {
                path: "/bench/node",
            },
        )
    });
}

/// Times `n` calls of `f`, per call.
fn per_call(n: u32, f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// `ours` against `base` in interleaved rounds (the order alternates).
/// Returns the medians of ours, of base and of the per-round ratio.
fn interleaved(
    rounds: usize,
    calls: u32,
    ours: &mut dyn FnMut(),
    base: &mut dyn FnMut(),
) -> (Duration, Duration, f64) {
    per_call(calls, ours);
    per_call(calls, base);
    let (mut o, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (to, tb) = if round % 2 == 0 {
            let to = per_call(calls, ours);
            (to, per_call(calls, base))
        } else {
            let tb = per_call(calls, base);
            (per_call(calls, ours), tb)
        };
        o.push(to);
        b.push(tb);
        r.push(to.as_secs_f64() / tb.as_secs_f64());
    }
    (median(o), median(b), median(r))
}

fn report(what: &str, base: &str, (o, b, r): (Duration, Duration, f64), target: &str) {
    println!(
        "{what}: {:.2} µs vs {base}: {:.2} µs -> {r:.2}x ({target})",
        o.as_secs_f64() * 1e6,
        b.as_secs_f64() * 1e6
    );
}

/// Writes per second with `clients` clients writing their own node each
/// for `time`.
fn throughput(r: &Running, clients: usize, time: Duration) -> f64 {
    let start = Instant::now() + Duration::from_millis(20);
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let mut c = r.client();
            std::thread::spawn(move || {
                let path = format!("/tp/{i}");
                while Instant::now() < start {
                    std::thread::yield_now();
                }
                let mut n = 0u64;
                while start.elapsed() < time {
                    c.write(0, &path, b"x").unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let n: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    n as f64 / time.as_secs_f64()
}

/// A daemon with 20 000 nodes of 100 bytes, compacting every
/// `compact_after` bytes of log.
fn big_tree(compact_after: u64) -> Running {
    let r = Running::start(true, compact_after);
    let mut c = r.client();
    for t in 0..20 {
        c.transaction(|c, tx| {
            for i in 0..1000 {
                c.write(tx, &format!("/big/{t}/{i}"), &[b'v'; 100])?;
            }
            Ok(())
        })
        .unwrap();
    }
    r
}

/// A client's read latencies for `time` while another client writes
/// 200-byte values as fast as it can.
fn reads_under_writes(r: &Running, time: Duration) -> Vec<Duration> {
    let mut w = r.client();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            w.write(0, &format!("/w/{}", n % 100), &[b'w'; 200])
                .unwrap();
            n += 1;
        }
    });
    let mut c = r.client();
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < time {
        let t = Instant::now();
        c.read(0, "/bench/node").unwrap();
        lat.push(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    lat
}

fn ratios() {
    println!("\nlatency ratios, median of interleaved rounds:");
    let read = interleaved(31, 400, &mut read_case(), &mut raw_round_trip_case());
    report(
        "xenstored_read",
        "raw_unix_round_trip",
        read,
        "two messages each way: ~2x",
    );
    let mem = interleaved(31, 400, &mut write_case(false), &mut raw_round_trip_case());
    report("xenstored_write_memory", "raw_unix_round_trip", mem, "~2x");
    let durable = interleaved(
        15,
        40,
        &mut write_case(true),
        &mut raw_write_fdatasync_case(),
    );
    report(
        "xenstored_write_durable",
        "raw_write_fdatasync",
        durable,
        "target <= 1.2x",
    );

    println!("\nthroughput, durable vs in-memory writes, median of 5 interleaved rounds of 0.3 s:");
    let (mem, dur) = (
        Running::start(false, 4 << 20),
        Running::start(true, 64 << 20),
    );
    for clients in [1, 4, 16] {
        let (mut m, mut d, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..5 {
            let time = Duration::from_millis(300);
            let (a, b) = if round % 2 == 0 {
                let a = throughput(&mem, clients, time);
                (a, throughput(&dur, clients, time))
            } else {
                let b = throughput(&dur, clients, time);
                (throughput(&mem, clients, time), b)
            };
            m.push(a);
            d.push(b);
            r.push(b / a);
        }
        println!(
            "{clients:>2} clients: durable {:.0}/s vs in-memory {:.0}/s -> {:.2}x{}",
            median(d),
            median(m),
            median(r),
            if clients == 16 {
                " (target >= 0.5x)"
            } else {
                ""
            }
        );
    }

    println!(
        "\ncompaction stall: a client's reads while another writes, 20 000 nodes in the tree, \
         6 interleaved rounds of 0.5 s:"
    );
    let runs = [
        ("never compacting", big_tree(1 << 40)),
        ("compacting every 256 KiB", big_tree(256 << 10)),
    ];
    let mut lat: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..6 {
        for k in [round % 2, 1 - round % 2] {
            lat[k].extend(reads_under_writes(&runs[k].1, Duration::from_millis(500)));
        }
    }
    for ((what, _), mut l) in runs.iter().zip(lat) {
        l.sort();
        let q = |f: f64| l[((l.len() - 1) as f64 * f) as usize].as_secs_f64() * 1e6;
        println!(
            "{what}: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs ({} reads)",
            q(0.5),
            q(0.99),
            q(0.999),
            q(1.0),
            l.len()
        );
    }
}

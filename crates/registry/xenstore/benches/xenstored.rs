//! Round trips through `pcibox xenstored` (in-process, over its Unix
//! socket) next to the baseline of a raw Unix-socket round trip of the same
//! size, measured in the same run. Compare medians as ratios.
#![allow(clippy::unwrap_used)]

use divan::Bencher;
use pcibox_xenstore::client::Client;
use pcibox_xenstore::daemon::{Config, Daemon, DaemonThread};
use pcibox_xenstore::wire::{HeaderRepr, Request};
use pcibox_xenstore::{Output, Quotas, Store};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

fn main() {
    divan::main();
}

struct Running {
    dir: PathBuf,
    daemon: Option<DaemonThread>,
    client: Client,
}

impl Running {
    fn start(durable: bool) -> Running {
        let dir =
            std::env::temp_dir().join(format!("pcibox-xs-bench-{}-{durable}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = Config::new(dir.join("socket"));
        if durable {
            cfg.state_dir = Some(dir.join("state"));
        }
        let daemon = Daemon::spawn(&cfg).unwrap();
        let mut client = Client::connect(&cfg.socket).unwrap();
        client.write(0, "/bench/node", b"x").unwrap();
        Running {
            dir,
            daemon: Some(daemon),
            client,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.daemon.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Baseline: 16-byte header + `/a\0` to an echoing thread and back.
#[divan::bench]
fn raw_unix_round_trip(b: Bencher) {
    let (mut a, mut e) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 19];
        while e.read_exact(&mut buf).is_ok() {
            if e.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let msg = [7u8; 19];
    let mut buf = [0u8; 19];
    b.bench_local(|| {
        a.write_all(&msg).unwrap();
        a.read_exact(&mut buf).unwrap();
    });
    drop(a);
    echo.join().unwrap();
}

/// `READ` of a 1-byte node through the daemon.
#[divan::bench]
fn xenstored_read(b: Bencher) {
    let mut r = Running::start(false);
    b.bench_local(|| r.client.read(0, "/bench/node").unwrap());
}

/// `WRITE` of a 1-byte node, tree in memory only.
#[divan::bench]
fn xenstored_write_memory(b: Bencher) {
    let mut r = Running::start(false);
    b.bench_local(|| r.client.write(0, "/bench/node", b"y").unwrap());
}

/// `WRITE` of a 1-byte node with a state directory: log append + fdatasync
/// before the reply.
#[divan::bench(sample_count = 20, sample_size = 5)]
fn xenstored_write_durable(b: Bencher) {
    let mut r = Running::start(true);
    b.bench_local(|| r.client.write(0, "/bench/node", b"y").unwrap());
}

/// The store alone handling a `READ` (no socket): the protocol cost.
#[divan::bench]
fn store_handle_read(b: Bencher) {
    let mut store = Store::new(Quotas::default());
    let c = store.connect(0, true);
    let w = Request::Write {
        path: "/bench/node",
        value: b"x",
    };
    let payload = w.payload();
    let h = HeaderRepr {
        msg_type: w.msg_type() as u32,
        req_id: 1,
        tx_id: 0,
        len: payload.len() as u32,
    };
    store.handle(c, &h, &payload, &mut Output::default());
    let r = Request::Read {
        path: "/bench/node",
    };
    let payload = r.payload();
    let h = HeaderRepr {
        msg_type: r.msg_type() as u32,
        req_id: 2,
        tx_id: 0,
        len: payload.len() as u32,
    };
    b.bench_local(|| {
        let mut out = Output::default();
        store.handle(c, &h, &payload, &mut out);
        out
    });
}

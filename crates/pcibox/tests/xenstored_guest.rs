//! A hostile guest against `pcibox xenstored`, one class of attack per test:
//! each attacks from unprivileged domain sockets while a bystander on the
//! privileged socket measures its own read latency, and asserts the
//! bystander's p99 under attack stays within a bound of its idle p99
//! measured in the same test (`--nocapture` prints both).
#![allow(clippy::unwrap_used)]

mod xs;

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use xs::bystander::{assert_bounded, Bystander};
use xs::{errname, pipeline, tx_start, Scratch, Xenstored};

const DIRECTORY: u32 = 1;
const READ: u32 = 2;
const GET_PERMS: u32 = 3;
const RM: u32 = 13;

/// Bystander p99 under attack over its idle p99. Generous, because the
/// machine running the tests is shared and small; a stall (the daemon busy
/// with one guest for milliseconds at a time) is orders of magnitude more.
const RATIO: f64 = 25.0;
/// How long each attack lasts.
const ATTACK: Duration = Duration::from_secs(3);
/// Reads the bystander makes to learn its idle latency.
const IDLE_READS: usize = 1500;

fn daemon(extra: &[&str]) -> (Scratch, Xenstored) {
    let s = Scratch::new("xs-guest");
    let x = Xenstored::start_in(&s.0, extra);
    (s, x)
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Runs `attack` on `n` threads (thread `i` on domain 5 or 6 alternately)
/// while the bystander reads; returns the attackers' results.
fn under_attack<T: Send + 'static>(
    x: &Xenstored,
    what: &str,
    n: usize,
    attack: impl Fn(UnixStream, usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let idle = Bystander::idle(&x.socket, IDLE_READS);
    let by = Bystander::start(&x.socket);
    let attack = std::sync::Arc::new(attack);
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let s = connect(&x.domain_socket(if i % 2 == 0 { 5 } else { 6 }));
            let a = attack.clone();
            std::thread::spawn(move || a(s, i))
        })
        .collect();
    let results = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let busy = by.finish();
    assert_bounded(what, &idle, &busy, RATIO);
    results
}

/// Class 1: inside one transaction a guest touches node after node that does
/// not exist (removals, reads, listings, permission reads: all answered
/// without changing anything). Every node touched counts against
/// `transaction-nodes`; past it the transaction refuses with ENOSPC, and no
/// request costs more than its own work.
#[test]
fn transactions_cannot_touch_nodes_without_limit() {
    let (_s, mut x) = daemon(&[]);
    let results = under_attack(&x, "transaction-node flood", 8, |mut s, i| {
        let tx = tx_start(&mut s);
        let start = Instant::now();
        let (mut n, mut ok_before_full, mut full) = (0usize, 0usize, 0usize);
        while start.elapsed() < ATTACK {
            let reqs: Vec<(u32, u32, Vec<u8>)> = (0..20)
                .map(|k| {
                    let ty = [RM, READ, DIRECTORY, GET_PERMS][k % 4];
                    (ty, tx, format!("/gone-{i}-{n}-{k}\0").into_bytes())
                })
                .collect();
            n += 1;
            for r in pipeline(&mut s, &reqs) {
                if errname(&r) == "ENOSPC" {
                    full += 1;
                } else if full == 0 {
                    ok_before_full += 1;
                }
            }
        }
        (ok_before_full, full)
    });
    for (i, (before, full)) in results.into_iter().enumerate() {
        assert!(full > 0, "attacker {i}: transaction never refused");
        assert!(
            before <= 1024,
            "attacker {i}: {before} nodes touched before ENOSPC"
        );
    }
    x.assert_alive();
}

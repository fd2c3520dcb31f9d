//! `kill -9` the daemon in the middle of a stream of writes, removals and
//! transactions, restart it, and find every acknowledged change; repeated,
//! with a small compaction threshold so recovery goes through snapshots too.
#![allow(clippy::unwrap_used)]

mod xs;

use pcibox_xenstore::client::Client;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xs::{Scratch, Xenstored};

#[derive(Debug, Clone)]
enum Op {
    Write(String, String),
    Rm(String),
    /// Two writes in one transaction.
    Tx(String, String, String),
}

impl Op {
    fn keys(&self) -> Vec<String> {
        match self {
            Op::Write(k, _) | Op::Rm(k) => vec![k.clone()],
            Op::Tx(a, b, _) => vec![a.clone(), b.clone()],
        }
    }
}

#[derive(Debug, Default)]
struct Log {
    acked: Vec<Op>,
    inflight: Option<Op>,
}

fn writer(socket: std::path::PathBuf, round: usize, log: Arc<Mutex<Log>>) {
    let Ok(mut c) = Client::connect(&socket) else {
        return;
    };
    for i in 0.. {
        let key = |j: usize| format!("/crash/r{round}/k{j}");
        let op = match i % 5 {
            0..=2 => Op::Write(key(i), format!("v{i}")),
            3 => Op::Rm(key(i - 2)),
            _ => Op::Tx(key(i), key(i - 4), format!("t{i}")),
        };
        log.lock().unwrap().inflight = Some(op.clone());
        let r = match &op {
            Op::Write(k, v) => c.write(0, k, v.as_bytes()),
            Op::Rm(k) => c.rm(0, k),
            Op::Tx(a, b, v) => c.transaction(|c, tx| {
                c.write(tx, a, v.as_bytes())?;
                c.write(tx, b, v.as_bytes())
            }),
        };
        if r.is_err() {
            return;
        }
        let mut l = log.lock().unwrap();
        l.acked.push(op);
        l.inflight = None;
    }
}

#[test]
fn kill9_and_restart_keeps_every_acknowledged_change() {
    let s = Scratch::new("xs-crash");
    let mut x = Xenstored::start_in(&s.0, &["--compact-after", "16384"]);
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut unsure: Vec<String> = Vec::new();
    let mut total = 0;
    for round in 0..3 {
        let log = Arc::new(Mutex::new(Log::default()));
        let l = log.clone();
        let sock = x.socket.clone();
        let t = std::thread::spawn(move || writer(sock, round, l));
        // Let some writes through, then pull the plug mid-stream.
        loop {
            std::thread::sleep(Duration::from_millis(50));
            if log.lock().unwrap().acked.len() >= 200 + 100 * round {
                break;
            }
            assert!(!t.is_finished(), "round {round}: the writer stopped early");
        }
        x.kill9();
        t.join().unwrap();
        let log = log.lock().unwrap();
        total += log.acked.len();
        for op in &log.acked {
            match op {
                Op::Write(k, v) => {
                    model.insert(k.clone(), v.clone());
                }
                Op::Rm(k) => {
                    model.remove(k);
                }
                Op::Tx(a, b, v) => {
                    model.insert(a.clone(), v.clone());
                    model.insert(b.clone(), v.clone());
                }
            }
        }
        // The change in flight when the daemon died may or may not be there.
        if let Some(op) = &log.inflight {
            unsure.extend(op.keys());
        }
        x.restart();
        let mut c = Client::connect(&x.socket).unwrap();
        for (k, v) in &model {
            if unsure.contains(k) {
                continue;
            }
            assert_eq!(
                c.read_string(0, k).unwrap().as_deref(),
                Some(v.as_str()),
                "round {round}: {k} lost"
            );
        }
        for r in 0..=round {
            let dir = format!("/crash/r{r}");
            for name in c.directory(0, &dir).unwrap() {
                let k = format!("{dir}/{name}");
                assert!(
                    model.contains_key(&k) || unsure.contains(&k),
                    "round {round}: {k} was removed but came back"
                );
            }
        }
    }
    assert!(total >= 900);
    assert!(
        s.0.join("state/snapshot").exists(),
        "compaction never ran: recovery did not use a snapshot"
    );
}

#[test]
fn bad_command_lines_fail_with_one_line() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pcibox"))
            .arg("xenstored")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--socket", "/nonexistent-dir/socket"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("pcibox: cannot set up socket /nonexistent-dir/socket: ")
            && err.lines().count() == 1,
        "{err}"
    );
    let out = run(&["--socket", "/tmp/x", "--quota", "bogus=1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown quota"));
    let out = run(&["--socket", "/tmp/x", "--domain-socket", "0=/tmp/y"]);
    assert!(!out.status.success());
}

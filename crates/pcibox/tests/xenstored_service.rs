//! `pcibox xenstored` as a service: one daemon per state directory and per
//! socket, stale sockets replaced and live ones left alone.
#![allow(clippy::unwrap_used)]

mod xs;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use xs::{Scratch, Xenstored};

/// Runs `pcibox xenstored ARGS`, which must fail within 10 s; returns its
/// stderr.
fn refused(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .arg("xenstored")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("xenstored {args:?} kept running beside the first daemon");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "xenstored {args:?} succeeded");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("pcibox: ") && err.lines().count() == 1,
        "one line: {err}"
    );
    err
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn a_second_daemon_is_refused_and_the_first_keeps_serving() {
    let sc = Scratch::new("xs-two");
    let mut x = Xenstored::start_in(&sc.0, &[]);
    x.ok("xenstore-write", &["/one", "1"]);
    let state = s(&sc.0.join("state"));
    // The same state directory, another socket: refused before binding.
    let other = sc.0.join("other");
    let err = refused(&["--socket", &s(&other), "--state-dir", &state]);
    let pid = x.child.id();
    assert!(
        err.contains(&format!(
            "state: in use by another pcibox xenstored (pid {pid})"
        )),
        "{err}"
    );
    assert!(!other.exists(), "the refused daemon created its socket");
    // The same socket (in memory, or with another state directory).
    let sock = s(&x.socket);
    let err = refused(&["--socket", &sock]);
    assert!(err.contains("socket: already in use"), "{err}");
    let err = refused(&["--socket", &sock, "--state-dir", &s(&sc.0.join("s2"))]);
    assert!(err.contains("socket: already in use"), "{err}");
    // The first daemon was not disturbed, and its state still loads.
    x.ok("xenstore-write", &["/two", "2"]);
    x.restart();
    assert_eq!(x.ok("xenstore-read", &["/one"]), "1\n");
    assert_eq!(x.ok("xenstore-read", &["/two"]), "2\n");
    x.assert_alive();
}

#[test]
fn a_stale_socket_is_replaced_and_other_files_are_left_alone() {
    let sc = Scratch::new("xs-stale");
    let mut x = Xenstored::start_in(&sc.0, &[]);
    x.ok("xenstore-write", &["/kept", "1"]);
    x.kill9();
    assert!(x.socket.exists(), "kill -9 leaves the socket behind");
    // Nobody listens on it: a new daemon takes the path over.
    x.restart();
    assert_eq!(x.ok("xenstore-read", &["/kept"]), "1\n");
    x.kill9();
    // A file that is not a socket is not ours to remove.
    std::fs::remove_file(&x.socket).unwrap();
    std::fs::write(&x.socket, "not a socket").unwrap();
    let err = refused(&["--socket", &s(&x.socket)]);
    assert!(err.contains("socket: Address already in use"), "{err}");
    assert_eq!(std::fs::read(&x.socket).unwrap(), b"not a socket");
}

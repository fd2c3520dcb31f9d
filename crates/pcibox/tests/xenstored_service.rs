//! `pcibox xenstored` as a service: one daemon per state directory and per
//! socket, stale sockets replaced and live ones left alone.
#![allow(clippy::unwrap_used)]

mod xs;

use std::path::{Path, PathBuf};
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

/// The unit in `dist/`, its `ExecStart` joined into one line.
fn unit() -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/pcibox-xenstored.service");
    let text = std::fs::read_to_string(&path).unwrap();
    let joined = text.replace("\\\n", " ");
    let exec = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .to_string();
    (text, exec)
}

#[test]
fn the_systemd_unit_is_valid() {
    let sc = Scratch::new("xs-unit");
    let (text, _) = unit();
    let copy = sc.0.join("pcibox-xenstored.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/pcibox", env!("CARGO_BIN_EXE_pcibox")),
    )
    .unwrap();
    let bin = Path::new("/usr/bin/systemd-analyze");
    assert!(
        bin.exists(),
        "systemd-analyze is missing: install systemd (scripts/test.sh does)"
    );
    let out = Command::new(bin)
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}

/// Runs the unit's `ExecStart` (with /run/pcibox and /var/lib/pcibox moved
/// into a scratch directory) as systemd would: `NOTIFY_SOCKET` set, stderr
/// not a terminal. Returns the child, a reader of its stderr lines, and the
/// main socket.
fn start_as_systemd(
    sc: &Scratch,
    notify: &Path,
) -> (
    std::process::Child,
    std::thread::JoinHandle<Vec<String>>,
    PathBuf,
) {
    use std::io::BufRead;
    let (_, exec) = unit();
    let (run, lib) = (sc.0.join("run"), sc.0.join("lib"));
    std::fs::create_dir_all(&run).unwrap();
    let exec = exec
        .replace("/run/pcibox", &s(&run))
        .replace("/var/lib/pcibox", &s(&lib));
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/pcibox"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .args(words)
        .env("NOTIFY_SOCKET", notify)
        .env_remove("PCIBOX_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect()
    });
    (child, lines, run.join("xenstored"))
}

fn next_notification(n: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let len = n.recv(&mut buf).expect("a notification within 20 s");
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[test]
fn runs_as_a_systemd_notify_service_and_stops_cleanly_on_sigterm() {
    use rustix::process::{kill_process, Pid, Signal};
    let sc = Scratch::new("xs-systemd");
    let notify_path = sc.0.join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    for round in 0..2 {
        let (mut child, lines, socket) = start_as_systemd(&sc, &notify_path);
        let pid = child.id();
        // Ready means ready: the socket serves and the pidfile is written.
        let ready = next_notification(&notify);
        assert!(
            ready.starts_with("READY=1\n") && ready.contains(&format!("MAINPID={pid}\n")),
            "{ready}"
        );
        let pidfile = sc.0.join("run/xenstored.pid");
        assert_eq!(
            std::fs::read_to_string(&pidfile).unwrap(),
            format!("{pid}\n")
        );
        let tool = |args: &[&str]| {
            let out = Command::new(format!("/usr/bin/{}", args[0]))
                .args(&args[1..])
                .env("XENSTORED_PATH", &socket)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        if round == 0 {
            tool(&["xenstore-write", "/svc", "kept"]);
        } else {
            assert_eq!(tool(&["xenstore-read", "/svc"]), "kept\n", "state survived");
        }
        kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::TERM).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "SIGTERM: {status}");
        assert_eq!(next_notification(&notify), "STOPPING=1");
        assert!(!socket.exists(), "socket left behind");
        assert!(!pidfile.exists(), "pidfile left behind");
        let lines = lines.join().unwrap();
        assert!(
            lines.first().is_some_and(|l| l.contains("listening on")
                && l.contains(&s(&socket))
                && l.contains(if round == 0 {
                    "a new registry"
                } else {
                    "nodes"
                })),
            "start-up line: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("stopping on a signal")),
            "{lines:?}"
        );
        assert!(
            lines.iter().all(|l| !l.contains('\x1b')),
            "colour codes on a pipe: {lines:?}"
        );
    }
}

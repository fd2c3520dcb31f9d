//! Shared harness for the xenstored tests: runs `pcibox xenstored` in a
//! private directory and runs real clients (xenstore-utils, pyxs) against it.
#![allow(dead_code, clippy::unwrap_used)]

pub mod bystander;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pcibox-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Xenstored {
    pub child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
    args: Vec<String>,
}

/// Domains that get their own unprivileged socket in every daemon started
/// here.
pub const DOMAINS: [u16; 2] = [5, 6];

impl Xenstored {
    /// Starts a daemon with state in `dir` (created by the caller).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Xenstored {
        let socket = dir.join("socket");
        let mut args: Vec<String> = vec![
            "xenstored".into(),
            "--socket".into(),
            socket.display().to_string(),
            "--state-dir".into(),
            dir.join("state").display().to_string(),
        ];
        for d in DOMAINS {
            args.push("--domain-socket".into());
            args.push(format!("{d}={}", dir.join(format!("domain{d}")).display()));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut x = Xenstored {
            child: spawn(&args),
            dir: dir.to_path_buf(),
            socket,
            args,
        };
        x.wait_ready();
        x
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while UnixStream::connect(&self.socket).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pcibox xenstored exited early: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "xenstored did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts the daemon still runs and serves a write and a read.
    pub fn assert_alive(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "daemon died");
        self.ok("xenstore-write", &["/alive", "yes"]);
        assert_eq!(self.ok("xenstore-read", &["/alive"]), "yes\n");
    }

    /// The unprivileged socket of `domid`.
    pub fn domain_socket(&self, domid: u16) -> PathBuf {
        self.dir.join(format!("domain{domid}"))
    }

    /// Kills the daemon with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the daemon again with the same arguments and state.
    pub fn restart(&mut self) {
        self.kill9();
        self.child = spawn(&self.args);
        self.wait_ready();
    }

    /// Runs a xenstore-utils tool on the main (privileged) socket.
    pub fn tool(&self, name: &str, args: &[&str]) -> Output {
        self.tool_on(&self.socket, name, args)
    }

    /// Runs a xenstore-utils tool on a given socket.
    pub fn tool_on(&self, socket: &Path, name: &str, args: &[&str]) -> Output {
        let bin = Path::new("/usr/bin").join(name);
        assert!(
            bin.exists(),
            "{} is missing: install xenstore-utils (scripts/test.sh does)",
            bin.display()
        );
        Command::new(bin)
            .args(args)
            .env("XENSTORED_PATH", socket)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a tool and returns its stdout, asserting success.
    pub fn ok(&self, name: &str, args: &[&str]) -> String {
        let out = self.tool(name, args);
        assert!(
            out.status.success(),
            "{name} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a Python program using pyxs with Debian's /usr/bin/python3; the
    /// variables `MAIN`, `DOM5` and `DOM6` hold the socket paths.
    pub fn python(&self, program: &str) -> Output {
        let python = Path::new("/usr/bin/python3");
        assert!(python.exists(), "/usr/bin/python3 is missing");
        let prelude = format!(
            "MAIN = {:?}\nDOM5 = {:?}\nDOM6 = {:?}\n",
            self.socket.display().to_string(),
            self.domain_socket(5).display().to_string(),
            self.domain_socket(6).display().to_string(),
        );
        // `timeout` keeps a missing watch event from hanging the test run.
        Command::new("timeout")
            .arg("60")
            .arg(python)
            .arg("-c")
            .arg(format!("{prelude}{program}"))
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Xenstored {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .args(args)
        // Warnings only: the daemon's start-up line would clutter test output.
        .env("PCIBOX_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Sends one raw request.
pub fn send(s: &mut UnixStream, ty: u32, req_id: u32, tx: u32, payload: &[u8]) {
    assert!(try_send(s, ty, req_id, tx, payload), "send failed");
}

/// Sends one raw request; `false` if the daemon has closed the connection.
pub fn try_send(s: &mut UnixStream, ty: u32, req_id: u32, tx: u32, payload: &[u8]) -> bool {
    use std::io::Write;
    let mut msg = Vec::new();
    for v in [ty, req_id, tx, payload.len() as u32] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.extend_from_slice(payload);
    s.write_all(&msg).is_ok()
}

/// Reads one raw message: (type, req_id, payload); `None` at end of stream.
pub fn recv(s: &mut UnixStream) -> Option<(u32, u32, Vec<u8>)> {
    use std::io::Read;
    let mut h = [0u8; 16];
    match s.read_exact(&mut h) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return None
        }
        Err(e) => panic!("read: {e}"),
    }
    let f = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let mut payload = vec![0; f(12) as usize];
    s.read_exact(&mut payload).ok()?;
    Some((f(0), f(4), payload))
}

/// Sends a request and returns the reply (skipping watch events).
pub fn call(s: &mut UnixStream, ty: u32, tx: u32, payload: &[u8]) -> (u32, Vec<u8>) {
    static REQ: AtomicU32 = AtomicU32::new(1);
    let id = REQ.fetch_add(1, Ordering::Relaxed);
    send(s, ty, id, tx, payload);
    loop {
        let (t, r, p) = recv(s).expect("reply");
        if t == 15 {
            continue;
        }
        assert_eq!(r, id, "reply to our request");
        return (t, p);
    }
}

/// The error name of a reply, or "OK"-ish success marker `""`.
pub fn errname(reply: &(u32, Vec<u8>)) -> String {
    if reply.0 == 16 {
        String::from_utf8_lossy(reply.1.strip_suffix(b"\0").unwrap_or(&reply.1)).into_owned()
    } else {
        String::new()
    }
}

/// Sends `reqs` (type, transaction, payload) back to back and returns the
/// replies in order (watch events skipped): a client pipelining a window of
/// requests, as a guest may.
pub fn pipeline(s: &mut UnixStream, reqs: &[(u32, u32, Vec<u8>)]) -> Vec<(u32, Vec<u8>)> {
    use std::io::Write;
    static REQ: AtomicU32 = AtomicU32::new(1 << 30);
    let first = REQ.fetch_add(reqs.len() as u32, Ordering::Relaxed);
    let mut msg = Vec::new();
    for (i, (ty, tx, payload)) in reqs.iter().enumerate() {
        for v in [*ty, first + i as u32, *tx, payload.len() as u32] {
            msg.extend_from_slice(&v.to_le_bytes());
        }
        msg.extend_from_slice(payload);
    }
    s.write_all(&msg).unwrap();
    let mut out = Vec::with_capacity(reqs.len());
    while out.len() < reqs.len() {
        let (t, r, p) = recv(s).expect("reply");
        if t == 15 {
            continue;
        }
        assert_eq!(r, first + out.len() as u32, "replies in order");
        out.push((t, p));
    }
    out
}

/// Starts a transaction on a raw connection and returns its id.
pub fn tx_start(s: &mut UnixStream) -> u32 {
    let (ty, p) = call(s, 6, 0, b"\0");
    assert_eq!(
        ty,
        6,
        "TRANSACTION_START failed: {}",
        String::from_utf8_lossy(&p)
    );
    std::str::from_utf8(p.strip_suffix(b"\0").unwrap_or(&p))
        .unwrap()
        .parse()
        .unwrap()
}

/// Whether a message can be read from `s` within `timeout`.
pub fn readable(s: &UnixStream, timeout: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(s, PollFlags::IN)];
    let t = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    poll(&mut fds, Some(&t)).unwrap() > 0
}

//! Nothing destructive by surprise: the `pcibox` binary checks its arguments and asks for
//! `--yes` before it touches a device, refuses a device that is not what the driver drives, and
//! `serve-device` replaces only a stale socket.
//!
//! "Touches" is observed, not assumed: the device is a Unix socket the test listens on, and a
//! command that refused must not have connected to it. Devices that must answer are fakes
//! (`pcibox_model::fake`, a device model) served over vfio-user in this process.

#![allow(clippy::unwrap_used)]

use pcibox_kit::{Backend, Device};
use pcibox_model::fake::Fake;
use pcibox_vfio_user::{Client, Server, ServerOptions, StopHandle};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs `pcibox ARGS` with stdin not a terminal (as in CI and the guest tests).
fn pcibox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pcibox")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh path in the temp directory (nothing there yet).
fn temp_path(what: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "pcibox-ns-{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// A socket standing in for a device: `connected()` says whether any command reached it.
struct Watched {
    path: PathBuf,
    listener: UnixListener,
}

impl Watched {
    fn new() -> Watched {
        let path = temp_path("device.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        Watched { path, listener }
    }

    fn device(&self) -> String {
        format!("vfio-user:{}", self.path.display())
    }

    fn connected(&self) -> bool {
        self.listener.accept().is_ok()
    }

    /// Waits (bounded) until `who` connects, then hangs up on it.
    fn wait_for_connection(&self, who: &str) {
        let start = Instant::now();
        while !self.connected() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{who} never connected"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A fake device with `class` (base, sub, prog-if) served over vfio-user in a thread.
struct Served {
    path: PathBuf,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    fn new(vendor: u16, device: u16, class: [u8; 3]) -> Served {
        let fake = Fake::new(vendor, device).with_region(0, 0x4000, vec![]);
        // Class code bytes: prog-if at 0x09, subclass 0x0a, base class 0x0b.
        for (offset, byte) in [(0x09, class[2]), (0x0a, class[1]), (0x0b, class[0])] {
            fake.config_write(offset, &[byte]).unwrap();
        }
        let path = temp_path("served.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut server = Server::new(Box::new(fake), ServerOptions::default()).unwrap();
        let stop = server.stop_handle();
        let thread = std::thread::spawn(move || server.run(&listener).unwrap());
        Served {
            path,
            stop,
            thread: Some(thread),
        }
    }

    fn device(&self) -> String {
        format!("vfio-user:{}", self.path.display())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn write_and_verify_need_yes_and_touch_nothing_without_it() {
    let dev = Watched::new();
    let d = dev.device();
    for args in [
        vec![
            "nvme", "--device", &d, "write", "5000", "70", "--seed", "11",
        ],
        vec!["nvme", "--device", &d, "verify", "0", "8"],
        vec![
            "nvme", "--device", &d, "--json", "verify", "100", "1000", "--qd", "4",
        ],
    ] {
        let out = pcibox(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("pcibox: nvme "), "{err}");
        assert!(err.contains("would overwrite"), "{err}");
        assert!(err.contains(&format!("of {d}")), "{err}");
        assert!(err.contains("pass --yes"), "{err}");
        assert!(!dev.connected(), "{args:?} reached the device");
    }
    let err = stderr(&pcibox(&[
        "nvme", "--device", &d, "write", "5000", "70", "--seed", "11",
    ]));
    assert!(err.contains("70 block(s) at LBA 5000"), "{err}");
}

#[test]
fn yes_is_what_lets_a_write_reach_the_device() {
    let dev = Watched::new();
    let d = dev.device();
    // The listener never answers the vfio-user handshake: accept and hang up.
    let child = Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .args([
            "nvme", "--device", &d, "write", "0", "8", "--seed", "1", "--yes",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    dev.wait_for_connection("a write with --yes");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// `pcibox ARGS` with a terminal on stdin: util-linux's `script` runs it on a pty fed with
/// `answer`. Returns the exit code and what the terminal showed.
fn on_terminal(args: &[&str], answer: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let cmdline: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_pcibox"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect();
    let mut child = Command::new("script")
        .args([
            "--quiet",
            "--return",
            "--command",
            &cmdline.join(" "),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run util-linux script (package bsdutils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_terminal_is_asked_and_only_yes_goes_ahead() {
    let dev = Watched::new();
    let d = dev.device();
    let args = ["nvme", "--device", &d, "verify", "0", "8"];
    let (code, shown) = on_terminal(&args, "n\n");
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("Continue? [y/N]"), "{shown}");
    assert!(shown.contains("not confirmed, nothing done"), "{shown}");
    assert!(!dev.connected(), "a declined verify reached the device");
    // "yes" goes on to open the device (which hangs up: exit 1).
    let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let run = std::thread::spawn(move || {
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        on_terminal(&args, "yes\n")
    });
    dev.wait_for_connection("a confirmed verify");
    let (code, shown) = run.join().unwrap();
    assert_eq!(code, Some(1), "{shown}");
}

#[test]
fn arguments_are_checked_before_the_device_is_opened() {
    let dev = Watched::new();
    let d = dev.device();
    let missing = temp_path("no-such-file");
    let missing = missing.to_str().unwrap();
    // (args, exit code, what stderr must say)
    let cases: &[(&[&str], i32, &[&str])] = &[
        // clap's group: one of --seed/--file is required, even with --yes.
        (&["write", "0", "8", "--yes"], 2, &["--seed", "--file"]),
        (
            &["write", "0", "8", "--seed", "1", "--file", "/x", "--yes"],
            2,
            &["cannot be used with"],
        ),
        (
            &["write", "0", "8", "--file", missing, "--yes"],
            1,
            &[missing, "No such file"],
        ),
        (
            &["write", "0", "0", "--seed", "1", "--yes"],
            1,
            &["COUNT is 0", "zero-length"],
        ),
        (
            &["write", "0", "4194304", "--seed", "1", "--yes"],
            1,
            &["at most 1024 MiB"],
        ),
        (&["read", "18446744073709551615", "2"], 1, &["overflows"]),
        (
            &["verify", "0", "8", "--offset", "2", "--yes"],
            1,
            &["unaligned", "dword"],
        ),
        (
            &["verify", "0", "8", "--qd", "0", "--yes"],
            2,
            &["at least 1"],
        ),
        (
            &["verify", "0", "8", "--blocks-per-cmd", "0", "--yes"],
            2,
            &["--blocks-per-cmd"],
        ),
        (
            &["--queues", "0", "verify", "0", "8", "--yes"],
            2,
            &["--queues"],
        ),
        (&["bench", "--threads", "0"], 2, &["--threads"]),
        (
            &["--queues", "2", "bench", "--threads", "3"],
            1,
            &["--threads 3 needs as many queues (--queues 2)"],
        ),
        (
            &["write", "zero", "8", "--seed", "1", "--yes"],
            2,
            &["<LBA>"],
        ),
    ];
    for (args, code, says) in cases {
        let mut all = vec!["nvme", "--device", &d];
        all.extend_from_slice(args);
        let out = pcibox(&all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        for s in *says {
            assert!(err.contains(s), "{args:?}: {s:?} not in {err:?}");
        }
        assert!(!dev.connected(), "{args:?} reached the device");
    }
    // The argument error wins over a device that does not exist.
    let out = pcibox(&[
        "nvme",
        "--device",
        "vfio-user:/nonexistent/pcibox.sock",
        "write",
        "0",
        "8",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--seed") && !err.contains("connect"), "{err}");
    // net: bad durations and addresses are clap errors too.
    for args in [
        ["net", "--device", &d, "--link-wait", "-1", "stats"].as_slice(),
        &[
            "net",
            "--device",
            &d,
            "ping",
            "10.0.2.2",
            "--addr",
            "10.0.2.15",
        ],
        &["net", "--device", &d, "dhcp", "--timeout", "soon"],
    ] {
        let out = pcibox(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!dev.connected(), "{args:?} reached the device");
    }
}

#[test]
fn help_says_what_overwrites_and_what_positionals_are() {
    for sub in ["write", "verify"] {
        let out = pcibox(&["nvme", "--device", "vfio:00:04.0", sub, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub} --help");
        assert!(help.contains("OVERWRITE"), "{sub}: {help}");
        assert!(help.contains("--yes"), "{sub}: {help}");
        assert!(help.contains("First block"), "{sub}: {help}");
        assert!(help.contains("Number of blocks"), "{sub}: {help}");
    }
    let out = pcibox(&["nvme", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("OVERWRITE COUNT blocks at LBA with a pseudo-random"),
        "{help}"
    );
}

#[test]
fn a_driver_refuses_a_device_of_another_kind_and_says_what_it_is() {
    // A virtio network device offered to the NVMe driver.
    let virtio_net = Served::new(0x1af4, 0x1000, [0x02, 0x00, 0x00]);
    let out = pcibox(&["nvme", "--device", &virtio_net.device(), "identify"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let want = format!(
        "pcibox: {} is not an NVMe controller (class 02:00:00",
        virtio_net.device()
    );
    assert!(err.starts_with(&want), "{err}");
    assert!(err.contains("device 1af4:1000"), "{err}");
    // An NVMe controller offered to the e1000e driver.
    let nvme = Served::new(0x1b36, 0x0010, [0x01, 0x08, 0x02]);
    let out = pcibox(&["net", "--device", &nvme.device(), "stats"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is not an Intel 82574L e1000e NIC (class 01:08:02"),
        "{err}"
    );
    assert!(err.contains("device 1b36:0010"), "{err}");
}

fn serve_device(socket: &Path, device: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pcibox"));
    c.args(["serve-device", "--device", device, "--socket"])
        .arg(socket)
        .stdin(Stdio::null());
    c
}

#[test]
fn serve_device_keeps_files_that_are_not_stale_sockets() {
    let nowhere = "vfio-user:/nonexistent/pcibox.sock";
    // A regular file: kept, with its contents.
    let file = temp_path("regular");
    std::fs::write(&file, b"precious").unwrap();
    let out = serve_device(&file, nowhere).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is a regular file; not removing it"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    std::fs::remove_file(&file).unwrap();
    // A directory: kept.
    let dir = temp_path("dir");
    std::fs::create_dir(&dir).unwrap();
    let out = serve_device(&dir, nowhere).output().unwrap();
    let err = stderr(&out);
    assert!(err.contains("is a directory; not removing it"), "{err}");
    assert!(dir.is_dir());
    std::fs::remove_dir(&dir).unwrap();
    // A socket someone listens on: in use, and still theirs afterwards.
    let live = Watched::new();
    let out = serve_device(&live.path, nowhere).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("already in use"), "{err}");
    assert!(
        live.connected(),
        "the probe connection reached the live listener"
    );
    let again = std::os::unix::net::UnixStream::connect(&live.path);
    assert!(again.is_ok(), "the live socket was removed");
}

#[test]
fn serve_device_replaces_a_stale_socket() {
    let backing = Served::new(0x1b36, 0x0010, [0x01, 0x08, 0x02]);
    let path = temp_path("stale.sock");
    // Bound and closed: the file stays, nobody listens (connect is refused).
    drop(UnixListener::bind(&path).unwrap());
    assert!(std::os::unix::net::UnixStream::connect(&path).is_err());
    let mut child = serve_device(&path, &backing.device())
        .args(["--sessions", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        format!("serving {} on {}", backing.device(), path.display())
    );
    // A vfio-user client reaches the device through the replaced socket.
    let client = Client::connect(&path, Default::default()).unwrap();
    let dev = Device::new(Box::new(client)).unwrap();
    assert_eq!(dev.ids().unwrap(), (0x1b36, 0x0010));
    drop(dev);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!path.exists(), "serve-device left its socket behind");
}

//! `pcibox serve-device` with several devices in one process: each device has its own socket
//! and session thread, clients of different devices are served at the same time, and SIGTERM
//! ends every live session with its cleanup.
//!
//! The devices are fakes (`pcibox_model::fake`) served over vfio-user in this process, so the
//! `vfio-user:` devices `serve-device` opens are clients of those, and what its sessions leave
//! on the device (interrupts, DMA mappings, resets) is visible on the fakes.

#![allow(clippy::unwrap_used)]

use pcibox_kit::{Device, IrqKind};
use pcibox_model::fake::Fake;
use pcibox_vfio_user::{Client, Server, ServerOptions, StopHandle};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static N: AtomicU32 = AtomicU32::new(0);

fn temp_path(what: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "pcibox-sd-{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// A fake device served over vfio-user in a thread of this process.
struct Backing {
    fake: Fake,
    path: PathBuf,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl Backing {
    fn new(device_id: u16) -> Backing {
        let fake = Fake::new(0x1b36, device_id)
            .with_region(0, 0x1000, vec![])
            .with_irqs(IrqKind::Msix, 2);
        let path = temp_path("backing.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut server = Server::new(Box::new(fake.clone()), ServerOptions::default()).unwrap();
        let stop = server.stop_handle();
        let thread = std::thread::spawn(move || server.run(&listener).unwrap());
        Backing {
            fake,
            path,
            stop,
            thread: Some(thread),
        }
    }

    fn device(&self) -> String {
        format!("vfio-user:{}", self.path.display())
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `pcibox serve-device` for `devices`, each on a fresh socket; waits for its `serving` lines.
fn serve(devices: &[&Backing], extra: &[&str]) -> (Child, Vec<PathBuf>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pcibox"));
    cmd.arg("serve-device");
    let mut sockets = Vec::new();
    for d in devices {
        let s = temp_path("exported.sock");
        cmd.args(["--device", &d.device(), "--socket"]).arg(&s);
        sockets.push(s);
    }
    let mut child = cmd
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for (d, s) in devices.iter().zip(&sockets) {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            format!("serving {} on {}", d.device(), s.display())
        );
    }
    // The rest of stdout, for wait_with_output.
    child.stdout = Some(out.into_inner());
    (child, sockets)
}

fn connect(path: &Path) -> Device {
    Device::new(Box::new(Client::connect(path, Default::default()).unwrap())).unwrap()
}

fn stdout_stderr(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn two_devices_are_served_at_once() {
    let (a, b) = (Backing::new(0x1111), Backing::new(0x2222));
    let (child, sockets) = serve(&[&a, &b], &["--sessions", "1"]);
    // Both clients connected at the same time, their requests interleaved.
    let (da, db) = (connect(&sockets[0]), connect(&sockets[1]));
    for _ in 0..20 {
        assert_eq!(da.ids().unwrap(), (0x1b36, 0x1111));
        assert_eq!(db.ids().unwrap(), (0x1b36, 0x2222));
    }
    drop((da, db));
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = stdout_stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for (d, s) in [&a, &b].iter().zip(&sockets) {
        let prefix = format!("session {}: messages=", d.device());
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with(&prefix)).count(),
            1,
            "{stdout}"
        );
        assert!(!s.exists(), "{} left behind", s.display());
    }
}

#[test]
fn sigterm_ends_every_live_session_with_its_cleanup() {
    let (a, b) = (Backing::new(0x1111), Backing::new(0x2222));
    let (child, sockets) = serve(&[&a, &b], &[]);
    let (da, db) = (connect(&sockets[0]), connect(&sockets[1]));
    // Both sessions leave interrupts on and DMA mapped on their device.
    let kept: Vec<_> = [&da, &db]
        .iter()
        .map(|d| {
            d.enable_memory_and_bus_master().unwrap();
            (
                d.enable_interrupts(IrqKind::Msix, 2).unwrap(),
                d.alloc_dma(4096).unwrap(),
            )
        })
        .collect();
    for f in [&a.fake, &b.fake] {
        assert_eq!(
            (f.irq_enabled(), f.mapping_count()),
            (Some(IrqKind::Msix), 1)
        );
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = stdout_stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.matches("end=\"server stopped\"").count(),
        2,
        "{stdout}"
    );
    // serve-device's teardown reached both devices.
    let start = Instant::now();
    for f in [&a.fake, &b.fake] {
        while f.irq_enabled().is_some() || f.mapping_count() > 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "no cleanup");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(f.config()[4] & 0x04, 0, "bus mastering left on");
        assert!(f.resets() >= 1);
    }
    for s in &sockets {
        assert!(!s.exists(), "{} left behind", s.display());
    }
    drop((kept, da, db));
}

#[test]
fn a_device_without_its_socket_is_refused() {
    let a = Backing::new(0x1111);
    let out = Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .args([
            "serve-device",
            "--device",
            &a.device(),
            "--device",
            &a.device(),
        ])
        .args(["--socket", "/nonexistent/x.sock"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (_, stderr) = stdout_stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("each --device needs its --socket: 2 devices, 1 sockets"),
        "{stderr}"
    );
}

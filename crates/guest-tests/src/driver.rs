//! How a test's driver commands reach its device.
//!
//! Tests of the NVMe and e1000e suites name their device by BDF and run `/bin/pcibox` through
//! [`Driver`]. Run as declared, the driver is root on `vfio:BDF`. Each such test that declares
//! [`crate::test::Needs::twin_over_vfio_user`] also exists as a twin named `vfio-user-NAME`: the
//! same body, but the device is exported by `pcibox serve-device` (root, started on first use)
//! and every driver command runs as `nobody`, with no capabilities, on `vfio-user:SOCKET` — the
//! split of docs/vfio-user.md, checked by the suite's own assertions.

use crate::guest::{self, Output};
use crate::test::{Context, Failure};
use crate::{ensure, fail};
use serde::Serialize;
use std::cell::RefCell;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where driver commands run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// As root, directly on Linux VFIO.
    Vfio,
    /// As nobody, over vfio-user to `pcibox serve-device` (root, on VFIO).
    VfioUser,
}

const NOBODY: u32 = 65534;
const SOCK_DIR: &str = "/run/pcibox";
const PCIBOX: &str = "/bin/pcibox";

/// The driver side of one test run.
#[derive(Debug)]
pub struct Driver {
    transport: Transport,
    /// Servers of the vfio-user twin, by BDF.
    served: RefCell<Vec<(String, Served)>>,
}

impl Driver {
    pub fn new(transport: Transport) -> Driver {
        Driver {
            transport,
            served: RefCell::new(Vec::new()),
        }
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The `--device` argument for `bdf`: `vfio:BDF`, or in the twin `vfio-user:SOCKET` of a
    /// `serve-device` started for `bdf` if none runs yet (the device must be bound to vfio-pci).
    pub fn device(&self, bdf: &str) -> Result<String, Failure> {
        if self.transport == Transport::Vfio {
            return Ok(format!("vfio:{bdf}"));
        }
        let mut served = self.served.borrow_mut();
        if let Some((_, s)) = served.iter().find(|(b, _)| b == bdf) {
            return Ok(s.device());
        }
        let name = bdf.replace([':', '.'], "-");
        let s = Served::start(bdf, &name, None)?;
        let device = s.device();
        println!(
            "vfio-user twin: pcibox serve-device for {bdf} on {device}; drivers run as nobody"
        );
        served.push((bdf.to_string(), s));
        Ok(device)
    }

    /// Stops every server of the twin, checking each stopped cleanly (the end of a test).
    pub fn release_all(&self) -> Result<(), Failure> {
        let bdfs: Vec<String> = self
            .served
            .borrow()
            .iter()
            .map(|(b, _)| b.clone())
            .collect();
        bdfs.iter().try_for_each(|b| self.release(b))
    }

    /// Runs `/bin/pcibox ARGS` to completion: as root, or as nobody in the twin.
    pub fn run(&self, args: &[&str]) -> Result<Output, Failure> {
        match self.transport {
            Transport::Vfio => guest::run(PCIBOX, args),
            Transport::VfioUser => as_nobody(PCIBOX, args),
        }
    }

    /// A `/bin/pcibox` command to spawn, with the twin's user set.
    pub fn command(&self) -> Command {
        match self.transport {
            Transport::Vfio => Command::new(PCIBOX),
            Transport::VfioUser => nobody(PCIBOX),
        }
    }

    /// Opens `bdf` in the test process (root): VFIO, or in the twin a vfio-user client of the
    /// device's server.
    pub fn open(&self, bdf: &str) -> Result<pcibox_kit::Device, Failure> {
        if self.transport == Transport::Vfio {
            let bdf = bdf.parse().context(bdf)?;
            return pcibox_vfio::open(bdf).context("open");
        }
        let device = self.device(bdf)?;
        let path = device.trim_start_matches("vfio-user:");
        let client = pcibox_vfio_user::Client::connect(Path::new(path), Default::default())
            .context(&device)?;
        pcibox_kit::Device::new(Box::new(client)).context(&device)
    }

    /// Stops serving `bdf` (before the device goes back to a kernel driver). Fails if the
    /// server reported errors.
    pub fn release(&self, bdf: &str) -> Result<(), Failure> {
        let mut served = self.served.borrow_mut();
        let Some(i) = served.iter().position(|(b, _)| b == bdf) else {
            return Ok(());
        };
        let (_, s) = served.swap_remove(i);
        let out = s.shutdown()?;
        println!(
            "serve-device {bdf}: {}",
            out.stdout.trim().replace('\n', " | ")
        );
        Ok(())
    }
}

/// `program` to run as nobody:nobody (no supplementary groups, hence no capabilities), in `/`.
pub fn nobody(program: &str) -> Command {
    let mut c = Command::new(program);
    c.uid(NOBODY).gid(NOBODY).current_dir("/");
    c
}

/// Runs `program ARGS` as nobody to completion.
pub fn as_nobody(program: &str, args: &[&str]) -> Result<Output, Failure> {
    let cmdline = format!("(as nobody) {program} {}", args.join(" "));
    let out = nobody(program).args(args).output().context(&cmdline)?;
    Ok(Output {
        cmdline,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A running `pcibox serve-device` (root), killed if the test ends early.
#[derive(Debug)]
pub struct Served {
    child: Option<Child>,
    /// One per device, in the order given.
    sockets: Vec<String>,
}

/// Whether the kernel lists a listening Unix socket bound to `path` (`/proc/net/unix`: the
/// flags column has `__SO_ACCEPTCON`, 0x10000).
fn listening(path: &str) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() >= 8
            && cols[7] == path
            && u32::from_str_radix(cols[3], 16).is_ok_and(|flags| flags & 0x1_0000 != 0)
    })
}

impl Served {
    /// Serves `bdf` on `/run/pcibox/NAME.sock` (mode 666) for `sessions` clients (`None`: until
    /// stopped) and waits for the socket.
    pub fn start(bdf: &str, name: &str, sessions: Option<u32>) -> Result<Served, Failure> {
        Served::start_many(&[(bdf, name)], sessions)
    }

    /// Serves each `(bdf, name)` on `/run/pcibox/NAME.sock` from one `serve-device` process,
    /// for `sessions` clients each, and waits for the sockets.
    pub fn start_many(devices: &[(&str, &str)], sessions: Option<u32>) -> Result<Served, Failure> {
        std::fs::create_dir_all(SOCK_DIR).context(SOCK_DIR)?;
        let mut cmd = Command::new(PCIBOX);
        cmd.args(["serve-device", "--mode", "666"]);
        let mut sockets = Vec::new();
        for (bdf, name) in devices {
            let socket = format!("{SOCK_DIR}/{name}.sock");
            let _ = std::fs::remove_file(&socket);
            cmd.args(["--device", &format!("vfio:{bdf}"), "--socket", &socket]);
            sockets.push(socket);
        }
        if let Some(n) = sessions {
            cmd.args(["--sessions", &n.to_string()]);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning serve-device")?;
        let mut served = Served {
            child: Some(child),
            sockets,
        };
        let socks = served.sockets.clone();
        // A socket file appears at bind(), a moment before listen(): until then a connect is
        // refused. Wait for the kernel to list every socket as listening.
        let res = guest::wait_for(
            "the serve-device sockets to listen",
            Duration::from_secs(20),
            || socks.iter().all(|s| listening(s)),
        );
        if let Err(e) = res {
            if let Some(c) = &mut served.child {
                let _ = c.kill();
            }
            let out = served.finish().map(|o| o.stderr).unwrap_or_default();
            fail!("{e}: {out}");
        }
        Ok(served)
    }

    /// The `--device` argument for the (first) served device.
    pub fn device(&self) -> String {
        self.device_at(0)
    }

    /// The `--device` argument for the `i`-th served device.
    pub fn device_at(&self, i: usize) -> String {
        format!(
            "vfio-user:{}",
            self.sockets.get(i).map_or("", String::as_str)
        )
    }

    /// Asks the server to stop (SIGTERM: it ends the sessions it serves as a disconnect would,
    /// removes its sockets and exits 0); kills it if it has not exited within 10 s.
    fn stop(&mut self) -> Result<(), Failure> {
        let Some(c) = &mut self.child else {
            return Ok(());
        };
        let pid = rustix::process::Pid::from_child(c);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .context("SIGTERM to serve-device")?;
        let exited = guest::wait_for(
            "serve-device to exit on SIGTERM",
            Duration::from_secs(10),
            || matches!(c.try_wait(), Ok(Some(_))),
        );
        if exited.is_err() {
            let _ = c.kill();
        }
        exited
    }

    /// Stops the server between or during sessions and checks it went cleanly: exit 0, sockets
    /// removed, no error logged. Returns its output.
    pub fn shutdown(mut self) -> Result<Output, Failure> {
        self.stop()?;
        let out = self.finish()?;
        ensure!(
            out.code == Some(0),
            "serve-device exited with {:?}: {}",
            out.code,
            out.stderr.trim()
        );
        for socket in &self.sockets {
            ensure!(
                !Path::new(socket).exists(),
                "serve-device left {socket} behind"
            );
        }
        ensure!(
            !out.stderr.contains("ERROR") && !out.stderr.contains("panicked"),
            "serve-device reported errors: {}",
            out.stderr.trim()
        );
        Ok(out)
    }

    /// Waits for the server to exit and returns its output.
    pub fn finish(&mut self) -> Result<Output, Failure> {
        let Some(mut child) = self.child.take() else {
            fail!("serve-device already finished");
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut stdout);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut stderr);
        }
        let status = child.wait().context("serve-device")?;
        Ok(Output {
            cmdline: "pcibox serve-device".into(),
            code: status.code(),
            stdout,
            stderr,
        })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

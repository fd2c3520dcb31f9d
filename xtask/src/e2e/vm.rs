//! One guest test in one QEMU VM: boot, watch the console for the result markers, serve the
//! guest's host requests (QEMU monitor commands) on the control port, kill it on timeout.

use super::report::Outcome;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time allowed from QEMU's start to the test's `@@rig start` line (≈2.5 s when idle, seen up
/// to 39 s with 8 agents compiling on 2 cores).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(150);

/// Everything one VM needs.
#[derive(Debug)]
pub struct Spec<'a> {
    pub test: &'a str,
    pub kernel: &'a Path,
    /// The complete initrd (base + overlay).
    pub initrd: &'a Path,
    pub disk: &'a Path,
    pub timeout: Duration,
    pub monitor: bool,
    /// Directory for this VM's sockets (short path: unix sockets are limited to 107 bytes).
    pub run_dir: &'a Path,
    pub log: &'a Path,
    pub verbose: bool,
    /// Extra kernel parameters (`--append`).
    pub append: &'a str,
}

/// The QEMU command line (BRIEF §4: q35 + intel-iommu under TCG, devices at fixed addresses).
pub fn qemu_args(spec: &Spec<'_>, ctl: &Path, qmp: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "-accel",
        "tcg",
        "-machine",
        "q35",
        "-cpu",
        "max",
        "-m",
        "512M",
        "-smp",
        "1",
        "-nodefaults",
        "-no-reboot",
        "-display",
        "none",
        // ttyS0: the console; ttyS1: the control port for host requests.
        "-serial",
        "stdio",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("-serial".into());
    a.push(format!("unix:{}", ctl.display()));
    a.push("-qmp".into());
    a.push(format!("unix:{},server=on,wait=off", qmp.display()));
    // The IOMMU first, before any PCI device.
    a.extend(["-device", "intel-iommu,intremap=on"].map(String::from));
    a.push("-kernel".into());
    a.push(spec.kernel.display().to_string());
    a.push("-initrd".into());
    a.push(spec.initrd.display().to_string());
    a.push("-append".into());
    let mut cmdline = format!(
        "console=ttyS0 quiet panic=-1 intel_iommu=on no_timer_check rig.test={}",
        spec.test
    );
    if !spec.append.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(spec.append);
    }
    a.push(cmdline);
    a.push("-drive".into());
    a.push(format!(
        "if=none,id=disk0,format=raw,snapshot=on,file={}",
        spec.disk.display()
    ));
    a.extend(
        [
            "-device",
            "nvme,serial=pcibox-nvme0,drive=disk0,addr=04.0",
            "-netdev",
            "user,id=n0",
            "-device",
            "e1000e,netdev=n0,addr=05.0",
            "-netdev",
            "user,id=n1",
            "-device",
            "virtio-net-pci,netdev=n1,addr=06.0",
            // Two functions of one slot share an IOMMU group (no ACS): the
            // serial port is bound to the built-in 8250_pci driver, so the
            // group is not viable for VFIO (kit-bad-input).
            "-device",
            "pci-serial,addr=07.0,multifunction=on",
            "-device",
            "pci-testdev,addr=07.1",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
        ]
        .map(String::from),
    );
    a
}

enum Event {
    Line(String),
    Eof,
}

/// QEMU's exit status when the guest wrote 0x10 (pass) or 0x11 (fail) to isa-debug-exit.
const EXIT_PASS: i32 = (0x10 << 1) | 1;
const EXIT_FAIL: i32 = (0x11 << 1) | 1;

/// How one VM went.
#[derive(Debug)]
pub struct Run {
    pub outcome: Outcome,
    /// QEMU start to exit.
    pub took: Duration,
    /// QEMU start to `@@rig start`, if the test started.
    pub boot: Option<Duration>,
}

/// Runs the test in a VM.
pub fn run(spec: &Spec<'_>) -> Run {
    let started = Instant::now();
    let mut boot = None;
    let outcome = run_inner(spec, &mut boot).unwrap_or_else(Outcome::Fail);
    Run {
        outcome,
        took: started.elapsed(),
        boot,
    }
}

fn run_inner(spec: &Spec<'_>, boot: &mut Option<Duration>) -> Result<Outcome, String> {
    std::fs::create_dir_all(spec.run_dir)
        .map_err(|e| format!("{}: {e}", spec.run_dir.display()))?;
    let ctl = spec.run_dir.join("ctl");
    let qmp = spec.run_dir.join("qmp");
    let _ = std::fs::remove_file(&ctl);
    let _ = std::fs::remove_file(&qmp);
    let listener = UnixListener::bind(&ctl).map_err(|e| format!("{}: {e}", ctl.display()))?;
    let mut log =
        std::fs::File::create(spec.log).map_err(|e| format!("{}: {e}", spec.log.display()))?;
    let log_err = log.try_clone().map_err(|e| format!("log: {e}"))?;
    let mut qemu = Command::new("qemu-system-x86_64");
    let mut child = super::child::die_with_parent(&mut qemu)
        .args(qemu_args(spec, &ctl, &qmp))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_err))
        .spawn()
        .map_err(|e| format!("starting qemu-system-x86_64: {e}"))?;

    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().ok_or("qemu stdout")?;
    let console = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            if tx.send(Event::Line(text)).is_err() {
                break;
            }
        }
        let _ = tx.send(Event::Eof);
    });
    let stop = Arc::new(AtomicBool::new(false));
    let control = {
        let stop = stop.clone();
        let qmp = qmp.clone();
        let monitor = spec.monitor;
        let test = spec.test.to_owned();
        std::thread::spawn(move || serve_control(listener, &qmp, monitor, &stop, &test))
    };

    let outcome = watch(spec, &mut child, &rx, &mut log, boot);
    stop.store(true, Ordering::Relaxed);
    // The console closed (or the result is in): QEMU is exiting on its own; give it a moment
    // so its exit status (isa-debug-exit) is not replaced by our SIGKILL.
    let exit_by = Instant::now() + Duration::from_secs(5);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < exit_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().map_err(|e| format!("waiting for qemu: {e}"))?;
    let _ = console.join();
    let requests = control.join().unwrap_or_default();
    let _ = writeln!(
        log,
        "@@xtask qemu exit: {status}; host requests served: {requests}"
    );
    let _ = std::fs::remove_file(&ctl);
    let _ = std::fs::remove_file(&qmp);
    Ok(match outcome {
        Watched::Result(None, tail) => Outcome::Fail(match status.code() {
            Some(code) => format!(
                "guest ended without a result (qemu exit {code}); last console line: {tail:?}"
            ),
            None => format!("guest ended without a result ({status}); last console line: {tail:?}"),
        }),
        Watched::Result(Some(Ok(())), _) if status.code() == Some(EXIT_PASS) => Outcome::Pass,
        Watched::Result(Some(Ok(())), _) => {
            Outcome::Fail(format!("result pass but qemu exit {status}"))
        }
        Watched::Result(Some(Err(reason)), _) => {
            if status.code() != Some(EXIT_FAIL) {
                Outcome::Fail(format!("{reason} (and qemu exit {status})"))
            } else {
                Outcome::Fail(reason)
            }
        }
        Watched::Hung(why) => Outcome::Hung(why),
    })
}

enum Watched {
    /// The result marker (None: the console ended without one) and the last console line.
    Result(Option<Result<(), String>>, String),
    Hung(String),
}

/// Follows the console until the result, the end of output, or a deadline.
fn watch(
    spec: &Spec<'_>,
    child: &mut Child,
    rx: &mpsc::Receiver<Event>,
    log: &mut std::fs::File,
    boot: &mut Option<Duration>,
) -> Watched {
    let boot_start = Instant::now();
    let mut deadline = boot_start + BOOT_TIMEOUT;
    let mut started = false;
    let mut result = None;
    let mut last = String::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            return Watched::Hung(if started {
                format!("no result {} s after start", spec.timeout.as_secs())
            } else {
                format!(
                    "did not start within {} s of boot; last console line: {last:?}",
                    BOOT_TIMEOUT.as_secs()
                )
            });
        }
        match rx.recv_timeout(deadline - now) {
            Ok(Event::Line(line)) => {
                let _ = writeln!(log, "{line}");
                if spec.verbose {
                    eprintln!("[{}] {line}", spec.test);
                }
                if let Some(rest) = line.strip_prefix("@@rig ") {
                    if rest.starts_with("start ") && !started {
                        started = true;
                        *boot = Some(boot_start.elapsed());
                        let _ = writeln!(
                            log,
                            "@@xtask boot took {:.2} s",
                            boot_start.elapsed().as_secs_f64()
                        );
                        deadline = Instant::now() + spec.timeout;
                    } else if rest == "result pass" {
                        result = Some(Ok(()));
                    } else if let Some(reason) = rest.strip_prefix("result fail: ") {
                        result = Some(Err(reason.to_owned()));
                    }
                }
                if !line.trim().is_empty() {
                    last = line;
                }
                if result.is_some() {
                    // Give QEMU a moment to exit through isa-debug-exit on its own.
                    deadline = Instant::now() + Duration::from_secs(10);
                }
            }
            Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Watched::Result(result, last)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if result.is_some() {
                    return Watched::Result(result, last);
                }
            }
        }
    }
}

/// Accepts QEMU's connection on the control port and answers the guest's requests until QEMU
/// closes it. Returns how many requests were served.
fn serve_control(
    listener: UnixListener,
    qmp: &Path,
    monitor: bool,
    stop: &AtomicBool,
    test: &str,
) -> usize {
    if listener.set_nonblocking(true).is_err() {
        return 0;
    }
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Relaxed) {
                    return 0;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return 0,
        }
    };
    if stream.set_nonblocking(false).is_err() {
        return 0;
    }
    let Ok(mut writer) = stream.try_clone() else {
        return 0;
    };
    let mut served = 0;
    for line in BufReader::new(stream).split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line).trim().to_owned();
        let Some((id, kind, arg)) = parse_request(&line) else {
            continue;
        };
        let answer = match kind {
            "monitor" if !monitor => Err(format!("{test} does not declare Needs::monitor()")),
            "monitor" => human_monitor_command(qmp, arg),
            other => Err(format!("unknown request kind {other:?}")),
        };
        let (status, text) = match answer {
            Ok(t) => ("ok", t),
            Err(e) => ("err", e),
        };
        if writeln!(
            writer,
            "@@ack {id} {status} {}",
            encode_hex(text.as_bytes())
        )
        .is_err()
        {
            break;
        }
        served += 1;
    }
    served
}

/// `@@req ID KIND ARG…` → (ID, KIND, ARG).
pub fn parse_request(line: &str) -> Option<(u32, &str, &str)> {
    let rest = line.strip_prefix("@@req ")?;
    let (id, rest) = rest.split_once(' ')?;
    let (kind, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((id.parse().ok()?, kind, arg))
}

pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs an HMP command through QMP (`human-monitor-command`), returning its text output.
fn human_monitor_command(qmp: &Path, command: &str) -> Result<String, String> {
    let stream = UnixStream::connect(qmp).map_err(|e| format!("QMP {}: {e}", qmp.display()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("QMP: {e}"))?;
    let mut writer = stream.try_clone().map_err(|e| format!("QMP: {e}"))?;
    let mut reader = BufReader::new(stream);
    // The greeting, then capabilities negotiation, then the command. Events are skipped.
    let next = |reader: &mut BufReader<UnixStream>| -> Result<serde_json::Value, String> {
        loop {
            let mut line = String::new();
            if reader
                .read_line(&mut line)
                .map_err(|e| format!("QMP read: {e}"))?
                == 0
            {
                return Err("QMP closed".into());
            }
            let v: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| format!("QMP: {e}: {line:?}"))?;
            if v.get("event").is_none() {
                return Ok(v);
            }
        }
    };
    next(&mut reader)?;
    writeln!(writer, r#"{{"execute":"qmp_capabilities"}}"#)
        .map_err(|e| format!("QMP write: {e}"))?;
    next(&mut reader)?;
    let cmd = serde_json::json!({"execute": "human-monitor-command", "arguments": {"command-line": command}});
    writeln!(writer, "{cmd}").map_err(|e| format!("QMP write: {e}"))?;
    let reply = next(&mut reader)?;
    match (reply.get("return"), reply.get("error")) {
        (Some(serde_json::Value::String(s)), _) => Ok(s.clone()),
        (_, Some(err)) => Err(format!("QMP error: {err}")),
        _ => Err(format!("unexpected QMP reply: {reply}")),
    }
}

/// This run's directory for per-VM sockets and initrds (short: unix socket paths are limited).
pub fn run_root() -> PathBuf {
    std::env::temp_dir().join(format!("pcibox-rig-{}", std::process::id()))
}

/// A per-VM directory inside `run_root()`.
pub fn run_dir(test: &str) -> PathBuf {
    run_root().join(test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request("@@req 3 monitor info pci"),
            Some((3, "monitor", "info pci"))
        );
        assert_eq!(parse_request("@@req 4 ping"), Some((4, "ping", "")));
        assert_eq!(parse_request("@@req x monitor a"), None);
        assert_eq!(parse_request("hello"), None);
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(encode_hex(b"ok\n"), "6f6b0a");
    }

    #[test]
    fn qemu_command_line() {
        let p = Path::new("/x");
        let spec = Spec {
            test: "rig-boot",
            kernel: p,
            initrd: p,
            disk: Path::new("/d.img"),
            timeout: Duration::from_secs(1),
            monitor: false,
            run_dir: p,
            log: p,
            verbose: false,
            append: "x=1",
        };
        let a = qemu_args(&spec, Path::new("/r/ctl"), Path::new("/r/qmp")).join(" ");
        assert!(a.contains("-machine q35"));
        assert!(a.contains("nvme,serial=pcibox-nvme0,drive=disk0,addr=04.0"));
        assert!(a.contains("file=/d.img"));
        assert!(a.contains("rig.test=rig-boot x=1"));
        let iommu = a.find("intel-iommu").expect("iommu");
        assert!(
            iommu < a.find("nvme,").expect("nvme"),
            "intel-iommu must precede PCI devices"
        );
    }
}

//! Guest tests of the `vfio-user` area (names start with `vfio-user-`). See docs/rig.md and
//! docs/vfio-user.md.
//!
//! `pcibox serve-device` runs as root on the vfio-pci device; the driver (`pcibox net`,
//! `pcibox nvme`) runs as `nobody` with no capabilities over `vfio-user:SOCKET` and must give the
//! same results as the same command run directly on VFIO. The server's per-session message
//! counts give the messages per I/O, printed to the console log. The NVMe and e1000e suites
//! (all but `e1000e-not-a-nic`) also run over vfio-user as their `vfio-user-` twins
//! ([`crate::driver`]).

use crate::driver::{as_nobody, nobody, Served};
use crate::guest::{self, Output, E1000E_BDF, NVME_BDF};
use crate::test::{Context, Ctx, Disk, Failure, Needs, Outcome, Test};
use crate::{ensure, ensure_eq};
use std::process::Stdio;
use std::time::Duration;

pub const TESTS: &[Test] = &[
    Test {
        name: "vfio-user-unprivileged",
        about: "a driver process as nobody has no capabilities and cannot open /dev/vfio",
        run: unprivileged,
        needs: Needs::DEFAULT.timeout_s(60),
    },
    Test {
        name: "vfio-user-e1000e",
        about: "e1000e DHCP and ping as nobody over serve-device equal direct VFIO; messages per ping",
        run: e1000e,
        needs: Needs::DEFAULT.timeout_s(240),
    },
    Test {
        name: "vfio-user-client-killed",
        about: "e1000e clients killed (SIGKILL) mid-ping, 20 times: the server cleans up, the VM lives, the next client gets a lease",
        run: client_killed,
        needs: Needs::DEFAULT.timeout_s(180),
    },
    Test {
        name: "vfio-user-two-devices",
        about: "one serve-device process serves NVMe and e1000e at once: a QD32 verify and a DHCP lease as nobody, side by side",
        run: two_devices,
        needs: Needs::DEFAULT.timeout_s(180),
    },
    Test {
        name: "vfio-user-nvme",
        about: "NVMe partitions, identify and verify at QD32 as nobody over serve-device equal direct VFIO; messages per command",
        run: nvme,
        // Compares the rig's GPT image over both transports (`ensure!(… "label: gpt")`).
        needs: Needs::DEFAULT.disk(Disk::Gpt).own_disk().timeout_s(240),
    },
];

/// `messages=N` of each `session:` line the server printed.
fn session_messages(out: &Output) -> Vec<u64> {
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("session: "))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|f| f.strip_prefix("messages=")?.parse().ok())
        .collect()
}

fn json(out: &Output) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(out.stdout.trim())
        .map_err(|e| Failure::new(format!("{}: not JSON ({e}): {}", out.cmdline, out.stdout)))
}

fn unprivileged(_ctx: &Ctx) -> Outcome {
    guest::bind_vfio(E1000E_BDF)?;
    let status = as_nobody("/bin/cat", &["/proc/self/status"])?.ok()?;
    let field = |name: &str| {
        status
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    ensure!(field("Uid:").starts_with("65534"), "uid: {}", field("Uid:"));
    for cap in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:"] {
        ensure_eq!(field(cap), "0000000000000000", "{cap}");
    }
    // Direct VFIO is out of reach for nobody.
    let direct = as_nobody(
        "/bin/pcibox",
        &["net", "--device", &format!("vfio:{E1000E_BDF}"), "stats"],
    )?;
    ensure!(
        direct.code != Some(0) && direct.stderr.contains("ermission denied"),
        "nobody could use VFIO directly: {:?} {}",
        direct.code,
        direct.stderr
    );
    // Through the server it works.
    let mut served = Served::start(E1000E_BDF, "unpriv", Some(1))?;
    let out = as_nobody(
        "/bin/pcibox",
        &["net", "--device", &served.device(), "--json", "stats"],
    )?
    .ok()?;
    let v = json(&out)?;
    ensure!(v.get("stats").is_some(), "no stats in {v}");
    let server = served.finish()?.ok()?;
    ensure_eq!(session_messages(&server).len(), 1, "sessions: {}", server.stdout);
    Ok(())
}

fn e1000e(_ctx: &Ctx) -> Outcome {
    guest::bind_vfio(E1000E_BDF)?;
    let vfio = format!("vfio:{E1000E_BDF}");
    // Direct VFIO, as root: the reference results.
    let direct_dhcp = json(&guest::run("/bin/pcibox", &["net", "--device", &vfio, "--json", "dhcp"])?.ok()?)?;
    let ping_args = |n: &'static str| {
        [
            "--json", "ping", "10.0.2.2", "-c", n, "--interval", "100", "--addr", "10.0.2.15/24",
            "--gateway", "10.0.2.2",
        ]
    };
    let mut direct_args = vec!["net", "--device", vfio.as_str()];
    direct_args.extend(ping_args("3"));
    let direct_ping = json(&guest::run("/bin/pcibox", &direct_args)?.ok()?)?;

    // The same through serve-device, the driver as nobody: DHCP, then pings of 1 and 5.
    let mut served = Served::start(E1000E_BDF, "e1000e", Some(3))?;
    let dev = served.device();
    let dhcp = json(&as_nobody("/bin/pcibox", &["net", "--device", &dev, "--json", "dhcp"])?.ok()?)?;
    ensure_eq!(
        dhcp["lease"]["address"],
        direct_dhcp["lease"]["address"],
        "DHCP lease differs from direct VFIO: {dhcp} vs {direct_dhcp}"
    );
    let mut pings = Vec::new();
    for n in ["1", "5"] {
        let mut args = vec!["net", "--device", dev.as_str()];
        args.extend(ping_args(n));
        pings.push(json(&as_nobody("/bin/pcibox", &args)?.ok()?)?);
    }
    let server = served.finish()?.ok()?;
    for (p, n) in pings.iter().zip([1u64, 5]) {
        ensure_eq!(p["ping"]["sent"].as_u64(), Some(n), "{p}");
        ensure_eq!(p["ping"]["received"], p["ping"]["sent"], "lost replies over vfio-user: {p}");
    }
    ensure_eq!(
        direct_ping["ping"]["received"],
        direct_ping["ping"]["sent"],
        "direct VFIO lost replies: {direct_ping}"
    );
    let counts = session_messages(&server);
    ensure_eq!(counts.len(), 3, "sessions: {}", server.stdout);
    let per_ping = (counts[2] as f64 - counts[1] as f64) / 4.0;
    println!("vfio-user e1000e sessions: {}", server.stdout.trim().replace('\n', " | "));
    println!("vfio-user e1000e: {per_ping:.1} messages per ping (sessions of 1 and 5 pings: {} and {})", counts[1], counts[2]);
    Ok(())
}

fn nvme(_ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    let vfio = format!("vfio:{NVME_BDF}");
    let nvme = |dev: &str, args: &[&str], nobody: bool| -> Result<Output, Failure> {
        let mut all = vec!["nvme", "--device", dev];
        all.extend_from_slice(args);
        if nobody {
            as_nobody("/bin/pcibox", &all)?.ok()
        } else {
            guest::run("/bin/pcibox", &all)?.ok()
        }
    };
    let verify = |n: &'static str| ["--json", "verify", "4096", n, "--qd", "32", "--blocks-per-cmd", "8", "--yes"];
    // Direct VFIO, as root: the reference results.
    let direct_parts = nvme(&vfio, &["partitions"], false)?.stdout;
    let direct_id = json(&nvme(&vfio, &["--json", "identify"], false)?)?;
    let direct_verify = json(&nvme(&vfio, &verify("2048"), false)?)?;

    // Through serve-device, the driver as nobody.
    let mut served = Served::start(NVME_BDF, "nvme", Some(4))?;
    let dev = served.device();
    let parts = nvme(&dev, &["partitions"], true)?.stdout;
    let id = json(&nvme(&dev, &["--json", "identify"], true)?)?;
    let small = json(&nvme(&dev, &verify("256"), true)?)?;
    let big = json(&nvme(&dev, &verify("2048"), true)?)?;
    let server = served.finish()?.ok()?;

    ensure_eq!(parts, direct_parts, "partition table differs from direct VFIO");
    ensure!(parts.contains("label: gpt"), "no GPT: {parts}");
    ensure_eq!(
        id["controller"]["serial"],
        direct_id["controller"]["serial"],
        "identify differs"
    );
    ensure_eq!(id["controller"]["serial"].as_str(), Some("pcibox-nvme0"), "serial");
    for op in ["write", "read"] {
        ensure_eq!(big[op]["commands"], direct_verify[op]["commands"], "{op} commands");
        ensure_eq!(big[op]["max_in_flight"].as_u64(), Some(32), "{op} depth: {big}");
    }
    let counts = session_messages(&server);
    ensure_eq!(counts.len(), 4, "sessions: {}", server.stdout);
    let cmds = |v: &serde_json::Value| {
        v["write"]["commands"].as_u64().unwrap_or(0) + v["read"]["commands"].as_u64().unwrap_or(0)
    };
    let extra_cmds = cmds(&big).saturating_sub(cmds(&small));
    ensure!(extra_cmds > 0, "no extra commands: {small} {big}");
    let per_cmd = (counts[3] as f64 - counts[2] as f64) / extra_cmds as f64;
    let irqs = |v: &serde_json::Value| {
        v["write"]["interrupts"].as_u64().unwrap_or(0) + v["read"]["interrupts"].as_u64().unwrap_or(0)
    };
    println!("vfio-user nvme sessions: {}", server.stdout.trim().replace('\n', " | "));
    println!(
        "vfio-user nvme: {per_cmd:.2} messages per 4 KiB command at QD32 ({} vs {} messages for {} vs {} commands; {} vs {} interrupts)",
        counts[2], counts[3], cmds(&small), cmds(&big), irqs(&small), irqs(&big)
    );
    Ok(())
}

/// `session DEVICE: messages=N …` lines of a server of several devices: the count for `device`.
fn sessions_of(out: &Output, device: &str) -> usize {
    let prefix = format!("session {device}: messages=");
    out.stdout.lines().filter(|l| l.starts_with(&prefix)).count()
}

/// One `serve-device` for both devices (a thread per session): an NVMe driver and an e1000e
/// driver, both as nobody, run at the same time, each on its own device's socket.
fn two_devices(_ctx: &Ctx) -> Outcome {
    guest::bind_vfio(NVME_BDF)?;
    guest::bind_vfio(E1000E_BDF)?;
    let mut served = Served::start_many(&[(NVME_BDF, "two-nvme"), (E1000E_BDF, "two-net")], Some(1))?;
    let (nvme, net) = (served.device_at(0), served.device_at(1));
    let start = std::time::Instant::now();
    let verify = nobody("/bin/pcibox")
        .args(["nvme", "--device", &nvme, "--json", "verify", "4096", "2048", "--qd", "32"])
        .args(["--blocks-per-cmd", "8", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning the verify")?;
    let dhcp = json(&as_nobody("/bin/pcibox", &["net", "--device", &net, "--json", "dhcp"])?.ok()?)?;
    let dhcp_done = start.elapsed();
    let verify = verify.wait_with_output().context("the verify")?;
    let verify_done = start.elapsed();
    ensure!(
        verify.status.success(),
        "verify over vfio-user failed: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&verify.stdout).context("verify --json")?;
    ensure!(v["read"]["commands"].as_u64().unwrap_or(0) > 0, "no reads: {v}");
    ensure_eq!(dhcp["lease"]["address"].as_str(), Some("10.0.2.15"), "lease: {dhcp}");
    let server = served.finish()?.ok()?;
    for bdf in [NVME_BDF, E1000E_BDF] {
        let device = format!("vfio:{bdf}");
        ensure_eq!(sessions_of(&server, &device), 1, "sessions of {device}: {}", server.stdout);
    }
    println!(
        "vfio-user-two-devices: DHCP lease after {dhcp_done:?}, verify done after {verify_done:?}; server: {}",
        server.stdout.trim().replace('\n', " | ")
    );
    Ok(())
}

/// Drivers that die without quiescing (SIGKILL while pings and interrupts flow): the server's
/// cleanup must not take the VM down (QEMU 7.2's e1000e aborts if MSI-X goes off while its
/// throttling timers run; see e1000e-selftest-no-quiesce) and must leave the device usable.
fn client_killed(_ctx: &Ctx) -> Outcome {
    guest::bind_vfio(E1000E_BDF)?;
    let served = Served::start(E1000E_BDF, "killed", None)?;
    let dev = served.device();
    let ping = |count| {
        [
            "net", "--device", &dev, "--irq", "msix", "ping", "10.0.2.2", "-c", count, "--interval", "2",
            "--addr", "10.0.2.15/24",
        ]
    };
    // How long bring-up and one echo take here: the kills land after that, in the traffic.
    let start = std::time::Instant::now();
    as_nobody("/bin/pcibox", &ping("1"))?.ok()?;
    let up = start.elapsed();
    println!("vfio-user-client-killed: bring-up and one ping take {up:?}");
    for i in 0..20u64 {
        let mut child = nobody("/bin/pcibox")
            .args(ping("100000"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning the ping")?;
        // Staggered, so that the kill lands at different points of the traffic.
        std::thread::sleep(up + Duration::from_millis(i * 53 % 600));
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = as_nobody("/bin/pcibox", &["net", "--device", &dev, "--json", "dhcp"])?.ok()?;
    let v = json(&out)?;
    ensure_eq!(v["lease"]["address"].as_str(), Some("10.0.2.15"), "lease after the kills: {v}");
    let server = served.shutdown()?;
    let sessions = session_messages(&server);
    ensure_eq!(sessions.len(), 22, "sessions: {}", server.stdout);
    println!("vfio-user-client-killed: 20 killed clients, then DHCP; server: {}", server.stdout.trim().replace('\n', " | "));
    Ok(())
}

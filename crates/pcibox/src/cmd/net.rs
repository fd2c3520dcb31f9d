//! `pcibox net --device DEVICE ACTION`: the e1000e driver from the command
//! line — `dhcp`, `ping ADDR`, `stats`, `cycles N`, `bench`. Arguments are checked by clap
//! before the device is opened; DEVICE must be an Intel 82574L.

use super::Context;
use crate::device::{DeviceSpec, Kind};
use pcibox_e1000e::net::{self, PingOptions};
use pcibox_e1000e::{bench, Config, E1000e, IrqPreference, Stats};
use serde_json::json;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `pcibox net`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The NIC: vfio:BDF or vfio-user:SOCKET.
    #[arg(long)]
    pub device: DeviceSpec,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Interrupt delivery: auto, msix, intx or poll.
    #[arg(long, default_value = "auto", value_parser = parse_irq, global = true)]
    pub irq: IrqPreference,
    /// Seconds to wait for the link before giving up.
    #[arg(long, default_value = "3", value_parser = seconds, global = true)]
    pub link_wait: Duration,
    /// Microseconds between masking and disabling interrupts at teardown.
    /// Lowering it only serves to show QEMU 7.2's e1000e MSI-X abort.
    #[arg(long, hide = true, global = true)]
    pub quiesce_wait_us: Option<u64>,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `pcibox net` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Get a DHCPv4 lease and print it.
    Dhcp {
        /// Seconds to wait for the lease.
        #[arg(long, default_value = "10", value_parser = seconds)]
        timeout: Duration,
    },
    /// Send ICMP echo requests (after DHCP, unless --addr is given).
    Ping {
        /// Target IPv4 address.
        addr: Ipv4Addr,
        /// Number of requests.
        #[arg(short = 'c', long = "count", default_value_t = 4)]
        count: u32,
        /// Our address as CIDR (skips DHCP), e.g. 10.0.2.15/24.
        #[arg(long = "addr", value_parser = cidr)]
        local: Option<String>,
        /// Default gateway when --addr is given.
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        /// Milliseconds between requests.
        #[arg(long, default_value_t = 1000)]
        interval: u64,
        /// Seconds to wait for the last reply.
        #[arg(long, default_value = "2", value_parser = seconds)]
        timeout: Duration,
    },
    /// Bring the NIC up and print link, address and counters.
    Stats,
    /// Bring the driver up and down N times in this process; report fds.
    /// Each cycle sends an ARP request for 10.0.2.2 and tears down at once,
    /// so interrupts are in flight when it does.
    Cycles {
        /// Number of bring-up/teardown cycles.
        count: u32,
        /// Send nothing: bring up and tear down only.
        #[arg(long)]
        no_traffic: bool,
    },
    /// Transmit/receive batch benchmark over MAC loopback.
    Bench {
        /// Frames per batch size.
        #[arg(long, default_value_t = 2048)]
        frames: u64,
        /// Frame length in bytes.
        #[arg(long, default_value_t = 64)]
        len: usize,
        /// Batch sizes, comma separated.
        #[arg(long, default_value = "1,2,4,8,16,32,64", value_delimiter = ',')]
        batches: Vec<usize>,
    },
}

fn parse_irq(s: &str) -> Result<IrqPreference, String> {
    match s {
        "auto" => Ok(IrqPreference::Auto),
        "msix" => Ok(IrqPreference::Msix),
        "intx" => Ok(IrqPreference::Intx),
        "poll" => Ok(IrqPreference::Poll),
        _ => Err(format!("{s:?}: expected auto, msix, intx or poll")),
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("{s:?}: not a duration in seconds"))
}

/// Checks `--addr` when the arguments are parsed; `run` parses it again for smoltcp.
fn cidr(s: &str) -> Result<String, String> {
    net::parse_cidr(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

fn open(args: &Args, loopback: bool) -> Result<E1000e, super::Error> {
    let dev = args.device.open_as(Kind::E1000e)?;
    let mut cfg = Config {
        irq: args.irq,
        loopback,
        ..Config::default()
    };
    if let Some(us) = args.quiesce_wait_us {
        cfg.quiesce_wait = Duration::from_micros(us);
    }
    E1000e::open(dev, cfg).context(&args.device)
}

fn wait_link(nic: &mut E1000e, args: &Args) -> Result<(), super::Error> {
    nic.wait_link(args.link_wait).context(&args.device)?;
    Ok(())
}

fn interrupts_line(s: &Stats) -> String {
    let counts: Vec<String> = s
        .vector_names
        .iter()
        .zip(&s.vector_counts)
        .map(|(n, c)| format!("{n}={c}"))
        .collect();
    format!("interrupts ({}): {}", s.irq_mode, counts.join(" "))
}

/// Runs `pcibox net`.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    match &args.action {
        Action::Dhcp { timeout } => {
            let mut nic = open(&args, false)?;
            wait_link(&mut nic, &args)?;
            let start = Instant::now();
            let lease = net::dhcp(&mut nic, *timeout)?;
            let ms = start.elapsed().as_millis();
            let stats = nic.stats()?;
            nic.close()?;
            if args.json {
                println!("{}", json!({ "lease": lease, "ms": ms, "stats": stats }));
            } else {
                println!("address {}", lease.cidr());
                if let Some(r) = lease.router {
                    println!("router {r}");
                }
                for d in &lease.dns {
                    println!("dns {d}");
                }
                println!("server {}", lease.server);
                println!("{}", interrupts_line(&stats));
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Ping {
            addr,
            count,
            local,
            gateway,
            interval,
            timeout,
        } => {
            let mut nic = open(&args, false)?;
            wait_link(&mut nic, &args)?;
            let (cidr, router, lease) = match local {
                Some(c) => (net::parse_cidr(c)?, *gateway, None),
                None => {
                    let lease = net::dhcp(&mut nic, Duration::from_secs(10))?;
                    let cidr = net::parse_cidr(&lease.cidr())?;
                    (cidr, lease.router, Some(lease))
                }
            };
            let opts = PingOptions {
                count: *count,
                interval: Duration::from_millis(*interval),
                timeout: *timeout,
                ..PingOptions::default()
            };
            let report = net::ping(&mut nic, cidr, router, *addr, opts)?;
            let stats = nic.stats()?;
            nic.close()?;
            if args.json {
                println!(
                    "{}",
                    json!({ "lease": lease, "ping": report, "stats": stats })
                );
            } else {
                for r in &report.replies {
                    println!(
                        "reply from {addr}: icmp_seq={} time={:.2} ms",
                        r.seq, r.rtt_ms
                    );
                }
                println!(
                    "{} packets transmitted, {} received, from {}",
                    report.sent, report.received, report.local
                );
                println!("{}", interrupts_line(&stats));
            }
            Ok(if report.received > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Action::Stats => {
            let mut nic = open(&args, false)?;
            let stats = nic.stats()?;
            nic.close()?;
            if args.json {
                println!("{}", json!({ "stats": stats }));
            } else {
                let link = if stats.link_up { "up" } else { "down" };
                println!(
                    "{}: mac {} link {link} {} Mb/s",
                    args.device, stats.mac, stats.speed_mbps
                );
                println!("{}", interrupts_line(&stats));
                for (k, v) in &stats.hw {
                    println!("{k} {v}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Cycles { count, no_traffic } => {
            let fds_before = open_fds();
            let start = Instant::now();
            let (mut frames_sent, mut irqs) = (0u64, 0u64);
            for i in 0..*count {
                let mut nic = open(&args, false).context(format!("cycle {i}"))?;
                if !no_traffic {
                    // A frame out (TX write-back interrupt) and, from slirp, an
                    // ARP reply in (RX interrupt) right before the teardown.
                    let arp = net::arp_request(
                        nic.mac().0,
                        Ipv4Addr::new(10, 0, 2, 15),
                        Ipv4Addr::new(10, 0, 2, 2),
                    );
                    frames_sent += nic.transmit_batch(&[&arp])? as u64;
                    nic.wait(Duration::from_millis(2))?;
                    irqs += nic.stats()?.vector_counts.iter().sum::<u64>();
                }
                nic.close().context(format!("cycle {i}"))?;
            }
            let ms = start.elapsed().as_millis();
            let fds_after = open_fds();
            if args.json {
                println!(
                    "{}",
                    json!({
                        "cycles": count,
                        "ms": ms,
                        "fds_before": fds_before,
                        "fds_after": fds_after,
                        "frames_sent": frames_sent,
                        "interrupts": irqs,
                    })
                );
            } else {
                println!(
                    "{count} cycles in {ms} ms, {frames_sent} frames sent, {irqs} interrupts; \
                     open fds before {fds_before}, after {fds_after}"
                );
            }
            Ok(if fds_after == fds_before {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Action::Bench {
            frames,
            len,
            batches,
        } => {
            let mut nic = open(&args, true)?;
            let report = bench::run(&mut nic, batches, *frames, *len)?;
            nic.close()?;
            if args.json {
                println!("{}", json!({ "bench": report }));
            } else {
                println!(
                    "e1000e loopback, {} interrupts, {}-byte frames; baselines: unix-socket round trip {:.2} us, memcpy {:.2} GB/s",
                    report.irq_mode, report.frame_len, report.unix_rtt_us, report.memcpy_gbps
                );
                println!("batch  frames/s  frame cost / unix RTT");
                for p in &report.points {
                    println!(
                        "{:>5}  {:>8.0}  {:>6.2}",
                        p.batch, p.frames_per_sec, p.frame_cost_vs_unix_rtt
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Number of open file descriptors of this process (-1 if unknown).
fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(-1)
}

//! `pcibox`: the broker and command-line front end.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only
//! parses arguments, sets up logging and maps errors to a one-line message
//! and a non-zero exit status.

mod cmd;
mod device;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "pcibox",
    version,
    about = "PCI device drivers in unprivileged driver domains"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List PCI devices, compatible with pciutils' lspci.
    Lspci(cmd::lspci::Args),
    /// Run the XenStore-compatible registry daemon.
    Xenstored(cmd::xenstored::Args),
    /// Bind a device to vfio-pci, remembering its current driver.
    Claim(cmd::claim::Args),
    /// Give a claimed device back to the driver it had before.
    Release(cmd::release::Args),
    /// Drive an NVMe controller from user space: identify, partitions, read/write/verify, bench.
    Nvme(cmd::nvme::Args),
    /// Drive an e1000e NIC: DHCP, ping, statistics, bring-up cycles, benchmark.
    Net(cmd::net::Args),
    /// Export a device over vfio-user (one client at a time).
    ServeDevice(cmd::serve_device::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Warnings only by default; a daemon also says when it is up and why it
    // stops. `PCIBOX_LOG` overrides (e.g. `debug`, `pcibox_xenstore=trace`).
    let default = match cli.command {
        Command::Xenstored(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PCIBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Lspci(args) => cmd::lspci::run(args),
        Command::Xenstored(args) => cmd::xenstored::run(args),
        Command::Claim(args) => cmd::claim::run(args),
        Command::Release(args) => cmd::release::run(args),
        Command::Nvme(args) => cmd::nvme::run(args),
        Command::Net(args) => cmd::net::run(args),
        Command::ServeDevice(args) => cmd::serve_device::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One line, no backtrace: the full cause chain joined by ": ".
            let mut msg = format!("pcibox: {err}");
            let mut source = err.source();
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

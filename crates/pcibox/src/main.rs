//! `pcibox`: the broker and command-line front end.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only
//! parses arguments, sets up logging and maps errors to a one-line message
//! and a non-zero exit status.

mod cmd;
mod confirm;
mod device;
#[cfg(test)]
mod error_chain_tests;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::CompletionArgs),
    /// Print the man page (or write every page into a folder with --dir).
    Man(cmd::completions::ManArgs),
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
        Command::Completions(args) => cmd::completions::completions(args, Cli::command()),
        Command::Man(args) => cmd::completions::man(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One line, no backtrace: the full cause chain joined by ": "
            // (each error names what failed; its cause is its source()).
            eprintln!("pcibox: {}", pcibox_kit::Chain(&*err));
            // Refusing to destroy data unasked is a usage error, as clap's own are.
            if err.downcast_ref::<confirm::NotConfirmed>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every positional argument of every subcommand says what it is in `--help`.
    #[test]
    fn every_positional_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_positionals() {
                if arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "pcibox", &mut missing);
        assert!(missing.is_empty(), "positionals without help: {missing:?}");
    }
}

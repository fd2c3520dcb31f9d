//! `pcibox xenstored`: the XenStore-compatible registry daemon.
//!
//! Clients (xenstore-utils, libxenstore, pyxs) find it through
//! `XENSTORED_PATH=<socket>`. Connections on the main socket are privileged
//! (dom0); each `--domain-socket DOMID=PATH` serves that domain unprivileged.

use pcibox_xenstore::daemon::{Config, Daemon};
use pcibox_xenstore::Quotas;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pcibox xenstored`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The privileged main socket.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Keep the tree here (append-only log + snapshot); without it the tree
    /// lives in memory only.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// An unprivileged socket for one domain (repeatable).
    #[arg(long = "domain-socket", value_name = "DOMID=PATH", value_parser = parse_domain_socket)]
    domain_sockets: Vec<(u16, PathBuf)>,
    /// Override a quota for unprivileged domains (repeatable); names:
    /// nodes, watches, transactions, outstanding, node-size, permissions,
    /// path-max, transaction-nodes, connections.
    #[arg(long = "quota", value_name = "NAME=VALUE")]
    quotas: Vec<String>,
    /// Log bytes after which a snapshot is written.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    compact_after: u64,
    /// Output bytes queued for a client that does not read before it is
    /// disconnected.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_queue: usize,
}

fn parse_domain_socket(s: &str) -> Result<(u16, PathBuf), String> {
    let (d, p) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not DOMID=PATH"))?;
    let domid: u16 = d.parse().map_err(|_| format!("`{d}` is not a domain id"))?;
    if domid == 0 || domid >= pcibox_xenstore::DOMID_FIRST_RESERVED {
        return Err(format!(
            "domain id {domid} cannot have an unprivileged socket"
        ));
    }
    Ok((domid, PathBuf::from(p)))
}

/// Runs the daemon until it fails or is killed.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    let mut quotas = Quotas::default();
    for q in &args.quotas {
        quotas.apply(q)?;
    }
    let cfg = Config {
        socket: args.socket,
        domain_sockets: args.domain_sockets,
        state_dir: args.state_dir,
        quotas,
        compact_after: args.compact_after,
        max_queue: args.max_queue,
    };
    let mut daemon = Daemon::bind(&cfg)?;
    tracing::info!("xenstored listening on {}", cfg.socket.display());
    daemon.run()?;
    Ok(ExitCode::SUCCESS)
}

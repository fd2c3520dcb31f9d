//! `pcibox xenstored`: the XenStore-compatible registry daemon.
//!
//! Clients (xenstore-utils, libxenstore, pyxs) find it through
//! `XENSTORED_PATH=<socket>`. Connections on the main socket are privileged
//! (dom0); each `--domain-socket DOMID=PATH` serves that domain unprivileged.
//!
//! As a service: it logs one line once it listens, writes `--pidfile`,
//! tells systemd it is ready (`READY=1` to `$NOTIFY_SOCKET`, if set: see
//! `dist/pcibox-xenstored.service`), and on SIGTERM or SIGINT stops cleanly,
//! removing its sockets and pidfile.

use pcibox_xenstore::daemon::{Config, Daemon};
use pcibox_xenstore::persist;
use pcibox_xenstore::Quotas;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Arguments of `pcibox xenstored`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The privileged main socket.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["check", "salvage"])]
    socket: Option<PathBuf>,
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
    /// Write the daemon's pid here once it listens (removed when it stops).
    #[arg(long, value_name = "PATH")]
    pidfile: Option<PathBuf>,
    /// Do not serve: describe the state directory's files and damage, and
    /// whether the daemon would start on it (exit status 1 if not).
    #[arg(long, requires = "state_dir", conflicts_with = "salvage")]
    check: bool,
    /// Do not serve: keep every intact change of a damaged state directory
    /// as a new state (the old files move to DIR/salvaged-<time>/), and say
    /// what was lost.
    #[arg(long, requires = "state_dir")]
    salvage: bool,
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

/// Sends `state` to the service manager, if it asked (`NOTIFY_SOCKET`: a
/// path, or `@name` for the abstract namespace), as `sd_notify` does.
fn notify(state: &str) -> Result<(), super::Error> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let err = |e: std::io::Error| format!("NOTIFY_SOCKET {}: {e}", target.to_string_lossy());
    let sock = UnixDatagram::unbound().map_err(err)?;
    let bytes = target.as_encoded_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(err)?;
            sock.send_to_addr(state.as_bytes(), &addr).map_err(err)?;
        }
        None => {
            sock.send_to(state.as_bytes(), Path::new(&target))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Removes the pidfile when the daemon stops, if it still names us.
struct Pidfile(PathBuf);

impl Pidfile {
    fn write(path: PathBuf) -> Result<Pidfile, super::Error> {
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Pidfile(path))
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let ours = format!("{}\n", std::process::id());
        if std::fs::read_to_string(&self.0).is_ok_and(|s| s == ours) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// `--check` or `--salvage`: prints the report.
fn inspect(dir: &Path, salvage: bool) -> Result<ExitCode, super::Error> {
    let report = if salvage {
        persist::salvage::salvage(dir)?
    } else {
        persist::salvage::check(dir)?
    };
    print!("{}", report.text);
    Ok(match report.whole || salvage {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// Runs the daemon until SIGTERM or SIGINT (exit 0) or a failure.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    if let (true, Some(dir)) = (args.check || args.salvage, &args.state_dir) {
        return inspect(dir, args.salvage);
    }
    let socket = args.socket.ok_or("--socket is required")?;
    let mut quotas = Quotas::default();
    for q in &args.quotas {
        quotas.apply(q)?;
    }
    let cfg = Config {
        socket,
        domain_sockets: args.domain_sockets,
        state_dir: args.state_dir,
        quotas,
        compact_after: args.compact_after,
        max_queue: args.max_queue,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let mut daemon = Daemon::bind(&cfg)?;
    let _pidfile = args.pidfile.map(Pidfile::write).transpose()?;
    notify(&format!(
        "READY=1\nMAINPID={}\nSTATUS=listening on {}",
        std::process::id(),
        cfg.socket.display()
    ))?;
    let result = daemon.run_until(&stop);
    let _ = notify("STOPPING=1");
    if result.is_ok() {
        tracing::info!("stopping on a signal");
    }
    // Dropping the daemon flushes the log and removes its sockets.
    drop(daemon);
    result?;
    Ok(ExitCode::SUCCESS)
}

//! `pcibox serve-device --device DEVICE --socket PATH`: export one device
//! over vfio-user to one client at a time (see docs/vfio-user.md).
//!
//! Prints one line per finished client session with its message counts.
//! SIGTERM or SIGINT ends the current session as a disconnect would
//! (interrupts off, DMA dropped, device reset), removes the socket and exits.
//! Region accesses are trapped: a VFIO device's mappings are never handed
//! out (they would carry the whole device with them).

use super::Context;
use crate::device::DeviceSpec;
use pcibox_vfio_user::{Server, ServerOptions, SessionStats};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pcibox serve-device`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device to export, e.g. vfio:0000:00:04.0.
    #[arg(long)]
    pub device: DeviceSpec,
    /// Where to listen (a stale socket file is replaced).
    #[arg(long)]
    pub socket: PathBuf,
    /// Permissions of the socket file (octal), e.g. 666 to let an
    /// unprivileged driver domain connect.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    pub mode: u32,
    /// Serve this many client sessions, then exit (default: forever).
    #[arg(long)]
    pub sessions: Option<u64>,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?}: expected octal permissions like 660"))
}

fn report(stats: &SessionStats) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "session: {stats}");
    let _ = out.flush();
}

/// Serves the device.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    let backend = args.device.open_backend()?;
    let mut server = Server::new(backend, ServerOptions::default())?;
    server.on_session_end(report);
    let stop = server.stop_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot install signal handlers")?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            stop.stop();
        }
    });
    if args.socket.exists() {
        std::fs::remove_file(&args.socket).context(format!(
            "cannot remove stale socket {}",
            args.socket.display()
        ))?;
    }
    let listener = UnixListener::bind(&args.socket)
        .context(format!("cannot bind {}", args.socket.display()))?;
    std::fs::set_permissions(&args.socket, std::fs::Permissions::from_mode(args.mode))
        .context(format!("cannot chmod {}", args.socket.display()))?;
    println!("serving {} on {}", args.device, args.socket.display());
    let _ = std::io::stdout().flush();
    let result = server.run_sessions(&listener, args.sessions);
    let _ = std::fs::remove_file(&args.socket);
    result?;
    Ok(ExitCode::SUCCESS)
}

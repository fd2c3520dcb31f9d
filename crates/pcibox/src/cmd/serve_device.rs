//! `pcibox serve-device --device DEVICE --socket PATH`: export one device
//! over vfio-user to one client at a time (see docs/vfio-user.md).
//!
//! Prints one line per finished client session with its message counts.
//! SIGTERM or SIGINT ends the current session as a disconnect would
//! (interrupts off, DMA dropped, device reset), removes the socket and exits.
//! Region accesses are trapped: a VFIO device's mappings are never handed
//! out (they would carry the whole device with them).
//!
//! The socket path is checked before the device is opened: only a stale socket (one nobody
//! listens on) is replaced; a live one is "already in use", and any other file is left alone.

use super::Context;
use crate::device::DeviceSpec;
use pcibox_vfio_user::{Server, ServerOptions, SessionStats};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `pcibox serve-device`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device to export, e.g. vfio:0000:00:04.0.
    #[arg(long)]
    pub device: DeviceSpec,
    /// Where to listen. A stale socket there (nobody listening) is replaced; a socket in use,
    /// a regular file or a directory is an error.
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
    clear_stale_socket(&args.socket)?;
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

/// Makes `path` free for `bind`: nothing there, or a socket nobody listens on (connecting is
/// refused), which is removed. A socket that accepts a connection is in use; anything else is
/// not ours to remove.
fn clear_stale_socket(path: &Path) -> Result<(), super::Error> {
    let shown = path.display();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{shown}: {e}").into()),
    };
    let ty = meta.file_type();
    if !ty.is_socket() {
        let what = if ty.is_dir() {
            "a directory"
        } else if ty.is_file() {
            "a regular file"
        } else if ty.is_symlink() {
            "a symbolic link"
        } else {
            "not a socket"
        };
        return Err(format!("{shown}: exists and is {what}; not removing it").into());
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(format!("{shown}: already in use (a server is listening on it)").into()),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).context(format!("cannot remove stale socket {shown}"))
        }
        Err(e) => Err(e).context(format!(
            "{shown}: cannot tell whether it is in use, not removing it: connect"
        )),
    }
}

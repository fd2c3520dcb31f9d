//! `pcibox serve-device --device DEVICE --socket PATH [--device D2 --socket P2 …]`: export
//! devices over vfio-user, each to one client at a time (see docs/vfio-user.md). Several
//! devices are served by one process, a thread per session (`ServerSet`).
//!
//! Prints one line per finished client session with its message counts (`session: …`, or
//! `session DEVICE: …` when it serves several). SIGTERM or SIGINT ends every live session as a
//! disconnect would (interrupts off, DMA dropped, device reset), removes the sockets and exits.
//! Region accesses are trapped: a VFIO device's mappings are never handed out (they would
//! carry the whole device with them).
//!
//! The socket paths are checked before any device is opened: only a stale socket (one nobody
//! listens on) is replaced; a live one is "already in use", and any other file is left alone.

use super::Context;
use crate::device::DeviceSpec;
use pcibox_vfio_user::{Server, ServerOptions, ServerSet, SessionStats};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `pcibox serve-device`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device to export, e.g. vfio:0000:00:04.0. Repeat it (each with its --socket, in
    /// order) to serve several devices from one process.
    #[arg(long, required = true)]
    pub device: Vec<DeviceSpec>,
    /// Where to listen for the --device in the same position. A stale socket there (nobody
    /// listening) is replaced; a socket in use, a regular file or a directory is an error.
    #[arg(long, required = true)]
    pub socket: Vec<PathBuf>,
    /// Permissions of the socket file (octal), e.g. 666 to let an
    /// unprivileged driver domain connect.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    pub mode: u32,
    /// Serve this many client sessions (per device), then exit (default: forever).
    #[arg(long)]
    pub sessions: Option<u64>,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?}: expected octal permissions like 660"))
}

fn report(device: Option<&str>, stats: &SessionStats) {
    let mut out = std::io::stdout().lock();
    let _ = match device {
        None => writeln!(out, "session: {stats}"),
        Some(d) => writeln!(out, "session {d}: {stats}"),
    };
    let _ = out.flush();
}

/// Serves the devices.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    if args.device.len() != args.socket.len() {
        return Err(format!(
            "each --device needs its --socket: {} devices, {} sockets",
            args.device.len(),
            args.socket.len()
        )
        .into());
    }
    for (i, s) in args.socket.iter().enumerate() {
        if args.socket[..i].contains(s) {
            return Err(format!("{}: given twice as --socket", s.display()).into());
        }
        clear_stale_socket(s)?;
    }
    let several = args.device.len() > 1;
    let mut set = ServerSet::new()?;
    let mut servers = Vec::new();
    for device in &args.device {
        let mut server = Server::new(device.open_backend()?, ServerOptions::default())?;
        let name = several.then(|| device.to_string());
        server.on_session_end(move |stats| report(name.as_deref(), stats));
        servers.push(server);
    }
    let stop = set.stop_handle();
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
    let mut bound = Vec::new();
    let listening = servers
        .into_iter()
        .zip(&args.socket)
        .try_for_each(|(server, path)| {
            let listener =
                UnixListener::bind(path).context(format!("cannot bind {}", path.display()))?;
            bound.push(path);
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(args.mode))
                .context(format!("cannot chmod {}", path.display()))?;
            set.add(server, listener);
            Ok::<_, super::Error>(())
        });
    let result = match listening {
        Ok(()) => {
            for (device, path) in args.device.iter().zip(&args.socket) {
                println!("serving {device} on {}", path.display());
            }
            let _ = std::io::stdout().flush();
            set.set_max_sessions(args.sessions);
            set.run().map_err(super::Error::from)
        }
        Err(e) => Err(e),
    };
    for path in bound {
        let _ = std::fs::remove_file(path);
    }
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

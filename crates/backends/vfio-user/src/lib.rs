//! vfio-user for pcibox: the split channel of Xen's pcifront/pciback,
//! as today's vfio-user protocol (`vfio-user-wire`).
//!
//! - [`Server`] exports any kit [`pcibox_kit::Device`] on a Unix socket, to
//!   one client at a time, hardened against hostile clients (every bad
//!   request gets an error reply or a clean close; the stream never loses
//!   step; on disconnect interrupts go off, DMA windows are dropped and the
//!   device is reset). Each client is a [`Session`] that reaches the device
//!   through a [`SessionDevice`] (the seam a firewall wraps) and tears down
//!   on the device itself. [`ServerSet`] serves several devices at once,
//!   a thread per session, one stop for all.
//! - [`Client`] is a kit [`pcibox_kit::Backend`]: a driver in another,
//!   unprivileged process drives the device through it unchanged.
//!
//! Design and threat model: `docs/vfio-user.md`.

mod client;
mod server;
mod sock;

pub use client::{Client, ClientOptions, ClientStats};
pub use server::{
    DirectDevice, Response, Server, ServerDma, ServerOptions, ServerSet, Session, SessionDevice,
    SessionStats, StopHandle,
};
pub use sock::{send_message, MessageReader, Received, RecvError};

use vfio_user_wire::Command;

/// Errors of the server and the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} failed")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("malformed message")]
    Wire(#[from] vfio_user_wire::Error),
    #[error("cannot receive a message")]
    Recv(#[source] RecvError),
    #[error("peer refused {command:?}: {}", std::io::Error::from_raw_os_error(*errno as i32))]
    Remote { command: Command, errno: u32 },
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("DMA at {iova:#x}+{len:#x} is outside the client's windows or not permitted")]
    Dma { iova: u64, len: u64 },
    #[error("no server-to-client channel (no twin socket negotiated)")]
    NoChannel,
    #[error("the connection is closed")]
    Closed,
    #[error("the device is serving another client")]
    Busy,
    #[error(transparent)]
    Kit(#[from] pcibox_kit::Error),
}

impl Error {
    pub(crate) fn io(op: &'static str, source: impl Into<std::io::Error>) -> Error {
        Error::Io {
            op,
            source: source.into(),
        }
    }
}

/// Fuzzing support: the server's whole message handling over a real socket.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{Server, ServerOptions, SessionStats};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// Serves `device` to a client that sends `bytes` (a stream of
    /// messages, however malformed) and hangs up; returns the session's
    /// counts. The replies are drained by a thread. Must never panic.
    pub fn serve_bytes(device: Box<dyn pcibox_kit::Backend>, bytes: &[u8]) -> SessionStats {
        let Ok((client, server_end)) = UnixStream::pair() else {
            return SessionStats::default();
        };
        let opts = ServerOptions {
            share_mappings: false,
            io_timeout: Duration::from_millis(200),
        };
        let Ok(mut server) = Server::new(device, opts) else {
            return SessionStats::default();
        };
        let Ok(mut reader) = client.try_clone() else {
            return SessionStats::default();
        };
        let drain = std::thread::spawn(move || {
            let mut sink = [0u8; 4096];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        });
        let input = bytes.to_vec();
        let writer = std::thread::spawn(move || {
            let mut client = client;
            let _ = client.write_all(&input);
            let _ = client.shutdown(std::net::Shutdown::Write);
            client
        });
        let stats = server.serve_connection(server_end);
        // The server closed its end: the drain thread sees end of stream.
        let _ = writer.join();
        let _ = drain.join();
        stats
    }
}

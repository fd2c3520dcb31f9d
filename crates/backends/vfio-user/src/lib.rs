//! vfio-user for pcibox: the split channel of seed 003 (pcifront/pciback),
//! as today's vfio-user protocol (`vfio-user-wire`).
//!
//! - [`Server`] exports any kit [`pcibox_kit::Device`] on a Unix socket, to
//!   one client at a time, event-driven, hardened against hostile clients
//!   (every bad request gets an error reply or a clean close; the stream
//!   never loses step; on disconnect interrupts go off, DMA windows are
//!   dropped and the device is reset).
//! - [`Client`] is a kit [`pcibox_kit::Backend`]: a driver in another,
//!   unprivileged process drives the device through it unchanged.
//!
//! Design and threat model: `docs/vfio-user.md`.

mod client;
mod server;
mod sock;

pub use client::{Client, ClientOptions, ClientStats};
pub use server::{Server, ServerDma, ServerOptions, SessionStats, StopHandle};
pub use sock::{recv_message, send_message, Received, RecvError};

use vfio_user_wire::Command;

/// Errors of the server and the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("malformed message: {0}")]
    Wire(#[from] vfio_user_wire::Error),
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

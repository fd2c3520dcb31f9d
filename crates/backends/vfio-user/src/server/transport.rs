//! The transport of one session on its own thread: read a whole message
//! (bounded, read ahead), hand it to the [`Session`], send what it answers.
//!
//! The thread blocks in `recvmsg` (no `poll` per message; the stop shuts
//! the socket down to wake it). The socket has no read timeout, so waiting
//! for the next message arms no timer; the reader enforces `io_timeout`
//! inside a message, the socket's write timeout on replies.

use super::session::{Response, Session};
use super::SessionStats;
use crate::sock::{send_message, MessageReader, RecvError};
use pcibox_kit::Chain;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use vfio_user_wire::{error_reply, Command, Header, Kind};

/// Serves `session`'s client on `stream` until it leaves, it is refused or
/// the stop is pulled. Returns the session's counts; the caller ends the
/// session (its teardown).
pub(super) fn serve(session: &mut Session, stream: UnixStream) -> SessionStats {
    let mut reader = MessageReader::with_stall_timeout(session.opts.io_timeout);
    let mut stats = SessionStats::default();
    let timeout = Some(session.opts.io_timeout);
    if stream.set_read_timeout(None).is_err() || stream.set_write_timeout(timeout).is_err() {
        stats.end = "cannot set socket timeouts".into();
        return stats;
    }
    // Registered so that stopping can wake the blocking read.
    let stop = session.stop.clone();
    let _registered = stop.register(&stream);
    stats.end = loop {
        // Blocking read of the next message, one `recvmsg` for a small
        // message and those queued behind it.
        if stop.stopped() {
            break "server stopped".into();
        }
        let msg = match reader.next(stream.as_fd()) {
            Ok(msg) => msg,
            Err(RecvError::Closed) if stop.stopped() => break "server stopped".into(),
            Err(RecvError::Closed) => break "client closed".into(),
            Err(RecvError::BadHeader { error, raw }) => {
                // The size cannot be trusted: answer and close.
                stats.messages += 1;
                stats.errors += 1;
                let h = Header::new_unchecked(&raw[..]);
                let reply = error_reply(h.msg_id(), Command::from_u16(h.command()), error.errno());
                let _ = send_message(stream.as_fd(), &reply, &[]);
                break format!("bad header: {error}");
            }
            Err(e) => break Chain(&e).to_string(),
        };
        stats.messages += 1;
        let cmd = msg.header.command.to_u16() as usize;
        stats.by_command[if cmd < stats.by_command.len() { cmd } else { 0 }] += 1;
        let no_reply = matches!(msg.header.kind, Kind::Command { no_reply: true });
        let (bytes, fds, close) = match session.handle(msg) {
            Response::Reply(bytes, fds) => (bytes, fds, false),
            Response::Error(id, cmd, e) => {
                stats.errors += 1;
                (error_reply(id, cmd, e).to_vec(), Vec::new(), false)
            }
            Response::Close(id, cmd, e) => {
                stats.errors += 1;
                (error_reply(id, cmd, e).to_vec(), Vec::new(), true)
            }
        };
        if !no_reply || close {
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            if let Err(e) = send_message(stream.as_fd(), &bytes, &borrowed) {
                break format!("send: {e}");
            }
        }
        if close {
            break "refused the client".into();
        }
    };
    stats
}

//! Whole messages over a Unix stream socket, with file descriptors riding
//! SCM_RIGHTS.
//!
//! Reading is two-step: the 16-byte header first (its `msg_size` is checked
//! against the limit before anything is allocated), then exactly the payload.
//! A header whose size cannot be trusted ends the connection: there is no
//! way to find the next message boundary. Everything else keeps the stream
//! in step because the whole declared message is consumed.

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use vfio_user_wire::{Header, HeaderRepr, HEADER_LEN, MAX_MESSAGE_SIZE, MAX_MSG_FDS};

/// One received message.
#[derive(Debug)]
pub struct Received {
    pub header: HeaderRepr,
    pub payload: Vec<u8>,
    pub fds: Vec<OwnedFd>,
    /// The sender passed more descriptors than we accept (the kernel closed
    /// the excess): the message must be refused.
    pub fds_truncated: bool,
}

/// Why no message could be read.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// End of stream at a message boundary: the peer hung up.
    #[error("peer closed the connection")]
    Closed,
    /// The read timed out before the first byte of a message: the peer is
    /// just quiet (the caller may keep waiting).
    #[error("no message within the read timeout")]
    Idle,
    /// End of stream inside a message.
    #[error("peer closed the connection in the middle of a message")]
    Truncated,
    /// The header cannot be trusted (bad size or flags): the stream cannot be
    /// resynchronised. The raw header is kept for an error reply.
    #[error("bad header: {error}")]
    BadHeader {
        error: vfio_user_wire::Error,
        raw: [u8; HEADER_LEN],
    },
    #[error("socket: {0}")]
    Io(#[from] io::Error),
}

/// One `recvmsg` into `buf` (retried on EINTR), collecting descriptors into
/// `fds` and noting a truncated control message. Returns the bytes read.
fn recv_once(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    truncated: &mut bool,
) -> Result<usize, rustix::io::Errno> {
    loop {
        let mut space =
            [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_MSG_FDS as usize))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(buf)];
        let r = match recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(r) => r,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        if r.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            *truncated = true;
        }
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        return Ok(r.bytes);
    }
}

/// Reads bytes into `buf` until full, collecting descriptors. Returns the
/// number of bytes read (less than `buf.len()` only at end of stream).
fn read_full(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    truncated: &mut bool,
) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = match recv_once(sock, &mut buf[got..], fds, truncated) {
            Ok(n) => n,
            // A timeout after part of the data: the peer stalled mid-message.
            Err(e) if got > 0 => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("stalled in the middle of a message ({e})"),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        if fds.len() > MAX_MSG_FDS as usize {
            *truncated = true;
            fds.truncate(MAX_MSG_FDS as usize);
        }
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Reads one whole message (blocking; the socket's timeout applies).
pub fn recv_message(sock: BorrowedFd<'_>) -> Result<Received, RecvError> {
    let mut raw = [0u8; HEADER_LEN];
    let mut fds = Vec::new();
    let mut fds_truncated = false;
    let got = match read_full(sock, &mut raw, &mut fds, &mut fds_truncated) {
        Ok(got) => got,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && fds.is_empty() => {
            return Err(RecvError::Idle)
        }
        Err(e) => return Err(e.into()),
    };
    if got == 0 {
        return Err(RecvError::Closed);
    }
    if got < HEADER_LEN {
        return Err(RecvError::Truncated);
    }
    let header = HeaderRepr::parse(&Header::new_unchecked(&raw[..]), MAX_MESSAGE_SIZE)
        .map_err(|error| RecvError::BadHeader { error, raw })?;
    let mut payload = vec![0u8; header.payload_len as usize];
    let got = read_full(sock, &mut payload, &mut fds, &mut fds_truncated)?;
    if got < payload.len() {
        return Err(RecvError::Truncated);
    }
    Ok(Received {
        header,
        payload,
        fds,
        fds_truncated,
    })
}

/// Sends one whole message, `fds` riding with its first byte.
pub fn send_message(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut sent = 0;
    let mut first = true;
    while sent < bytes.len() {
        let mut space =
            vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if first && !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("too many descriptors for one message"));
        }
        let iov = [IoSlice::new(&bytes[sent..])];
        match sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                sent += n;
                first = false;
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What `/proc/self/fd/N` says a descriptor is (`/memfd:…`,
/// `anon_inode:[eventfd]`, …), if /proc is available.
pub fn fd_kind(fd: impl AsFd) -> Option<String> {
    let path = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd())
    );
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Reads a reply expected to be `expect` bytes long (header included) in
/// one system call when it is, else in as many as needed. Only for a peer
/// that sends nothing but the reply to our one outstanding request (a
/// vfio-user server with a twin socket): reading `expect` bytes must never
/// take bytes of a following message, which is checked.
pub fn recv_reply(sock: BorrowedFd<'_>, expect: usize) -> Result<Received, RecvError> {
    let mut buf = vec![0u8; expect.max(HEADER_LEN)];
    let mut fds = Vec::new();
    let mut fds_truncated = false;
    let mut got = 0;
    while got < HEADER_LEN {
        let n = recv_once(sock, &mut buf[got..], &mut fds, &mut fds_truncated)
            .map_err(io::Error::from)?;
        if fds.len() > MAX_MSG_FDS as usize {
            fds_truncated = true;
        }
        if n == 0 {
            return Err(if got == 0 {
                RecvError::Closed
            } else {
                RecvError::Truncated
            });
        }
        got += n;
    }
    let mut raw = [0u8; HEADER_LEN];
    raw.copy_from_slice(&buf[..HEADER_LEN]);
    let header = HeaderRepr::parse(&Header::new_unchecked(&raw[..]), MAX_MESSAGE_SIZE)
        .map_err(|error| RecvError::BadHeader { error, raw })?;
    let total = HEADER_LEN + header.payload_len as usize;
    if got > total {
        return Err(RecvError::Io(io::Error::other(
            "peer sent more than one message",
        )));
    }
    buf.resize(total, 0);
    if got < total && read_full(sock, &mut buf[got..], &mut fds, &mut fds_truncated)? < total - got
    {
        return Err(RecvError::Truncated);
    }
    buf.drain(..HEADER_LEN);
    Ok(Received {
        header,
        payload: buf,
        fds,
        fds_truncated,
    })
}

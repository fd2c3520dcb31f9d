//! Whole messages over a Unix stream socket, with file descriptors riding
//! SCM_RIGHTS.
//!
//! Reading goes through a [`MessageReader`] per socket, which reads ahead so
//! that a small message costs one `recvmsg`. A header's `msg_size` is checked
//! against the limit before the buffer grows for it. A header whose size
//! cannot be trusted ends the connection: there is no way to find the next
//! message boundary. Everything else keeps the stream in step because the
//! whole declared message is consumed.

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};
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
    #[error("bad header")]
    BadHeader {
        #[source]
        error: vfio_user_wire::Error,
        raw: [u8; HEADER_LEN],
    },
    #[error("socket read failed")]
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

/// How much a read asks for at least: enough for any small message and a
/// few that follow it.
const READ_CHUNK: usize = 16 * 1024;

/// Descriptors from one `recvmsg`, with where that read ended.
#[derive(Debug)]
struct FdBatch {
    /// Stream offset of the last byte the read returned.
    last: u64,
    fds: Vec<OwnedFd>,
    truncated: bool,
}

/// Reads whole messages from one stream, reading ahead: a message and the
/// start of the ones after it come in one `recvmsg`, so a small message
/// costs one system call (the kernel hands over everything queued).
///
/// Descriptors are tied to bytes like this: a Unix stream read ends right
/// after the first segment it consumes that carries descriptors, so the
/// descriptors of one read belong to the *last* byte it returned. A sender
/// attaches them to the first `sendmsg` of a message, so they go to the
/// message that holds that byte. A sender that scatters descriptors over a
/// message only gets that message refused (too many, or in the wrong
/// command); a sender cannot move them onto an earlier message.
///
/// One reader per socket, kept for the socket's life: bytes read ahead live
/// here.
#[derive(Debug)]
pub struct MessageReader {
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Descriptors not yet handed out, in stream order.
    batches: VecDeque<FdBatch>,
    /// Descriptors held in `batches`.
    pending_fds: usize,
    /// How long the rest of a started message may take (see
    /// [`MessageReader::with_stall_timeout`]).
    stall_timeout: Option<Duration>,
}

impl Default for MessageReader {
    fn default() -> Self {
        MessageReader::new()
    }
}

impl MessageReader {
    pub fn new() -> MessageReader {
        MessageReader {
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            base: 0,
            batches: VecDeque::new(),
            pending_fds: 0,
            stall_timeout: None,
        }
    }

    /// A reader that gives up on a peer which stops sending inside a
    /// message for `timeout`, with the socket itself left without a read
    /// timeout: waiting for a next message then arms no timer, and only a
    /// message split over several reads costs a `poll`.
    pub fn with_stall_timeout(timeout: Duration) -> MessageReader {
        MessageReader {
            stall_timeout: Some(timeout),
            ..MessageReader::new()
        }
    }

    /// The next whole message (blocking; the socket's timeout applies).
    ///
    /// After [`RecvError::BadHeader`] the stream cannot be followed any
    /// further: the caller must drop the connection.
    pub fn next(&mut self, sock: BorrowedFd<'_>) -> Result<Received, RecvError> {
        loop {
            let have = self.end - self.start;
            let mut want = HEADER_LEN;
            if have >= HEADER_LEN {
                let mut raw = [0u8; HEADER_LEN];
                raw.copy_from_slice(&self.buf[self.start..self.start + HEADER_LEN]);
                let header = HeaderRepr::parse(&Header::new_unchecked(&raw[..]), MAX_MESSAGE_SIZE)
                    .map_err(|error| RecvError::BadHeader { error, raw })?;
                want = HEADER_LEN + header.payload_len as usize;
                if have >= want {
                    return Ok(self.take(header, want));
                }
            }
            self.make_room(want);
            self.fill(sock)?;
        }
    }

    /// Hands out the `len`-byte message at `start`, with the descriptors
    /// whose read ended inside it.
    fn take(&mut self, header: HeaderRepr, len: usize) -> Received {
        let from = self.start + HEADER_LEN;
        let payload = self.buf[from..self.start + len].to_vec();
        let end = self.base + (self.start + len) as u64;
        let mut fds = Vec::new();
        let mut fds_truncated = false;
        while let Some(batch) = self.batches.front() {
            if batch.last >= end {
                break;
            }
            let Some(batch) = self.batches.pop_front() else {
                break;
            };
            self.pending_fds -= batch.fds.len();
            fds_truncated |= batch.truncated;
            fds.extend(batch.fds);
        }
        if fds.len() > MAX_MSG_FDS as usize {
            fds_truncated = true;
            fds.truncate(MAX_MSG_FDS as usize);
        }
        self.start += len;
        if self.start == self.end {
            self.base += self.end as u64;
            self.start = 0;
            self.end = 0;
            if self.buf.len() > READ_CHUNK {
                // A large message has passed: give its room back.
                self.buf = vec![0; READ_CHUNK];
            }
        }
        Received {
            header,
            payload,
            fds,
            fds_truncated,
        }
    }

    /// Ensures `buf[start..]` can hold `want` bytes and that there is room
    /// to read into.
    fn make_room(&mut self, want: usize) {
        if self.buf.len() - self.start < want.max(READ_CHUNK) && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < want {
            // `want` is bounded by MAX_MESSAGE_SIZE (checked header).
            self.buf.resize(want, 0);
        }
    }

    /// One read into the free part of the buffer.
    fn fill(&mut self, sock: BorrowedFd<'_>) -> Result<(), RecvError> {
        if let Some(timeout) = self.stall_timeout.filter(|_| self.end > self.start) {
            if !readable_within(sock, timeout)? {
                return Err(stalled());
            }
        }
        let mut fds = Vec::new();
        let mut truncated = false;
        let end = self.end;
        let n = match recv_once(sock, &mut self.buf[end..], &mut fds, &mut truncated) {
            Ok(n) => n,
            // The read timeout, after part of a message: the peer stalled.
            Err(rustix::io::Errno::AGAIN) if self.end > self.start => return Err(stalled()),
            Err(rustix::io::Errno::AGAIN) => return Err(RecvError::Idle),
            Err(e) => return Err(RecvError::Io(e.into())),
        };
        if n == 0 {
            return Err(if self.end > self.start {
                RecvError::Truncated
            } else {
                RecvError::Closed
            });
        }
        self.end += n;
        if !fds.is_empty() || truncated {
            // Bound what a sender can make us hold: honest messages carry
            // at most MAX_MSG_FDS, and at most two messages have pending
            // descriptors (the one being read and the one a read ended in).
            let room = (2 * MAX_MSG_FDS as usize).saturating_sub(self.pending_fds);
            if fds.len() > room {
                fds.truncate(room);
                truncated = true;
            }
            self.pending_fds += fds.len();
            self.batches.push_back(FdBatch {
                last: self.base + self.end as u64 - 1,
                fds,
                truncated,
            });
        }
        Ok(())
    }
}

fn stalled() -> RecvError {
    RecvError::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "stalled in the middle of a message",
    ))
}

/// Waits up to `timeout` for `sock` to be readable (or hung up).
fn readable_within(sock: BorrowedFd<'_>, timeout: Duration) -> Result<bool, RecvError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left = Timespec::try_from(left).map_err(|e| RecvError::Io(io::Error::other(e)))?;
        let mut fds = [PollFd::new(&sock, PollFlags::IN)];
        match poll(&mut fds, Some(&left)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(RecvError::Io(e.into())),
        }
    }
}

/// Sends one whole message, `fds` riding with its first byte.
pub fn send_message(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut sent = if fds.is_empty() {
        0
    } else {
        send_with_fds(sock, bytes, fds)?
    };
    // The rest (or all, without descriptors): plain `send`, no message
    // header to copy in.
    while sent < bytes.len() {
        match rustix::net::send(sock, &bytes[sent..], SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The first `sendmsg` of a message, carrying `fds`. Returns the bytes sent.
fn send_with_fds(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    // Control space on the stack for the usual counts; a (test) peer may
    // send more.
    let mut small = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_MSG_FDS as usize))];
    let mut large = Vec::new();
    let space: &mut [MaybeUninit<u8>] = if fds.len() <= MAX_MSG_FDS as usize {
        &mut small
    } else {
        large.resize(
            rustix::cmsg_space!(ScmRights(fds.len())),
            MaybeUninit::uninit(),
        );
        &mut large
    };
    let mut control = SendAncillaryBuffer::new(space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    let iov = [IoSlice::new(bytes)];
    loop {
        match sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
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

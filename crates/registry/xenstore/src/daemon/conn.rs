//! One client connection: its input buffer and its queue of outgoing
//! messages, written as the socket accepts them and as what they reveal
//! becomes durable.

use crate::store::Message;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use xenstore_wire::{HEADER_LEN, PAYLOAD_MAX};

/// A queued message.
#[derive(Debug)]
pub(super) struct Queued {
    pub msg: Message,
    /// A reply (counts as the client's outstanding request until written).
    pub reply: bool,
    /// The guest request this message keeps outstanding (see
    /// [`super::outstanding`]).
    pub token: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Client {
    pub stream: UnixStream,
    pub domid: u16,
    pub privileged: bool,
    pub inbuf: Vec<u8>,
    outq: VecDeque<Queued>,
    /// Bytes of the front message already written.
    out_off: usize,
    /// Bytes queued.
    out_bytes: usize,
    /// Bytes queued that guests' requests caused (watch events for a
    /// privileged client): bounded by the guests' outstanding quota instead.
    guest_bytes: usize,
    /// Replies not yet written.
    pub pending: u32,
}

impl Client {
    pub fn new(stream: UnixStream, domid: u16, privileged: bool) -> Client {
        Client {
            stream,
            domid,
            privileged,
            inbuf: Vec::new(),
            outq: VecDeque::new(),
            out_off: 0,
            out_bytes: 0,
            guest_bytes: 0,
            pending: 0,
        }
    }

    /// Reads what is available; `false` if the peer is gone.
    pub fn read(&mut self) -> bool {
        // Never buffer more than one whole message beyond what is handled.
        let cap = 2 * (HEADER_LEN + PAYLOAD_MAX);
        let mut buf = [0u8; 8192];
        while self.inbuf.len() < cap {
            let want = (cap - self.inbuf.len()).min(buf.len());
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => return false,
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    pub fn push(&mut self, q: Queued) {
        self.out_bytes += q.msg.bytes.len();
        if self.counts_as_guest(&q) {
            self.guest_bytes += q.msg.bytes.len();
        }
        if q.reply {
            self.pending += 1;
        }
        self.outq.push_back(q);
    }

    fn counts_as_guest(&self, q: &Queued) -> bool {
        self.privileged && q.token.is_some()
    }

    /// Queued bytes this client is answerable for: all of them for a
    /// guest; for a privileged client, those not caused by guests.
    pub fn own_bytes(&self) -> usize {
        self.out_bytes.saturating_sub(self.guest_bytes)
    }

    /// Whether the front message may be written.
    pub fn ready(&self, durable: u64) -> bool {
        self.outq.front().is_some_and(|q| q.msg.needs <= durable)
    }

    /// Writes what may go out (what it reveals is durable), calling `done`
    /// with the token of each message written; `false` if the peer is gone.
    pub fn flush(&mut self, durable: u64, mut done: impl FnMut(u64)) -> bool {
        while let Some(q) = self.outq.front() {
            if q.msg.needs > durable {
                return true;
            }
            match self.stream.write(&q.msg.bytes[self.out_off..]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out_off += n;
                    self.out_bytes -= n;
                    if self.out_off == q.msg.bytes.len() {
                        self.out_off = 0;
                        if self.counts_as_guest(q) {
                            self.guest_bytes -= q.msg.bytes.len();
                        }
                        if q.reply {
                            self.pending -= 1;
                        }
                        if let Some(t) = q.token {
                            done(t);
                        }
                        self.outq.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// The tokens of the messages still queued (the client is going away).
    pub fn into_tokens(self) -> impl Iterator<Item = u64> {
        self.outq.into_iter().filter_map(|q| q.token)
    }
}

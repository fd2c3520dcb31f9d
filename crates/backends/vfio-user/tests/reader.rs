//! The read-ahead message reader: messages come out whole and in order
//! however the stream is cut, and descriptors stay with the message they
//! were sent with even when several messages arrive in one read.
#![allow(clippy::unwrap_used)]

use pcibox_vfio_user::{send_message, MessageReader, RecvError};
use proptest::prelude::*;
use rustix::event::{eventfd, EventfdFlags};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use vfio_user_wire::{Command, HeaderRepr, Kind, HEADER_LEN};

/// A command message with `payload_len` bytes of a pattern seeded by `id`.
fn message(id: u16, payload_len: usize) -> Vec<u8> {
    let header = HeaderRepr {
        msg_id: id,
        command: Command::RegionWrite,
        payload_len: payload_len as u32,
        kind: Kind::Command { no_reply: true },
    };
    let mut m = header.to_bytes().to_vec();
    m.extend((0..payload_len).map(|i| (i as u8).wrapping_add(id as u8)));
    m
}

fn efd() -> OwnedFd {
    eventfd(0, EventfdFlags::CLOEXEC).unwrap()
}

fn quick_timeout(s: &UnixStream) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
}

#[test]
fn several_messages_in_one_read_come_out_one_by_one() {
    let (mut a, b) = UnixStream::pair().unwrap();
    quick_timeout(&b);
    let mut all = Vec::new();
    for id in 0..50 {
        all.extend(message(id, usize::from(id) * 3));
    }
    a.write_all(&all).unwrap();
    let mut r = MessageReader::new();
    for id in 0..50 {
        let m = r.next(b.as_fd()).unwrap();
        assert_eq!(m.header.msg_id, id);
        assert_eq!(m.payload, message(id, usize::from(id) * 3)[HEADER_LEN..]);
        assert!(m.fds.is_empty() && !m.fds_truncated);
    }
    drop(a);
    assert!(matches!(r.next(b.as_fd()), Err(RecvError::Closed)));
}

#[test]
fn descriptors_stay_with_their_message_when_read_ahead() {
    let (a, b) = UnixStream::pair().unwrap();
    quick_timeout(&b);
    let (e1, e2, e3) = (efd(), efd(), efd());
    // All queued before the first read: a reader that reads ahead sees them
    // in as few reads as the kernel allows.
    send_message(a.as_fd(), &message(1, 40), &[]).unwrap();
    send_message(a.as_fd(), &message(2, 8), &[e1.as_fd()]).unwrap();
    send_message(a.as_fd(), &message(3, 0), &[]).unwrap();
    send_message(a.as_fd(), &message(4, 24), &[e2.as_fd(), e3.as_fd()]).unwrap();
    send_message(a.as_fd(), &message(5, 24), &[e1.as_fd()]).unwrap();
    send_message(a.as_fd(), &message(6, 4), &[]).unwrap();
    let mut r = MessageReader::new();
    let counts: Vec<(u16, usize)> = (0..6)
        .map(|_| {
            let m = r.next(b.as_fd()).unwrap();
            assert!(!m.fds_truncated);
            (m.header.msg_id, m.fds.len())
        })
        .collect();
    assert_eq!(counts, [(1, 0), (2, 1), (3, 0), (4, 2), (5, 1), (6, 0)]);
}

#[test]
fn descriptors_sent_inside_a_message_never_move_to_an_earlier_one() {
    let (mut a, b) = UnixStream::pair().unwrap();
    quick_timeout(&b);
    let e = efd();
    let second = message(2, 64);
    // Message 1 whole, then message 2 in two writes, the descriptor riding
    // on its second half (not how an honest peer sends).
    a.write_all(&message(1, 16)).unwrap();
    a.write_all(&second[..30]).unwrap();
    send_message(a.as_fd(), &second[30..], &[e.as_fd()]).unwrap();
    let mut r = MessageReader::new();
    let m1 = r.next(b.as_fd()).unwrap();
    let m2 = r.next(b.as_fd()).unwrap();
    assert_eq!((m1.header.msg_id, m1.fds.len()), (1, 0));
    assert_eq!((m2.header.msg_id, m2.fds.len()), (2, 1));
}

#[test]
fn a_message_larger_than_the_read_buffer_then_small_ones() {
    let (mut a, b) = UnixStream::pair().unwrap();
    quick_timeout(&b);
    let big = message(7, 300 * 1024);
    let small = message(8, 5);
    let writer = std::thread::spawn(move || {
        a.write_all(&big).unwrap();
        a.write_all(&small).unwrap();
    });
    let mut r = MessageReader::new();
    let m = r.next(b.as_fd()).unwrap();
    assert_eq!(m.payload, message(7, 300 * 1024)[HEADER_LEN..]);
    let m = r.next(b.as_fd()).unwrap();
    assert_eq!(m.payload, message(8, 5)[HEADER_LEN..]);
    writer.join().unwrap();
}

#[test]
fn bad_header_end_of_stream_and_stalls_are_told_apart() {
    // A header with a size below 16 cannot be followed.
    let (mut a, b) = UnixStream::pair().unwrap();
    quick_timeout(&b);
    let mut m = message(1, 0);
    m[4..8].copy_from_slice(&3u32.to_le_bytes());
    a.write_all(&m).unwrap();
    assert!(matches!(
        MessageReader::new().next(b.as_fd()),
        Err(RecvError::BadHeader { .. })
    ));

    // End of stream inside a message.
    let (mut a, b) = UnixStream::pair().unwrap();
    quick_timeout(&b);
    a.write_all(&message(1, 10)[..20]).unwrap();
    drop(a);
    assert!(matches!(
        MessageReader::new().next(b.as_fd()),
        Err(RecvError::Truncated)
    ));

    // Quiet at a message boundary (socket read timeout): idle, not an error.
    let (a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    assert!(matches!(
        MessageReader::new().next(b.as_fd()),
        Err(RecvError::Idle)
    ));

    // Stalled inside a message, with no socket timeout: the reader's own
    // stall timeout ends it.
    let (mut a2, b2) = UnixStream::pair().unwrap();
    a2.write_all(&message(1, 10)[..20]).unwrap();
    let mut r = MessageReader::with_stall_timeout(Duration::from_millis(50));
    match r.next(b2.as_fd()) {
        Err(RecvError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("expected a stall, got {other:?}"),
    }
    drop(a);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of messages, cut into any writes, reads back the same.
    #[test]
    fn any_cut_reads_back_the_same(
        lens in proptest::collection::vec(0usize..40_000, 1..12),
        cuts in proptest::collection::vec(1usize..20_000, 1..40),
    ) {
        let (mut a, b) = UnixStream::pair().unwrap();
        quick_timeout(&b);
        let mut stream = Vec::new();
        for (id, len) in lens.iter().enumerate() {
            stream.extend(message(id as u16, *len));
        }
        let writer = std::thread::spawn(move || {
            let mut at = 0;
            let mut i = 0;
            while at < stream.len() {
                let n = cuts[i % cuts.len()].min(stream.len() - at);
                a.write_all(&stream[at..at + n]).unwrap();
                at += n;
                i += 1;
            }
        });
        let mut r = MessageReader::new();
        for (id, len) in lens.iter().enumerate() {
            let m = r.next(b.as_fd()).unwrap();
            prop_assert_eq!(m.header.msg_id, id as u16);
            prop_assert_eq!(&m.payload[..], &message(id as u16, *len)[HEADER_LEN..]);
        }
        writer.join().unwrap();
        prop_assert!(matches!(r.next(b.as_fd()), Err(RecvError::Closed)));
    }
}

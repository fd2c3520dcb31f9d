//! Hostile clients against `pcibox xenstored`: malformed and oversized
//! messages, floods past the quotas, clients that never read. Each gets an
//! error or a clean disconnect; the daemon and everyone else carry on.
#![allow(clippy::unwrap_used)]

mod xs;

use pcibox_xenstore::client::Client;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;
use xs::{call, errname, recv, send, try_send, Scratch, Xenstored};

const READ: u32 = 2;
const WATCH: u32 = 4;
const TX_START: u32 = 6;
const TX_END: u32 = 7;
const WRITE: u32 = 11;

fn daemon(extra: &[&str]) -> (Scratch, Xenstored) {
    let s = Scratch::new("xs-hostile");
    let x = Xenstored::start_in(&s.0, extra);
    (s, x)
}

#[test]
fn malformed_requests_get_einval_and_the_connection_goes_on() {
    let (_s, mut x) = daemon(&[]);
    for sock in [x.socket.clone(), x.domain_socket(5)] {
        let mut c = UnixStream::connect(&sock).unwrap();
        let long = format!("/{}\0", "a".repeat(3100));
        let cases: Vec<(u32, Vec<u8>)> = vec![
            (READ, b"/a//b\0".to_vec()),
            (READ, b"/a/\0".to_vec()),
            (READ, b"/a b\0".to_vec()),
            (READ, b"\0".to_vec()),
            (READ, long.into_bytes()),
            (READ, b"/unterminated".to_vec()),
            (WRITE, b"/no-nul-at-all".to_vec()),
            (WATCH, b"/a\0tok".to_vec()),
            (TX_END, b"T".to_vec()),
            (TX_END, b"X\0".to_vec()),
            (20, b"".to_vec()),
            (15, b"/a\0t\0".to_vec()),
            (16, b"EINVAL\0".to_vec()),
            (27, b"".to_vec()),
            (0xffff, b"".to_vec()),
            (14, b"/a\0q7\0".to_vec()),
            (10, b"99999\0".to_vec()),
        ];
        for (ty, payload) in cases {
            let r = call(&mut c, ty, 0, &payload);
            assert_eq!(errname(&r), "EINVAL", "type {ty} payload {payload:?}");
        }
        // Transaction ids that do not exist.
        assert_eq!(errname(&call(&mut c, READ, 12345, b"/\0")), "ENOENT");
        // The same connection still works.
        let r = call(&mut c, 10, 0, b"5\0");
        assert_eq!(r, (10, b"/local/domain/5\0".to_vec()));
    }
    x.assert_alive();
}

#[test]
fn oversized_payload_and_garbage_disconnect_cleanly() {
    let (_s, mut x) = daemon(&[]);
    let mut good = Client::connect(&x.socket).unwrap();
    good.write(0, "/before", b"1").unwrap();
    for sock in [x.socket.clone(), x.domain_socket(6)] {
        let mut bad = UnixStream::connect(&sock).unwrap();
        let mut msg = Vec::new();
        for v in [WRITE, 1, 0, 5000] {
            msg.extend_from_slice(&u32::to_le_bytes(v));
        }
        msg.extend(std::iter::repeat_n(b'a', 5000));
        // The daemon may close before taking it all.
        let _ = bad.write_all(&msg);
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(recv(&mut bad).is_none(), "connection closed, no reply");
    }
    // Random bytes, then hang up mid-message.
    let mut junk = UnixStream::connect(x.domain_socket(5)).unwrap();
    let mut seed = 0x1234_5678u32;
    let bytes: Vec<u8> = (0..3000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed & 0x1f) as u8
        })
        .collect();
    let _ = junk.write_all(&bytes);
    drop(junk);
    good.write(0, "/after", b"2").unwrap();
    assert_eq!(
        good.read_string(0, "/before").unwrap().as_deref(),
        Some("1")
    );
    x.assert_alive();
}

#[test]
fn floods_past_the_quotas_are_refused() {
    let (_s, mut x) = daemon(&[]);
    x.ok("xenstore-write", &["/local/domain/5", ""]);
    x.ok("xenstore-chmod", &["/local/domain/5", "n5"]);
    let mut d = UnixStream::connect(x.domain_socket(5)).unwrap();
    // Watches: 128 per domain.
    for i in 0..128 {
        let r = call(&mut d, WATCH, 0, format!("w{i}\0t\0").as_bytes());
        assert_eq!(errname(&r), "", "watch {i}");
    }
    assert_eq!(errname(&call(&mut d, WATCH, 0, b"w128\0t\0")), "E2BIG");
    // Transactions: 10 per connection.
    for i in 0..10 {
        let r = call(&mut d, TX_START, 0, b"\0");
        assert_eq!(r.0, TX_START, "transaction {i}");
    }
    assert_eq!(errname(&call(&mut d, TX_START, 0, b"\0")), "ENOSPC");
    // Nodes: 1000 owned per domain (its home is one of them).
    let mut made = 0;
    loop {
        let r = call(&mut d, WRITE, 0, format!("n{made}\0").as_bytes());
        if !errname(&r).is_empty() {
            assert_eq!(errname(&r), "ENOSPC");
            break;
        }
        made += 1;
        assert!(made < 2000, "node quota not enforced");
    }
    assert_eq!(made, 999);
    // Oversized node values from a domain: 2048 bytes.
    let mut big = b"n0\0".to_vec();
    big.extend(std::iter::repeat_n(b'v', 2100));
    assert_eq!(errname(&call(&mut d, WRITE, 0, &big)), "ENOSPC");
    // dom0 is not limited, and everybody else carries on.
    let mut c = Client::connect(&x.socket).unwrap();
    for i in 0..1100 {
        c.write(0, &format!("/dom0/{i}"), b"").unwrap();
    }
    x.assert_alive();
}

#[test]
fn clients_that_never_read_do_not_hold_up_others() {
    let (_s, mut x) = daemon(&["--max-queue", "262144"]);
    let mut c = Client::connect(&x.socket).unwrap();
    c.write(0, "/big", &[b'x'; 4000]).unwrap();
    x.ok("xenstore-chmod", &["/big", "r0"]);

    // A domain pipelines requests with 4 KB replies and never reads them:
    // once its socket is full the daemon stops reading it.
    let hog_path = x.domain_socket(6);
    let hog = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&hog_path).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut sent = 0u32;
        while sent < 1_000_000 {
            let mut msg = Vec::new();
            for v in [READ, sent + 1, 0, 5] {
                msg.extend_from_slice(&v.to_le_bytes());
            }
            msg.extend_from_slice(b"/big\0");
            if s.write_all(&msg).is_err() {
                break;
            }
            sent += 1;
        }
        (s, sent)
    });

    // A privileged watcher with long tokens that never reads its events.
    let mut stalled = UnixStream::connect(&x.socket).unwrap();
    let token = "t".repeat(2000);
    send(
        &mut stalled,
        WATCH,
        1,
        0,
        format!("/\0{token}\0").as_bytes(),
    );

    // Meanwhile everybody else is served: 5000 writes (100 transactions of
    // 50) produce ~10 MB of events for the stalled watcher, far beyond any
    // socket buffer plus the queue bound, so it gets disconnected.
    for t in 0..100 {
        c.transaction(|c, tx| {
            for i in 0..50 {
                c.write(tx, &format!("/busy/{t}/{i}"), b"v")?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            c.read_string(0, &format!("/busy/{t}/49"))
                .unwrap()
                .as_deref(),
            Some("v")
        );
    }
    let (hog_stream, sent) = hog.join().unwrap();
    assert!(
        sent < 1_000_000,
        "the daemon kept reading a client that never reads"
    );
    x.assert_alive();

    // The stalled watcher: its queued output ends in end-of-stream.
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut events = 0;
    while let Some((ty, _, _)) = recv(&mut stalled) {
        assert!(ty == WATCH || ty == 15);
        events += 1;
        assert!(events < 5000, "never disconnected");
    }
    drop(hog_stream);
    x.assert_alive();
}

#[test]
fn pipelined_requests_past_the_outstanding_quota_are_all_answered() {
    let (_s, mut x) = daemon(&[]);
    for sock in [x.domain_socket(5), x.socket.clone()] {
        let mut c = UnixStream::connect(&sock).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        // 60 requests in one write: more than the 20 a domain may have
        // outstanding, all buffered by the daemon at once.
        let mut burst = Vec::new();
        for i in 0..60u32 {
            for v in [10u32, i + 1, 0, 2] {
                burst.extend_from_slice(&v.to_le_bytes());
            }
            burst.extend_from_slice(b"5\0");
        }
        c.write_all(&burst).unwrap();
        for i in 0..60u32 {
            let (ty, req, payload) = recv(&mut c).expect("reply");
            assert_eq!((ty, req), (10, i + 1));
            assert_eq!(payload, b"/local/domain/5\0");
        }
    }
    x.assert_alive();
}

#[test]
fn a_slow_reader_is_throttled_not_disconnected_by_its_own_replies() {
    let (_s, mut x) = daemon(&["--max-queue", "262144"]);
    let mut c = Client::connect(&x.socket).unwrap();
    c.write(0, "/big", &[b'x'; 4000]).unwrap();
    // A privileged client asks for 8 MB of replies before reading any.
    let mut s = UnixStream::connect(&x.socket).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..2000u32 {
            let mut msg = Vec::new();
            for v in [READ, i + 1, 0, 5] {
                msg.extend_from_slice(&v.to_le_bytes());
            }
            msg.extend_from_slice(b"/big\0");
            w.write_all(&msg).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    for i in 0..2000u32 {
        let (ty, req, payload) = recv(&mut s).expect("reply, not a disconnect");
        assert_eq!((ty, req, payload.len()), (READ, i + 1, 4000));
    }
    writer.join().unwrap();
    x.assert_alive();
}

#[test]
fn a_domain_cannot_open_connections_without_limit() {
    let (_s, mut x) = daemon(&[]);
    let sock = x.domain_socket(5);
    let open = |n: usize| -> Vec<UnixStream> {
        (0..n)
            .map(|_| {
                let mut c = UnixStream::connect(&sock).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                assert_eq!(call(&mut c, 10, 0, b"5\0").1, b"/local/domain/5\0");
                c
            })
            .collect()
    };
    let mut held = open(16);
    // The 17th is closed straight away.
    let mut extra = UnixStream::connect(&sock).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // (The daemon may have closed it before the request is even sent.)
    let sent = try_send(&mut extra, 10, 1, 0, b"5\0");
    assert!(
        !sent || recv(&mut extra).is_none(),
        "connection over the limit served"
    );
    // Other domains and dom0 are unaffected, and a freed slot is usable.
    let mut d6 = UnixStream::connect(x.domain_socket(6)).unwrap();
    assert_eq!(call(&mut d6, 10, 0, b"6\0").1, b"/local/domain/6\0");
    held.pop();
    let mut served = false;
    for _ in 0..200 {
        let mut c = UnixStream::connect(&sock).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        if try_send(&mut c, 10, 1, 0, b"5\0") && recv(&mut c).is_some() {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served, "freed connection slot never reused");
    x.assert_alive();
}

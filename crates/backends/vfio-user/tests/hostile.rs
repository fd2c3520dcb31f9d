//! A hostile client against the server: every bad message gets an error
//! reply or a clean close, the stream stays in step, nothing panics, and an
//! honest client works afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use pcibox_vfio_user::{
    send_message, ClientOptions, MessageReader, Received, RecvError, ServerOptions,
};
use std::cell::RefCell;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use vfio_user_wire::*;

/// A raw client socket with the reader that keeps its read-ahead.
struct Peer {
    s: UnixStream,
    reader: RefCell<MessageReader>,
}

impl std::ops::Deref for Peer {
    type Target = UnixStream;
    fn deref(&self) -> &UnixStream {
        &self.s
    }
}

impl Peer {
    fn recv(&self) -> std::result::Result<Received, RecvError> {
        self.reader.borrow_mut().next(self.s.as_fd())
    }
}

fn raw(r: &Running) -> Peer {
    let s = UnixStream::connect(&r.path).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    Peer {
        s,
        reader: RefCell::new(MessageReader::new()),
    }
}

fn send(s: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    send_message(s.as_fd(), bytes, fds).unwrap();
}

/// Sends `req` and returns the errno of the reply (0 = success).
fn call(s: &Peer, id: u16, req: &Request<'_>, fds: &[BorrowedFd<'_>]) -> u32 {
    send(s, &req.to_message(id, false), fds);
    reply_errno(s, id, req.command())
}

fn reply_errno(s: &Peer, id: u16, cmd: Command) -> u32 {
    let msg = s.recv().unwrap();
    assert_eq!(msg.header.msg_id, id, "reply out of step");
    assert_eq!(msg.header.command, cmd, "reply out of step");
    match msg.header.kind {
        Kind::Reply => 0,
        Kind::Error(e) => e,
        other => panic!("not a reply: {other:?}"),
    }
}

fn version() -> Request<'static> {
    Request::Version(VersionRepr {
        major: 0,
        minor: 2,
        caps: None,
    })
}

fn negotiated(r: &Running) -> Peer {
    let s = raw(r);
    assert_eq!(call(&s, 0, &version(), &[]), 0);
    s
}

/// The server must have closed: end of stream (possibly after one error reply).
fn closed(s: &Peer) {
    loop {
        match s.recv() {
            Err(RecvError::Closed) => return,
            // Closing with the rest of a refused message unread resets.
            Err(RecvError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Ok(m) => assert!(matches!(m.header.kind, Kind::Error(_)), "{m:?}"),
            Err(e) => panic!("expected a clean close, got {e}"),
        }
    }
}

/// An honest client still works.
fn honest_ok(r: &Running) {
    let dev = connect(r, ClientOptions::default());
    assert_eq!(dev.config_read16(0).unwrap(), 0x8086);
}

fn region_read(region: u32, offset: u64, count: u32) -> Request<'static> {
    Request::RegionRead(RegionAccessRepr {
        offset,
        region,
        count,
        data: &[],
    })
}

#[test]
fn truncated_and_lying_headers_close_cleanly() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    // A header cut short, then hang-up.
    {
        let s = raw(&r);
        (&s.s).write_all(&[1, 0, 1, 0, 0x20]).unwrap();
    }
    honest_ok(&r);
    // msg_size below the header size: error reply, close.
    let s = raw(&r);
    let mut h = error_reply(5, Command::Version, 0);
    h[4..8].copy_from_slice(&8u32.to_ne_bytes());
    h[8..12].copy_from_slice(&0u32.to_ne_bytes());
    send(&s, &h, &[]);
    closed(&s);
    honest_ok(&r);
    // msg_size of 4 GiB: refused before allocating, close.
    let s = raw(&r);
    h[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    send(&s, &h, &[]);
    closed(&s);
    honest_ok(&r);
    // A payload shorter than msg_size, then hang-up mid-message.
    {
        let s = raw(&r);
        let mut m = region_read(0, 0, 4).to_message(1, false);
        m[4..8].copy_from_slice(&64u32.to_ne_bytes());
        send(&s, &m, &[]);
    }
    honest_ok(&r);
    // Bad flag bits / a bad type: answered, closed.
    let s = raw(&r);
    let mut m = version().to_message(1, false);
    m[8..12].copy_from_slice(&0x7u32.to_ne_bytes());
    send(&s, &m, &[]);
    closed(&s);
    honest_ok(&r);
}

#[test]
fn bad_requests_get_error_replies_and_stream_stays_in_step() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let s = raw(&r);
    // Anything before VERSION.
    assert_eq!(call(&s, 1, &region_read(7, 0, 4), &[]), errno::EINVAL);
    assert_eq!(call(&s, 2, &version(), &[]), 0);
    // A second VERSION.
    assert_eq!(call(&s, 3, &version(), &[]), errno::EINVAL);
    // Unknown commands, with a payload that must be skipped.
    let mut m = version().to_message(4, false);
    m[2..4].copy_from_slice(&99u16.to_ne_bytes());
    m.extend_from_slice(&[0xee; 100]);
    let size = m.len() as u32;
    m[4..8].copy_from_slice(&size.to_ne_bytes());
    send(&s, &m, &[]);
    assert_eq!(reply_errno(&s, 4, Command::Unknown(99)), errno::ENOSYS);
    // Oversized counts.
    assert_eq!(call(&s, 5, &region_read(7, 0, 16 << 20), &[]), errno::E2BIG);
    let mut set = vec![0u8; 20];
    set[4..8].copy_from_slice(&(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER).to_ne_bytes());
    set[8..12].copy_from_slice(&PCI_MSIX_IRQ_INDEX.to_ne_bytes());
    set[16..20].copy_from_slice(&100_000u32.to_ne_bytes());
    let mut m = HeaderRepr {
        msg_id: 6,
        command: Command::DeviceSetIrqs,
        payload_len: 20,
        kind: Kind::Command { no_reply: false },
    }
    .to_bytes()
    .to_vec();
    m.extend_from_slice(&set);
    send(&s, &m, &[]);
    assert_eq!(reply_errno(&s, 6, Command::DeviceSetIrqs), errno::E2BIG);
    // More vectors than the device has.
    let irq = |count| {
        Request::SetIrqs(IrqSetRepr {
            action: IrqAction::Trigger,
            data: IrqData::None,
            index: PCI_MSIX_IRQ_INDEX,
            start: 0,
            count,
        })
    };
    assert_eq!(call(&s, 7, &irq(5), &[]), errno::EINVAL);
    // Region accesses out of bounds / absent regions / bad indexes.
    assert_eq!(call(&s, 8, &region_read(0, 0x3ffe, 4), &[]), errno::EINVAL);
    assert_eq!(
        call(&s, 9, &region_read(0, u64::MAX - 1, 4), &[]),
        errno::ERANGE
    );
    assert_eq!(call(&s, 10, &region_read(4, 0, 4), &[]), errno::EINVAL);
    assert_eq!(call(&s, 11, &region_read(42, 0, 4), &[]), errno::EINVAL);
    assert_eq!(call(&s, 12, &region_read(7, 0xfe, 4), &[]), errno::EINVAL);
    // A stray reply and a server→client command.
    send(&s, &Reply::DeviceReset.to_message(13), &[]);
    assert_eq!(reply_errno(&s, 13, Command::DeviceReset), errno::EINVAL);
    let dr = Request::DmaRead(DmaAccessRepr {
        address: 0x10_0000,
        count: 4,
        data: &[],
    });
    assert_eq!(call(&s, 14, &dr, &[]), errno::EINVAL);
    // Unsupported commands.
    let feat = Request::DeviceFeature(DeviceFeatureRepr {
        argsz: 8,
        flags: DEVICE_FEATURE_GET | u32::from(FEATURE_MIGRATION),
        data: &[],
    });
    assert_eq!(call(&s, 15, &feat, &[]), errno::EOPNOTSUPP);
    // And the stream is still in step: a good request works.
    let ok = region_read(7, 0, 4);
    send(&s, &ok.to_message(16, false), &[]);
    let msg = s.recv().unwrap();
    assert_eq!((msg.header.msg_id, msg.header.kind), (16, Kind::Reply));
    match Reply::parse(Command::RegionRead, &msg.payload).unwrap() {
        Reply::RegionRead(r) => assert_eq!(r.data, &0x10d3_8086u32.to_le_bytes()),
        other => panic!("{other:?}"),
    }
    drop(s);
    honest_ok(&r);
}

fn dma_map(address: u64, size: u64, offset: u64) -> Request<'static> {
    Request::DmaMap(DmaMapRepr {
        flags: DMA_FLAG_READ | DMA_FLAG_WRITE,
        offset,
        address,
        size,
    })
}

fn memfd(len: u64) -> std::os::fd::OwnedFd {
    let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    fd
}

#[test]
fn bad_fds_and_dma_windows_refused() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let s = negotiated(&r);
    let mem = memfd(0x4000);
    let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    // A good window.
    assert_eq!(
        call(&s, 1, &dma_map(0x20_0000, 0x2000, 0), &[mem.as_fd()]),
        0
    );
    // Overlaps (inside, straddling the start, straddling the end).
    assert_eq!(
        call(&s, 2, &dma_map(0x20_1000, 0x1000, 0), &[mem.as_fd()]),
        errno::EEXIST
    );
    assert_eq!(
        call(&s, 3, &dma_map(0x1f_f000, 0x2000, 0), &[mem.as_fd()]),
        errno::EEXIST
    );
    assert_eq!(
        call(&s, 4, &dma_map(0x20_1000, 0x2000, 0), &[]),
        errno::EEXIST
    );
    // Unaligned, outside the IOVA ranges, file too small.
    assert_eq!(
        call(&s, 5, &dma_map(0x30_0100, 0x1000, 0), &[mem.as_fd()]),
        errno::EINVAL
    );
    assert_eq!(
        call(&s, 6, &dma_map(1 << 45, 0x1000, 0), &[mem.as_fd()]),
        errno::ERANGE
    );
    assert_eq!(
        call(&s, 7, &dma_map(0x30_0000, 0x2000, 0x3000), &[mem.as_fd()]),
        errno::EINVAL
    );
    // Not a file: an eventfd, a socket.
    assert_eq!(
        call(&s, 8, &dma_map(0x30_0000, 0x1000, 0), &[efd.as_fd()]),
        errno::EINVAL
    );
    assert_eq!(
        call(&s, 9, &dma_map(0x30_0000, 0x1000, 0), &[s.as_fd()]),
        errno::EINVAL
    );
    // Two descriptors for one window; a descriptor where none belongs.
    assert_eq!(
        call(
            &s,
            10,
            &dma_map(0x30_0000, 0x1000, 0),
            &[mem.as_fd(), mem.as_fd()]
        ),
        errno::EINVAL
    );
    assert_eq!(
        call(&s, 11, &region_read(7, 0, 4), &[efd.as_fd()]),
        errno::EINVAL
    );
    // A flood of descriptors (more than we accept in one message).
    let many: Vec<_> = (0..100).map(|_| efd.as_fd()).collect();
    assert_eq!(call(&s, 12, &region_read(7, 0, 4), &many), errno::EINVAL);
    // A socket posing as an interrupt eventfd.
    let set = Request::SetIrqs(IrqSetRepr {
        action: IrqAction::Trigger,
        data: IrqData::Eventfd,
        index: PCI_MSIX_IRQ_INDEX,
        start: 0,
        count: 1,
    });
    assert_eq!(call(&s, 13, &set, &[s.as_fd()]), errno::EINVAL);
    // Unmap of ranges never mapped (or not as mapped).
    let unmap = |address, size| {
        Request::DmaUnmap(DmaUnmapRepr {
            argsz: 24,
            flags: 0,
            address,
            size,
        })
    };
    assert_eq!(call(&s, 14, &unmap(0x40_0000, 0x1000), &[]), errno::ENOENT);
    assert_eq!(call(&s, 15, &unmap(0x20_0000, 0x1000), &[]), errno::ENOENT);
    // Only the good window reached the device.
    assert_eq!(fake.mapping_count(), 1);
    assert_eq!(r.dma.window_count(), 1);
    // Unmapped-IOVA requests by the device model are refused.
    assert!(r.dma.read(0x40_0000, &mut [0u8; 8]).is_err());
    assert!(r.dma.read(0x20_1ffc, &mut [0u8; 8]).is_err());
    assert_eq!(call(&s, 16, &unmap(0x20_0000, 0x2000), &[]), 0);
    assert_eq!(fake.mapping_count(), 0);
    drop(s);
    honest_ok(&r);
}

/// Sends a DMA_UNMAP and returns the echoed entry, or the errno.
fn unmap_reply(s: &Peer, id: u16, r: DmaUnmapRepr) -> std::result::Result<DmaUnmapRepr, u32> {
    send(s, &Request::DmaUnmap(r).to_message(id, false), &[]);
    let msg = s.recv().unwrap();
    assert_eq!(
        (msg.header.msg_id, msg.header.command),
        (id, Command::DmaUnmap)
    );
    match msg.header.kind {
        Kind::Error(e) => Err(e),
        Kind::Reply => match Reply::parse(Command::DmaUnmap, &msg.payload).unwrap() {
            Reply::DmaUnmap(Some(echo)) => Ok(echo),
            other => panic!("DMA_UNMAP answered with {other:?}"),
        },
        other => panic!("not a reply: {other:?}"),
    }
}

/// A negotiated session with one 8 KiB window at 0x20_0000 backed by a
/// memfd.
fn one_window(fake: &pcibox_model::fake::Fake) -> (Running, Peer, std::os::fd::OwnedFd) {
    let r = serve(fake, ServerOptions::default());
    let s = negotiated(&r);
    let mem = memfd(0x2000);
    assert_eq!(
        call(&s, 1, &dma_map(0x20_0000, 0x2000, 0), &[mem.as_fd()]),
        0
    );
    (r, s, mem)
}

/// A device-model write at `iova` lands in the window's file at `at`.
fn dma_lands_in(r: &Running, mem: &std::os::fd::OwnedFd, iova: u64, at: u64) {
    r.dma.write(iova, &iova.to_le_bytes()).unwrap();
    let mut back = [0u8; 8];
    rustix::io::pread(mem, &mut back, at).unwrap();
    assert_eq!(u64::from_le_bytes(back), iova);
}

#[test]
fn dma_unmap_all_drops_every_window() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let s = negotiated(&r);
    let mem = memfd(0x4000);
    assert_eq!(
        call(&s, 1, &dma_map(0x20_0000, 0x2000, 0), &[mem.as_fd()]),
        0
    );
    assert_eq!(
        call(&s, 2, &dma_map(0x30_0000, 0x1000, 0x2000), &[mem.as_fd()]),
        0
    );
    assert_eq!((fake.mapping_count(), r.dma.window_count()), (2, 2));
    dma_lands_in(&r, &mem, 0x30_0000, 0x2000);
    // Everything goes, in one message; the reply echoes the request.
    let all = DmaUnmapRepr::all();
    assert_eq!(unmap_reply(&s, 3, all), Ok(all));
    assert_eq!(
        fake.mapping_count(),
        0,
        "a window is still mapped for the device"
    );
    assert_eq!(r.dma.window_count(), 0);
    // DMA to either former window is refused.
    assert!(r.dma.read(0x20_0000, &mut [0u8; 8]).is_err());
    assert!(r.dma.write(0x30_0000, b"gone").is_err());
    // Nothing left: unmapping all again succeeds, a single unmap finds nothing.
    assert_eq!(unmap_reply(&s, 4, all), Ok(all));
    let one = DmaUnmapRepr {
        flags: 0,
        address: 0x20_0000,
        size: 0x2000,
        ..all
    };
    assert_eq!(unmap_reply(&s, 5, one), Err(errno::ENOENT));
    // The same IOVAs map again and work.
    assert_eq!(
        call(&s, 6, &dma_map(0x20_0000, 0x2000, 0), &[mem.as_fd()]),
        0
    );
    assert_eq!((fake.mapping_count(), r.dma.window_count()), (1, 1));
    dma_lands_in(&r, &mem, 0x20_0010, 0x10);
    assert_eq!(unmap_reply(&s, 7, one), Ok(one));
    drop(s);
    honest_ok(&r);
}

#[test]
fn dma_unmap_all_with_a_range_or_unknown_flags_is_refused() {
    let fake = fake();
    let (r, s, mem) = one_window(&fake);
    let all = DmaUnmapRepr::all();
    // FLAG_ALL beside a range is contradictory: EINVAL, nothing unmapped.
    for (id, address, size) in [(2, 0x20_0000, 0x2000), (3, 0, 0x2000), (4, 0x20_0000, 0)] {
        let bad = DmaUnmapRepr {
            address,
            size,
            ..all
        };
        assert_eq!(unmap_reply(&s, id, bad), Err(errno::EINVAL), "{bad:?}");
    }
    // Flags we do not implement (dirty bitmap, vaddr), alone or beside ALL.
    for (id, flags) in [(5, 1), (6, 4), (7, DMA_UNMAP_FLAG_ALL | 1), (8, 1 << 31)] {
        let r = DmaUnmapRepr { flags, ..all };
        assert_eq!(unmap_reply(&s, id, r), Err(errno::EOPNOTSUPP), "{r:?}");
    }
    // No-reply forms get no answer and change nothing either.
    let bad = DmaUnmapRepr {
        size: 0x2000,
        ..all
    };
    send(&s, &Request::DmaUnmap(bad).to_message(9, true), &[]);
    assert_eq!((fake.mapping_count(), r.dma.window_count()), (1, 1));
    // The session goes on: a bystander request is answered in step.
    send(&s, &region_read(7, 0, 4).to_message(10, false), &[]);
    let msg = s.recv().unwrap();
    assert_eq!((msg.header.msg_id, msg.header.kind), (10, Kind::Reply));
    match Reply::parse(Command::RegionRead, &msg.payload).unwrap() {
        Reply::RegionRead(rr) => assert_eq!(rr.data, &0x10d3_8086u32.to_le_bytes()),
        other => panic!("{other:?}"),
    }
    assert_eq!((fake.mapping_count(), r.dma.window_count()), (1, 1));
    dma_lands_in(&r, &mem, 0x20_0000, 0);
    // And a proper unmap-all still works.
    assert_eq!(unmap_reply(&s, 11, all), Ok(all));
    assert_eq!((fake.mapping_count(), r.dma.window_count()), (0, 0));
    drop(s);
    honest_ok(&r);
}

#[test]
fn a_shrunk_dma_file_does_not_crash_the_server() {
    let fake = fake();
    let (r, s, mem) = one_window(&fake);
    rustix::fs::ftruncate(&mem, 0).unwrap();
    // Software DMA uses pread/pwrite: a short read is an error, not SIGBUS.
    assert!(r.dma.read(0x20_1000, &mut [0u8; 16]).is_err());
    drop(s);
    honest_ok(&r);
}

#[test]
fn floods_are_answered_in_order() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let s = negotiated(&r);
    // Posted writes (no reply) interleaved with reads, all pipelined.
    let writer = s.try_clone().unwrap();
    let n = 2000u16;
    let t = std::thread::spawn(move || {
        for i in 0..n {
            let w = Request::RegionWrite(RegionAccessRepr {
                offset: 0x10,
                region: 2,
                count: 4,
                data: &u32::from(i).to_le_bytes(),
            });
            send_message(writer.as_fd(), &w.to_message(i, true), &[]).unwrap();
            send_message(
                writer.as_fd(),
                &region_read(2, 0x10, 4).to_message(i, false),
                &[],
            )
            .unwrap();
        }
    });
    for i in 0..n {
        let msg = s.recv().unwrap();
        assert_eq!((msg.header.msg_id, msg.header.kind), (i, Kind::Reply));
        match Reply::parse(Command::RegionRead, &msg.payload).unwrap() {
            Reply::RegionRead(rr) => assert_eq!(rr.data, &u32::from(i).to_le_bytes()),
            other => panic!("{other:?}"),
        }
    }
    t.join().unwrap();
    // A flood of garbage no-reply commands: nothing comes back, no desync.
    for i in 0..500u16 {
        send(&s, &region_read(99, 0, 4).to_message(i, true), &[]);
    }
    assert_eq!(call(&s, 9999, &region_read(7, 0, 2), &[]), 0);
    drop(s);
    honest_ok(&r);
}

#[test]
fn wrong_major_version_is_refused() {
    let fake = fake();
    let r = serve(&fake, ServerOptions::default());
    let s = raw(&r);
    let v = Request::Version(VersionRepr {
        major: 1,
        minor: 0,
        caps: None,
    });
    send(&s, &v.to_message(0, false), &[]);
    closed(&s);
    honest_ok(&r);
}

#[test]
fn quiet_clients_stay_stalled_ones_are_dropped() {
    let fake = fake();
    let r = serve(
        &fake,
        ServerOptions {
            io_timeout: std::time::Duration::from_millis(100),
            ..Default::default()
        },
    );
    let s = negotiated(&r);
    // Quiet between messages for several timeouts: still served.
    std::thread::sleep(std::time::Duration::from_millis(350));
    assert_eq!(call(&s, 1, &region_read(7, 0, 4), &[]), 0);
    // Stalled inside a message: dropped (after the timeout), cleanly.
    let m = region_read(7, 0, 4).to_message(2, false);
    (&s.s).write_all(&m[..20]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(350));
    closed(&s);
    honest_ok(&r);
}

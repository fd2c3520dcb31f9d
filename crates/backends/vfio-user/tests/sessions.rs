//! Sessions as independent objects: the device path a firewall wraps and
//! the trusted teardown that bypasses it, one IOVA space per session,
//! one client per device at a time, and several devices served at once by
//! a `ServerSet` (a thread per session, one stop).
#![allow(clippy::unwrap_used, unsafe_code)]

mod common;

use common::{eventually, fake};
use pcibox_kit::{
    Backend, Device, DmaMemory, DmaWindow, Interrupts, IrqInfo, IrqKind, RegionInfo, Vector,
};
use pcibox_vfio_user::{
    Client, ClientOptions, DirectDevice, Server, ServerOptions, ServerSet, Session, SessionDevice,
    SessionStats,
};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vfio_user_wire::errno;

const P: u64 = 4096;

/// A stand-in for a firewall: counts what reaches it, refuses config
/// writes and resets, and can make resets slow.
#[derive(Debug)]
struct Guard {
    inner: DirectDevice,
    config_writes: Arc<AtomicU64>,
    resets: Arc<AtomicU64>,
    /// Resets take this long and are then let through (instead of refused).
    slow_reset: Option<Duration>,
    reset_started: Arc<AtomicBool>,
    reset_done: Arc<AtomicBool>,
}

#[derive(Debug, Clone, Default)]
struct GuardCounts {
    config_writes: Arc<AtomicU64>,
    resets: Arc<AtomicU64>,
    reset_started: Arc<AtomicBool>,
    reset_done: Arc<AtomicBool>,
}

impl GuardCounts {
    fn wrap(&self, server: &mut Server, slow_reset: Option<Duration>) {
        let c = self.clone();
        server.set_session_device(move |inner| {
            Box::new(Guard {
                inner,
                config_writes: c.config_writes.clone(),
                resets: c.resets.clone(),
                slow_reset,
                reset_started: c.reset_started.clone(),
                reset_done: c.reset_done.clone(),
            })
        });
    }
}

fn refused(what: &'static str) -> pcibox_kit::Error {
    pcibox_kit::Error::Unsupported {
        backend: "guard".into(),
        what,
    }
}

impl SessionDevice for Guard {
    fn config_len(&self) -> usize {
        self.inner.config_len()
    }
    fn config_read(&self, offset: usize, buf: &mut [u8]) -> pcibox_kit::Result<()> {
        self.inner.config_read(offset, buf)
    }
    fn config_write(&self, _offset: usize, _data: &[u8]) -> pcibox_kit::Result<()> {
        self.config_writes.fetch_add(1, Ordering::SeqCst);
        Err(refused("config write"))
    }
    fn region_info(&self, index: u32) -> pcibox_kit::Result<Option<RegionInfo>> {
        self.inner.region_info(index)
    }
    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> pcibox_kit::Result<()> {
        self.inner.region_read(index, offset, buf)
    }
    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> pcibox_kit::Result<()> {
        self.inner.region_write(index, offset, data)
    }
    fn region_mmap_fd(&self, index: u32) -> pcibox_kit::Result<BorrowedFd<'_>> {
        self.inner.region_mmap_fd(index)
    }
    fn irq_info(&self, kind: IrqKind) -> pcibox_kit::Result<IrqInfo> {
        self.inner.irq_info(kind)
    }
    fn enable_interrupts(
        &self,
        kind: IrqKind,
        fds: Vec<OwnedFd>,
    ) -> pcibox_kit::Result<Interrupts> {
        self.inner.enable_interrupts(kind, fds)
    }
    fn set_masked(&self, vector: &Vector, masked: bool) -> pcibox_kit::Result<()> {
        self.inner.set_masked(vector, masked)
    }
    fn reserve_window(&self, iova: u64, len: u64) -> pcibox_kit::Result<DmaWindow> {
        self.inner.reserve_window(iova, len)
    }
    fn reset(&self) -> pcibox_kit::Result<()> {
        self.resets.fetch_add(1, Ordering::SeqCst);
        let Some(t) = self.slow_reset else {
            return Err(refused("reset"));
        };
        self.reset_started.store(true, Ordering::SeqCst);
        std::thread::sleep(t);
        self.reset_done.store(true, Ordering::SeqCst);
        self.inner.reset()
    }
}

fn memfd(len: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    fd
}

/// Maps `len` bytes of `mem` at `iova` through a bare client.
fn map(client: &Client, iova: u64, len: u64, mem: &OwnedFd) -> pcibox_kit::Result<()> {
    // SAFETY: file-backed: the client passes the memfd and never touches
    // `vaddr` (0); `mem` outlives the client in every caller.
    unsafe {
        client.dma_map(
            iova,
            &DmaMemory {
                vaddr: 0,
                len,
                fd: Some(mem.as_fd()),
                fd_offset: 0,
                device_writable: true,
            },
        )
    }
}

/// The errno the server answered with.
fn remote_errno(e: &pcibox_kit::Error) -> Option<u32> {
    match e {
        pcibox_kit::Error::Backend(b) => match b.downcast_ref::<pcibox_vfio_user::Error>() {
            Some(pcibox_vfio_user::Error::Remote { errno, .. }) => Some(*errno),
            _ => None,
        },
        _ => None,
    }
}

/// A session of `server` served on its own thread; the client end.
fn session_thread(server: &Server) -> (Client, JoinHandle<SessionStats>) {
    let (a, b) = UnixStream::pair().unwrap();
    let session: Session = server.open_session().unwrap();
    let t = std::thread::spawn(move || session.serve(b));
    let client = Client::from_stream(a, "t".into(), ClientOptions::default()).unwrap();
    (client, t)
}

#[test]
fn the_teardown_bypasses_the_session_device_path() {
    let fake = fake();
    let counts = GuardCounts::default();
    let mut server = Server::new(Box::new(fake.clone()), ServerOptions::default()).unwrap();
    counts.wrap(&mut server, None);
    // Bus mastering on, as a driver left it.
    Backend::config_write(&fake, 4, &0x0006u16.to_le_bytes()).unwrap();
    let (client, t) = session_thread(&server);
    let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    client.irq_enable(IrqKind::Msix, &[efd.as_fd()]).unwrap();
    let mem = memfd(P);
    map(&client, 0x20_0000, P, &mem).unwrap();
    // The client's requests take the wrapped path: refused there.
    let e = client.config_write(4, &0u16.to_le_bytes()).unwrap_err();
    assert_eq!(remote_errno(&e), Some(errno::EOPNOTSUPP));
    assert!(client.reset().is_err());
    assert_eq!(counts.config_writes.load(Ordering::SeqCst), 1);
    assert_eq!(counts.resets.load(Ordering::SeqCst), 1);
    assert_eq!(
        fake.config()[4] & 0x04,
        0x04,
        "the refused write reached the device"
    );
    assert_eq!(fake.resets(), 0);
    // The client vanishes: the teardown works on the device itself.
    drop(client);
    let stats = t.join().unwrap();
    assert_eq!(stats.end, "client closed");
    assert_eq!(fake.irq_enabled(), None);
    assert_eq!(fake.mapping_count(), 0);
    assert_eq!(fake.config()[4] & 0x04, 0, "bus mastering still on");
    assert_eq!(fake.resets(), 1);
    assert_eq!(counts.config_writes.load(Ordering::SeqCst), 1);
    assert_eq!(counts.resets.load(Ordering::SeqCst), 1);
    // The next session gets a fresh path, and the device is free again.
    let (client, t) = session_thread(&server);
    assert_eq!(client.config_len(), 256);
    drop(client);
    t.join().unwrap();
}

#[test]
fn client_windows_and_server_allocations_never_collide() {
    let fake = fake();
    let server = Server::new(Box::new(fake.clone()), ServerOptions::default()).unwrap();
    // Something in the server (a device model) maps a buffer first.
    let model_buf = server.device().alloc_dma(P as usize).unwrap();
    let (client, t) = session_thread(&server);
    let mem = memfd(64 * P);
    // The client cannot place a window over it, nor across it.
    for (iova, len) in [(model_buf.iova(), P), (model_buf.iova() - P, 2 * P)] {
        let e = map(&client, iova, len, &mem).unwrap_err();
        assert_eq!(remote_errno(&e), Some(errno::EEXIST), "{iova:#x}+{len:#x}");
    }
    assert_eq!(fake.mapping_count(), 1);
    // A client window right after it, and one below the allocator's floor.
    let window = model_buf.iova() + P;
    map(&client, window, 16 * P, &mem).unwrap();
    map(&client, 0, P, &mem).unwrap();
    assert_eq!(fake.mapping_count(), 3);
    // Later allocations in the server go around the client's windows.
    let more: Vec<_> = (0..4)
        .map(|_| server.device().alloc_dma(8 * P as usize).unwrap())
        .collect();
    for b in &more {
        let (s, e) = (b.iova(), b.iova() + b.len() as u64);
        assert!(
            e <= window || s >= window + 16 * P,
            "{s:#x}..{e:#x} in the window"
        );
        assert!(s >= P);
    }
    // The device reaches each where it should.
    fake.dma_write(window + 8, b"client").unwrap();
    let mut got = [0u8; 6];
    rustix::io::pread(&mem, &mut got, 8).unwrap();
    assert_eq!(&got, b"client");
    fake.dma_write(more[0].iova(), b"model").unwrap();
    assert_eq!(&more[0].to_vec()[..5], b"model");
    // The session's windows go with it; the server's buffers stay.
    drop(client);
    t.join().unwrap();
    assert_eq!(fake.mapping_count(), 1 + more.len());
    let again = server.device().alloc_dma(16 * P as usize).unwrap();
    assert_eq!(again.iova(), window, "the window's IOVAs are free again");
}

#[test]
fn one_session_per_device_at_a_time() {
    let fake = fake();
    let server = Server::new(Box::new(fake.clone()), ServerOptions::default()).unwrap();
    let first = server.open_session().unwrap();
    assert!(matches!(
        server.open_session(),
        Err(pcibox_vfio_user::Error::Busy)
    ));
    drop(first);
    assert_eq!(
        fake.resets(),
        1,
        "an unused session still ends with a reset"
    );
    drop(server.open_session().unwrap());
}

/// A socket path and its listener.
fn listener(tag: &str) -> (std::path::PathBuf, UnixListener) {
    let path =
        std::env::temp_dir().join(format!("pcibox-vu-set-{}-{tag}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    (path, l)
}

#[test]
fn a_set_serves_devices_at_once_and_stops_them_all() {
    let (fa, fb) = (fake(), fake());
    let counts = GuardCounts::default();
    let mut a = Server::new(Box::new(fa.clone()), ServerOptions::default()).unwrap();
    counts.wrap(&mut a, Some(Duration::from_secs(2)));
    let b = Server::new(Box::new(fb.clone()), ServerOptions::default()).unwrap();
    let (pa, la) = listener("a");
    let (pb, lb) = listener("b");
    let mut set = ServerSet::new().unwrap();
    set.add(a, la);
    set.add(b, lb);
    assert_eq!(set.len(), 2);
    let stop = set.stop_handle();
    let run = std::thread::spawn(move || set.run());
    let client_a = Client::connect(&pa, Default::default()).unwrap();
    let dev_a = Arc::new(Device::new(Box::new(client_a)).unwrap());
    let dev_b = Device::new(Box::new(Client::connect(&pb, Default::default()).unwrap())).unwrap();
    // Device A's session is stuck in a slow reset...
    let d = dev_a.clone();
    let slow = std::thread::spawn(move || d.reset());
    // (dev_a is dropped below, once the reset is back.)
    eventually("A's reset to start", || {
        counts.reset_started.load(Ordering::SeqCst)
    });
    // ...while device B's client is served as usual.
    let t = Instant::now();
    for _ in 0..50 {
        assert_eq!(dev_b.config_read16(0).unwrap(), 0x8086);
    }
    assert!(
        !counts.reset_done.load(Ordering::SeqCst),
        "B waited for A's reset ({:?})",
        t.elapsed()
    );
    slow.join().unwrap().unwrap();
    // A second client of A waits until the first leaves.
    let pa2 = pa.clone();
    let second = std::thread::spawn(move || Client::connect(&pa2, Default::default()));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!second.is_finished(), "two clients on one device at once");
    drop(Arc::into_inner(dev_a));
    let second = second.join().unwrap().unwrap();
    // Both left with interrupts on and DMA mapped: the stop cleans up both.
    let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    second.irq_enable(IrqKind::Msix, &[efd.as_fd()]).unwrap();
    let mem = memfd(P);
    map(&second, 0x20_0000, P, &mem).unwrap();
    let irq_b = dev_b.enable_interrupts(IrqKind::Msix, 2).unwrap();
    let buf_b = dev_b.alloc_dma(P as usize).unwrap();
    assert_eq!((fa.mapping_count(), fb.mapping_count()), (1, 1));
    assert_eq!(fa.irq_enabled(), Some(IrqKind::Msix));
    stop.stop();
    run.join().unwrap().unwrap();
    for f in [&fa, &fb] {
        assert_eq!((f.irq_enabled(), f.mapping_count()), (None, 0));
    }
    // A: the first client's reset and teardown, the second's teardown.
    assert_eq!((fa.resets(), fb.resets()), (3, 1));
    drop((irq_b, buf_b, dev_b, second));
    let _ = (std::fs::remove_file(pa), std::fs::remove_file(pb));
}

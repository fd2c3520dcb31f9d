//! vfio-user costs against their raw baselines, measured in the same run
//! (`cargo bench -p pcibox-vfio-user`):
//!
//! - `config_read4`: a 4-byte config-space read through our client and
//!   server (REGION_READ of 32 bytes, reply of 36) — against
//!   `unix_pingpong_32_36`, the same sizes bounced over a raw Unix socket
//!   pair between two threads;
//! - `irq_delivery`: a device-side interrupt (the fake triggers the vector's
//!   eventfd, which the client gave the server with SET_IRQS) waited for with
//!   the kit's `Vector::wait`, the next one kicked by an eventfd — against
//!   `eventfd_pingpong`, two raw eventfds between two threads.
//!
//! - `unix_pingpong_epoll` (informational, for the event-loop choice in
//!   docs/architecture.md): `unix_pingpong_32_36` with the answering side
//!   waiting in `epoll_wait` before each read, as a one-reactor server
//!   would, against the blocking read a thread per session does.
//!
//! Every thread is pinned to one CPU: on a small VM a wakeup across CPUs
//! costs tens of microseconds and varies run to run, which would bury the
//! path under test. After divan's table the two
//! ratios are measured again in interleaved rounds — ours, then the
//! baseline, then ours… — so that a noisy neighbour slows both alike, and
//! the median of the per-round ratios is printed.
#![allow(clippy::unwrap_used, clippy::single_range_in_vec_init)]

use divan::Bencher;
use pcibox_kit::{Device, IrqKind};
use pcibox_model::fake::Fake;
use pcibox_vfio_user::{Client, ClientOptions, Server, ServerOptions};
use rustix::event::EventfdFlags;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    pin_to_one_cpu();
    divan::main();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        ratios();
    }
}

/// Pins this thread, and so every thread it starts later, to the CPU it
/// runs on now.
fn pin_to_one_cpu() {
    let cpu = rustix::thread::sched_getcpu();
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    match rustix::thread::sched_setaffinity(None, &set) {
        Ok(()) => eprintln!("all benchmark threads pinned to CPU {cpu}"),
        Err(e) => eprintln!("not pinned ({e}): expect cross-CPU wakeup noise"),
    }
}

/// A fake device served on one end of a socket pair; returns the client
/// device and the fake (device side).
fn setup() -> (Device, Fake) {
    let fake = Fake::new(0x8086, 0x10d3)
        .with_region(0, 0x1000, vec![])
        .with_irqs(IrqKind::Msix, 1);
    let (a, b) = UnixStream::pair().unwrap();
    let mut server = Server::new(Box::new(fake.clone()), ServerOptions::default()).unwrap();
    std::thread::spawn(move || {
        server.serve_connection(b);
    });
    let client = Client::from_stream(a, "bench".into(), ClientOptions::default()).unwrap();
    (Device::new(Box::new(client)).unwrap(), fake)
}

/// One 4-byte config read through our client and server.
fn config_read4_case() -> impl FnMut() {
    let (dev, _fake) = setup();
    move || {
        dev.config_read32(0).unwrap();
    }
}

/// The same sizes (32-byte request, 36-byte reply) bounced over a raw socket pair.
fn unix_pingpong_case() -> impl FnMut() {
    let (mut a, mut peer) = UnixStream::pair().unwrap();
    std::thread::spawn(move || {
        let mut req = [0u8; 32];
        let reply = [0u8; 36];
        while peer.read_exact(&mut req).is_ok() && peer.write_all(&reply).is_ok() {}
    });
    let (req, mut reply) = ([0u8; 32], [0u8; 36]);
    move || {
        a.write_all(&req).unwrap();
        a.read_exact(&mut reply).unwrap();
    }
}

/// The same ping-pong, the answering side a reactor: `epoll_wait` on the
/// socket, then read and answer.
fn unix_pingpong_epoll_case() -> impl FnMut() {
    use rustix::event::epoll;
    let (mut a, mut peer) = UnixStream::pair().unwrap();
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    epoll::add(
        &ep,
        &peer,
        epoll::EventData::new_u64(0),
        epoll::EventFlags::IN,
    )
    .unwrap();
    std::thread::spawn(move || {
        let mut req = [0u8; 32];
        let reply = [0u8; 36];
        let mut events = [std::mem::MaybeUninit::<epoll::Event>::uninit(); 8];
        while epoll::wait(&ep, &mut events, None).is_ok()
            && peer.read_exact(&mut req).is_ok()
            && peer.write_all(&reply).is_ok()
        {}
    });
    let (req, mut reply) = ([0u8; 32], [0u8; 36]);
    move || {
        a.write_all(&req).unwrap();
        a.read_exact(&mut reply).unwrap();
    }
}

fn eventfd() -> Arc<OwnedFd> {
    Arc::new(rustix::event::eventfd(0, EventfdFlags::CLOEXEC).unwrap())
}

fn read_efd(fd: &OwnedFd) -> u64 {
    let mut v = [0u8; 8];
    rustix::io::read(fd, &mut v).unwrap();
    u64::from_ne_bytes(v)
}

fn write_efd(fd: &OwnedFd) {
    rustix::io::write(fd, &1u64.to_ne_bytes()).unwrap();
}

/// A device-side interrupt (each kick makes the fake raise the vector) waited for with
/// `Vector::wait`.
fn irq_delivery_case() -> impl FnMut() {
    let (dev, fake) = setup();
    let irqs = dev.enable_interrupts(IrqKind::Msix, 1).unwrap();
    let kick = eventfd();
    let k = kick.clone();
    std::thread::spawn(move || loop {
        read_efd(&k);
        fake.trigger(0);
    });
    move || {
        // The device lives as long as the case (closing it would turn the interrupts off).
        let _ = &dev;
        write_efd(&kick);
        let v = irqs.vector(0).unwrap();
        assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
    }
}

/// Two raw eventfds bounced between two threads.
fn eventfd_pingpong_case() -> impl FnMut() {
    let (ping, pong) = (eventfd(), eventfd());
    let (p, q) = (ping.clone(), pong.clone());
    std::thread::spawn(move || loop {
        read_efd(&p);
        write_efd(&q);
    });
    move || {
        write_efd(&ping);
        read_efd(&pong);
    }
}

#[divan::bench]
fn config_read4(b: Bencher) {
    b.bench_local(config_read4_case());
}

#[divan::bench]
fn unix_pingpong_32_36(b: Bencher) {
    b.bench_local(unix_pingpong_case());
}

#[divan::bench]
fn unix_pingpong_epoll(b: Bencher) {
    b.bench_local(unix_pingpong_epoll_case());
}

#[divan::bench]
fn irq_delivery(b: Bencher) {
    b.bench_local(irq_delivery_case());
}

#[divan::bench]
fn eventfd_pingpong(b: Bencher) {
    b.bench_local(eventfd_pingpong_case());
}

/// Times `n` calls of `f`, per call.
fn per_call(n: u32, f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

/// `ours` against `base` in interleaved rounds (the order alternates).
/// Returns the medians of ours, of base and of the per-round ratio.
fn interleaved(ours: &mut dyn FnMut(), base: &mut dyn FnMut()) -> (Duration, Duration, f64) {
    const ROUNDS: usize = 31;
    const CALLS: u32 = 400;
    // Warm-up.
    per_call(CALLS, ours);
    per_call(CALLS, base);
    let (mut o, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (to, tb) = if round % 2 == 0 {
            let to = per_call(CALLS, ours);
            (to, per_call(CALLS, base))
        } else {
            let tb = per_call(CALLS, base);
            (per_call(CALLS, ours), tb)
        };
        o.push(to);
        b.push(tb);
        r.push(to.as_secs_f64() / tb.as_secs_f64());
    }
    o.sort();
    b.sort();
    r.sort_by(f64::total_cmp);
    (o[ROUNDS / 2], b[ROUNDS / 2], r[ROUNDS / 2])
}

fn report(what: &str, base: &str, (o, b, r): (Duration, Duration, f64), note: &str) {
    println!(
        "{what}: {:.2} µs vs {base}: {:.2} µs -> {r:.2}x ({note})",
        o.as_secs_f64() * 1e6,
        b.as_secs_f64() * 1e6
    );
}

fn ratios() {
    println!("\nratios, median of 31 interleaved rounds of 400 calls:");
    let config = interleaved(&mut config_read4_case(), &mut unix_pingpong_case());
    report(
        "config_read4",
        "unix_pingpong_32_36",
        config,
        "target <= 1.2x",
    );
    let irq = interleaved(&mut irq_delivery_case(), &mut eventfd_pingpong_case());
    report("irq_delivery", "eventfd_pingpong", irq, "target <= 1.2x");
    let epoll = interleaved(&mut unix_pingpong_epoll_case(), &mut unix_pingpong_case());
    report(
        "unix_pingpong_epoll",
        "unix_pingpong_32_36",
        epoll,
        "what a readiness wait per message costs",
    );
}

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
#![allow(clippy::unwrap_used, clippy::single_range_in_vec_init)]

use divan::Bencher;
use pcibox_kit::fake::Fake;
use pcibox_kit::{Device, IrqKind};
use pcibox_vfio_user::{Client, ClientOptions, Server, ServerOptions};
use rustix::event::EventfdFlags;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

fn main() {
    divan::main();
}

/// A fake device served on one end of a socket pair; returns the client
/// device and the fake (device side).
fn setup() -> (Device, Fake) {
    let fake = Fake::new(0x8086, 0x10d3)
        .with_region(0, 0x1000, vec![])
        .with_irqs(IrqKind::Msix, 1);
    let (a, b) = UnixStream::pair().unwrap();
    let mut server = Server::new(
        Device::new(Box::new(fake.clone())).unwrap(),
        ServerOptions::default(),
    )
    .unwrap();
    std::thread::spawn(move || {
        server.serve_connection(b);
    });
    let client = Client::from_stream(a, "bench".into(), ClientOptions::default()).unwrap();
    (Device::new(Box::new(client)).unwrap(), fake)
}

#[divan::bench]
fn config_read4(b: Bencher) {
    let (dev, _fake) = setup();
    b.bench_local(|| dev.config_read32(0).unwrap());
}

#[divan::bench]
fn unix_pingpong_32_36(b: Bencher) {
    let (mut a, mut peer) = UnixStream::pair().unwrap();
    std::thread::spawn(move || {
        let mut req = [0u8; 32];
        let reply = [0u8; 36];
        while peer.read_exact(&mut req).is_ok() {
            if peer.write_all(&reply).is_err() {
                return;
            }
        }
    });
    let req = [0u8; 32];
    let mut reply = [0u8; 36];
    b.bench_local(|| {
        a.write_all(&req).unwrap();
        a.read_exact(&mut reply).unwrap();
    });
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

#[divan::bench]
fn irq_delivery(b: Bencher) {
    let (dev, fake) = setup();
    let irqs = dev.enable_interrupts(IrqKind::Msix, 1).unwrap();
    let kick = eventfd();
    let k = kick.clone();
    // Device side: each kick raises the interrupt.
    std::thread::spawn(move || loop {
        read_efd(&k);
        fake.trigger(0);
    });
    let v = irqs.vector(0).unwrap();
    b.bench_local(|| {
        write_efd(&kick);
        assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);
    });
}

#[divan::bench]
fn eventfd_pingpong(b: Bencher) {
    let (ping, pong) = (eventfd(), eventfd());
    let (p, q) = (ping.clone(), pong.clone());
    std::thread::spawn(move || loop {
        read_efd(&p);
        write_efd(&q);
    });
    b.bench_local(|| {
        write_efd(&ping);
        read_efd(&pong);
    });
}

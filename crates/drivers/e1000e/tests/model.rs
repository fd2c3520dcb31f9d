//! The driver against a model of the 82574L (`e1000_model`, written on the
//! device-model seam, `pcibox-model`): it clears CTRL.RST, answers EERD,
//! consumes the transmit ring when TDT is written and loops frames back
//! into the receive ring, clearing IMS before each MSI-X interrupt the way
//! auto-clear does. The guest tests run the same driver against QEMU's
//! e1000e; this checks the ring and interrupt logic where every step can be
//! observed. A device without the model's behaviour is the test fake.

mod e1000_model;

use e1000_model::{E1000Model, BAR0};
use e1000_spec::regs;
use pcibox_e1000e::net::PingOptions;
use pcibox_e1000e::{Config, E1000e, Error, IrqPreference, Ready, Wake};
use pcibox_kit::{Device, IrqKind, Region};
use pcibox_model::fake::Fake;
use pcibox_model::ModelBackend;
use std::time::{Duration, Instant};

/// A device with the 82574L's IDs and BAR 0 but no behaviour: registers
/// are plain memory.
fn fake(vendor: u16, device: u16) -> Fake {
    Fake::new(vendor, device)
        .with_region(0, BAR0, std::iter::once(0..BAR0).collect())
        .with_irqs(IrqKind::Msix, 5)
        .with_irqs(IrqKind::Intx, 1)
}

fn r(regs: &Region, off: u32) -> u32 {
    regs.read32(off.into()).expect("register read")
}

fn frame(mac: [u8; 6], i: u8, len: usize) -> Vec<u8> {
    let mut f = vec![i; len];
    f[0..6].copy_from_slice(&mac);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x88, 0xB5]);
    f
}

fn config(irq: IrqPreference, ring: u32) -> Config {
    Config {
        irq,
        rx_ring: ring,
        tx_ring: ring,
        loopback: true,
        ..Config::default()
    }
}

fn open_with_model(irq: IrqPreference) -> (ModelBackend<E1000Model>, E1000e) {
    let model = e1000_model::backend();
    let dev = Device::new(Box::new(model.clone())).expect("device");
    let nic = E1000e::open(dev, config(irq, 16)).expect("bring-up against the model");
    (model, nic)
}

fn receive_all(nic: &mut E1000e, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < want && start.elapsed() < Duration::from_secs(5) {
        nic.receive_batch(64, &mut |f| got.push(f.to_vec()))
            .expect("receive");
        if got.len() < want {
            nic.wait(Duration::from_millis(100)).expect("wait");
        }
    }
    got
}

#[test]
fn wrong_device_is_refused_with_its_ids() {
    let dev = Device::new(Box::new(fake(0x1b36, 0x0010))).expect("device");
    let err = E1000e::open(dev, Config::default()).expect_err("an NVMe is no NIC");
    assert!(matches!(
        err,
        Error::NotE1000e {
            vendor: 0x1b36,
            device: 0x0010,
            ..
        }
    ));
    assert!(err.to_string().contains("not an Intel 82574L"), "{err}");
}

#[test]
fn reset_that_never_completes_is_a_timeout_not_a_hang() {
    let dev = Device::new(Box::new(fake(0x8086, 0x10D3))).expect("device");
    let start = Instant::now();
    let err = E1000e::open(dev, Config::default()).expect_err("nobody clears CTRL.RST");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn msix_batches_loop_back_and_ims_is_rearmed() {
    let (model, mut nic) = open_with_model(IrqPreference::Msix);
    assert_eq!(
        nic.mac().to_string(),
        "52:54:00:12:34:56",
        "MAC from the EEPROM"
    );
    assert_eq!(model.with(|m| m.eeprom_reads), 3);
    assert_eq!(model.irq().enabled(), Some(IrqKind::Msix));
    let regs = nic.device().region(0).expect("bar0");
    let ivar = regs::Ivar::decode(r(&regs, regs::IVAR));
    assert_eq!(
        (ivar.rxq0, ivar.txq0, ivar.other),
        (Some(0), Some(1), Some(2))
    );

    let mac = nic.mac().0;
    let frames: Vec<Vec<u8>> = (0..10)
        .map(|i| frame(mac, i, 60 + usize::from(i)))
        .collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(nic.transmit_batch(&refs).expect("tx"), 10);
    let got = receive_all(&mut nic, 10);
    assert_eq!(got, frames, "frames come back whole and in order");
    // The model cleared IMS before raising the vector; the driver re-armed
    // it when it serviced the interrupt (now, if the frames beat the wait).
    nic.wait(Duration::from_millis(200)).expect("wait");
    let ims = r(&regs, regs::IMS);
    assert_ne!(
        ims & regs::Interrupts::RXQ0.bits(),
        0,
        "IMS re-armed: {ims:#x}"
    );
    let stats = nic.stats().expect("stats");
    assert!(stats.vector_count("rx").unwrap_or(0) > 0, "{stats:?}");
    assert_eq!((stats.rx_frames, stats.tx_frames), (10, 10));
    assert_eq!(nic.tx_reclaim().expect("reclaim"), 0);

    // A batch larger than the ring: only the free slots (len - 1) are taken.
    let many: Vec<Vec<u8>> = (0..40).map(|i| frame(mac, i, 64)).collect();
    let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
    let n = nic.transmit_batch(&refs).expect("tx");
    assert!((1..=15).contains(&n), "{n}");

    assert!(matches!(
        nic.transmit_batch(&[&[]]),
        Err(Error::FrameSize { len: 0, .. })
    ));
    let big = vec![0u8; 4000];
    assert!(matches!(
        nic.transmit_batch(&[&big]),
        Err(Error::FrameSize { len: 4000, .. })
    ));

    nic.close().expect("quiesce");
    assert_eq!(model.irq().enabled(), None, "interrupts off after teardown");
    assert_eq!(model.dma().window_count(), 0, "every DMA mapping removed");
    assert_eq!(model.dma().faults(), 0);
}

#[test]
fn hostile_receive_length_is_dropped_not_trusted() {
    let (model, mut nic) = open_with_model(IrqPreference::Poll);
    model.with(|m| m.corrupt_next = 2);
    let mac = nic.mac().0;
    let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(mac, i, 100)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(nic.transmit_batch(&refs).expect("tx"), 5);
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < 3 && start.elapsed() < Duration::from_secs(5) {
        if nic.wait(Duration::from_millis(100)).expect("wait") == Wake::Event(0) {
            nic.receive_batch(64, &mut |f| got.push(f.to_vec()))
                .expect("receive");
        }
    }
    assert_eq!(got, frames[2..].to_vec());
    assert_eq!(nic.stats().expect("stats").rx_errors, 2);
}

#[test]
fn intx_mode_and_repeated_bring_up() {
    let model = e1000_model::backend();
    for _ in 0..5 {
        let dev = Device::new(Box::new(model.clone())).expect("device");
        let mut nic = E1000e::open(dev, config(IrqPreference::Intx, 8)).expect("bring-up");
        assert_eq!(model.irq().enabled(), Some(IrqKind::Intx));
        let mac = nic.mac().0;
        let f = frame(mac, 1, 64);
        assert_eq!(nic.transmit_batch(&[&f]).expect("tx"), 1);
        assert_eq!(receive_all(&mut nic, 1), vec![f]);
        drop(nic);
        assert_eq!(model.irq().enabled(), None);
        assert_eq!(model.dma().window_count(), 0);
    }
}

#[test]
fn the_model_served_over_vfio_user_runs_the_driver_unchanged() {
    use pcibox_vfio_user::{Client, ClientOptions, Server, ServerOptions};
    let model = e1000_model::backend();
    let path =
        std::env::temp_dir().join(format!("pcibox-e1000e-model-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let mut server =
        Server::new(Box::new(model.clone()), ServerOptions::default()).expect("server");
    let serving = std::thread::spawn(move || server.run_sessions(&listener, Some(1)));
    let client = Client::connect(&path, ClientOptions::default()).expect("connect");
    let dev = Device::new(Box::new(client)).expect("device");
    let mut nic = E1000e::open(dev, config(IrqPreference::Msix, 16)).expect("bring-up");
    // The model reaches the client's memory through the windows the server
    // mapped into its DMA space, and signals the client's eventfds.
    assert!(model.dma().window_count() > 0);
    assert_eq!(model.irq().enabled(), Some(IrqKind::Msix));
    let mac = nic.mac().0;
    let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(mac, i, 100)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(nic.transmit_batch(&refs).expect("tx"), 5);
    assert_eq!(receive_all(&mut nic, 5), frames);
    // The receive interrupt, unless receiving already waited for it.
    nic.wait(Duration::from_millis(200)).expect("wait");
    assert!(nic.stats().expect("stats").vector_count("rx").unwrap_or(0) > 0);
    nic.close().expect("quiesce");
    serving.join().expect("server thread").expect("session");
    let _ = std::fs::remove_file(&path);
    // The session's teardown left nothing behind in the model.
    assert_eq!(model.dma().window_count(), 0);
    assert_eq!(model.irq().enabled(), None);
    assert_eq!(model.dma().faults(), 0);
    assert_eq!(model.with(|m| m.tx_frames), 5);
}

#[test]
fn frames_are_lent_in_place_and_a_full_ring_returns_at_once() {
    let (model, mut nic) = open_with_model(IrqPreference::Msix);
    assert_eq!(nic.interrupt_fds().len(), 3, "rx, tx and other vectors");
    let mac = nic.mac().0;
    assert!(nic
        .rx(|_| unreachable!("no frame yet"))
        .expect("rx")
        .is_none());
    // Queued without the doorbell, the device sees nothing: 15 of 16 slots
    // fill, then the ring is full and the closure is not even called.
    for i in 0..15u8 {
        let queued = nic
            .tx_queue(64, |f| {
                assert!(f.iter().all(|&b| b == 0), "lent zeroed");
                f.copy_from_slice(&frame(mac, i, 64));
                i
            })
            .expect("queue");
        assert_eq!(queued, Some(i));
    }
    let start = Instant::now();
    let full = nic.tx(64, |_| unreachable!("ring full: not called"));
    assert!(matches!(full, Ok(None)), "{full:?}");
    assert!(start.elapsed() < Duration::from_millis(50), "no sleep");
    assert!(!nic
        .wait_for(Ready::TxSpace, Duration::from_millis(20))
        .expect("wait"));
    nic.tx_kick().expect("kick");
    assert!(nic
        .wait_for(Ready::TxSpace, Duration::from_secs(5))
        .expect("wait for space"));
    // The 15 come back whole and in order, lent one at a time.
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < 15 && start.elapsed() < Duration::from_secs(5) {
        match nic.rx(|f| f.to_vec()).expect("rx") {
            Some(f) => got.push(f),
            None => {
                nic.wait_for(Ready::Rx, Duration::from_millis(100))
                    .expect("wait");
            }
        }
    }
    let want: Vec<Vec<u8>> = (0..15).map(|i| frame(mac, i, 64)).collect();
    assert_eq!(got, want);
    // One at a time with the doorbell each.
    assert_eq!(
        nic.tx(100, |f| f.copy_from_slice(&frame(mac, 99, 100)))
            .expect("tx"),
        Some(())
    );
    assert!(nic
        .wait_for(Ready::Rx, Duration::from_secs(5))
        .expect("wait"));
    assert_eq!(
        nic.rx(|f| f.to_vec()).expect("rx"),
        Some(frame(mac, 99, 100))
    );
    assert!(matches!(
        nic.tx(0, |_| ()),
        Err(Error::FrameSize { len: 0, .. })
    ));
    assert!(matches!(
        nic.tx(4000, |_| ()),
        Err(Error::FrameSize { len: 4000, .. })
    ));
    let stats = nic.stats().expect("stats");
    assert_eq!((stats.tx_frames, stats.rx_frames), (16, 16));
    assert_eq!(stats.tx_ring_full, 1);
    nic.close().expect("quiesce");
    assert_eq!(model.dma().window_count(), 0);
}

#[test]
fn both_halves_at_once_bridge_frames_without_a_copy_of_their_own() {
    let (model, mut nic) = open_with_model(IrqPreference::Poll);
    assert!(nic.interrupt_fds().is_empty());
    model.with(|m| m.corrupt_next = 1);
    let mac = nic.mac().0;
    let first: Vec<Vec<u8>> = (0..6).map(|i| frame(mac, i, 80)).collect();
    let refs: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
    assert_eq!(nic.transmit_batch(&refs).expect("tx"), 6);
    // A bridge: every received frame goes straight back out, its last byte
    // changed, from the receive half into the transmit half.
    let mut bridged = 0;
    let start = Instant::now();
    while bridged < 5 && start.elapsed() < Duration::from_secs(5) {
        let (mut rx, mut tx) = nic.split();
        let moved = rx
            .rx(|f| {
                tx.tx(f.len(), |out| {
                    out.copy_from_slice(f);
                    out[f.len() - 1] ^= 0xff;
                })
            })
            .expect("rx");
        match moved {
            Some(sent) => {
                assert_eq!(sent.expect("tx"), Some(()));
                bridged += 1;
            }
            None => {
                nic.wait_for(Ready::Rx, Duration::from_millis(100))
                    .expect("wait");
            }
        }
    }
    assert_eq!(bridged, 5, "the damaged one was dropped, not bridged");
    let back = receive_all(&mut nic, 5);
    let want: Vec<Vec<u8>> = first[1..]
        .iter()
        .map(|f| {
            let mut f = f.clone();
            *f.last_mut().expect("not empty") ^= 0xff;
            f
        })
        .collect();
    assert_eq!(back, want);
    assert_eq!(nic.stats().expect("stats").rx_errors, 1);
}

#[test]
fn smoltcp_pings_itself_through_the_adapter() {
    // MAC loopback: smoltcp's ARP request for its own address, its reply,
    // the echo request and the echo reply all cross both rings.
    let (_model, mut nic) = open_with_model(IrqPreference::Msix);
    let cidr = pcibox_e1000e::net::parse_cidr("10.9.8.7/24").expect("cidr");
    let opts = PingOptions {
        count: 3,
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(3),
        size: 200,
    };
    let report =
        pcibox_e1000e::net::ping(&mut nic, cidr, None, "10.9.8.7".parse().expect("ip"), opts)
            .expect("ping");
    assert_eq!((report.sent, report.received), (3, 3), "{report:?}");
    let stats = nic.stats().expect("stats");
    assert!(
        stats.tx_frames >= 5 && stats.rx_frames >= 5,
        "the frames went through the device: {stats:?}"
    );
}

//! The client library against an in-process daemon: the broker publishes a
//! domain's PCI devices in pciback's layout, the driver domain finds them on
//! its own unprivileged socket, and both step through the XenBus states.
#![allow(clippy::unwrap_used)]

use pcibox_xenstore::client::Client;
use pcibox_xenstore::daemon::{Config, Daemon, DaemonThread};
use pcibox_xenstore::wire::Errno;
use pcibox_xenstore::xenbus::{self, PciDevice, XenbusState};
use std::path::PathBuf;
use std::time::Duration;

struct Running {
    dir: PathBuf,
    _daemon: DaemonThread,
}

impl Running {
    fn start(tag: &str) -> Running {
        let dir = std::env::temp_dir().join(format!("pcibox-xs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = Config::new(dir.join("socket"));
        cfg.domain_sockets = vec![(5, dir.join("dom5"))];
        cfg.state_dir = Some(dir.join("state"));
        Running {
            _daemon: Daemon::spawn(&cfg).unwrap(),
            dir,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn broker_publishes_pci_devices_and_domain_connects() {
    let r = Running::start("pci");
    let mut broker = Client::connect(&r.dir.join("socket")).unwrap();
    let mut nic = PciDevice::new("0000:00:05.0");
    nic.vdevfn = Some(0x28);
    let devices = vec![PciDevice::new("0000:00:04.0"), nic];
    xenbus::publish_pci_backend(&mut broker, 0, 5, "driver-domain", &devices).unwrap();
    let be = xenbus::pci_backend_dir(0, 5);
    assert_eq!(
        broker
            .read_string(0, &format!("{be}/dev-1"))
            .unwrap()
            .as_deref(),
        Some("0000:00:05.0")
    );
    assert_eq!(
        broker
            .read_string(0, &format!("{be}/vdevfn-1"))
            .unwrap()
            .as_deref(),
        Some("28")
    );

    // The driver domain, on its own socket, finds its devices.
    let mut dom = Client::connect(&r.dir.join("dom5")).unwrap();
    let fe = xenbus::read_pci_frontend(&mut dom).unwrap();
    assert_eq!(fe.backend, be);
    assert_eq!(fe.backend_id, 0);
    assert_eq!(fe.devices, devices);
    // It may read the backend but not change it, nor see other domains.
    assert_eq!(
        dom.write(0, &format!("{be}/dev-0"), b"0000:ff:00.0")
            .unwrap_err()
            .errno(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        dom.read(0, "/local/domain/0/backend").unwrap_err().errno(),
        Some(Errno::EACCES)
    );

    // Handshake: backend InitWait → frontend Initialised → backend
    // Connected → frontend Connected, each side waiting with a watch.
    let fe_dir = xenbus::pci_frontend_dir(5);
    let be2 = be.clone();
    let fe_dir2 = fe_dir.clone();
    let sock = r.dir.join("socket");
    let backend = std::thread::spawn(move || {
        let mut b = Client::connect(&sock).unwrap();
        xenbus::switch_state(&mut b, &be2, XenbusState::InitWait).unwrap();
        xenbus::wait_state(&mut b, &fe_dir2, Duration::from_secs(20), |s| {
            s == XenbusState::Initialised
        })
        .unwrap();
        xenbus::switch_state(&mut b, &be2, XenbusState::Connected).unwrap();
    });
    xenbus::wait_state(&mut dom, &be, Duration::from_secs(20), |s| {
        s == XenbusState::InitWait
    })
    .unwrap();
    xenbus::switch_state(&mut dom, "device/pci/0", XenbusState::Initialised).unwrap();
    let s = xenbus::wait_state(&mut dom, &be, Duration::from_secs(20), |s| {
        s == XenbusState::Connected
    })
    .unwrap();
    assert_eq!(s, XenbusState::Connected);
    xenbus::switch_state(&mut dom, "device/pci/0", XenbusState::Connected).unwrap();
    backend.join().unwrap();
    assert_eq!(
        xenbus::read_state(&mut broker, &fe_dir).unwrap(),
        XenbusState::Connected
    );
}

#[test]
fn transactions_retry_and_watches_survive_reconnect() {
    let r = Running::start("tx");
    let sock = r.dir.join("socket");
    let mut a = Client::connect(&sock).unwrap();
    let mut b = Client::connect(&sock).unwrap();
    a.write(0, "/counter", b"0").unwrap();
    // `transaction` retries when another client interferes the first time.
    let mut first = true;
    a.transaction(|c, tx| {
        let v: u32 = c.read_string(tx, "/counter")?.unwrap().parse().unwrap();
        if first {
            first = false;
            b.write(0, "/counter", b"10").unwrap();
        }
        c.write(tx, "/counter", (v + 1).to_string().as_bytes())
    })
    .unwrap();
    assert_eq!(a.read_string(0, "/counter").unwrap().as_deref(), Some("11"));

    a.watch("/w", b"t").unwrap();
    assert_eq!(
        a.wait_event(Some(Duration::from_secs(5))).unwrap(),
        Some(("/w".to_string(), b"t".to_vec()))
    );
    a.reconnect().unwrap();
    assert_eq!(
        a.wait_event(Some(Duration::from_secs(5))).unwrap(),
        Some(("/w".to_string(), b"t".to_vec())),
        "re-registered"
    );
    b.write(0, "/w/x", b"1").unwrap();
    assert_eq!(
        a.wait_event(Some(Duration::from_secs(5))).unwrap(),
        Some(("/w/x".to_string(), b"t".to_vec()))
    );
    assert_eq!(a.wait_event(Some(Duration::from_millis(50))).unwrap(), None);
}

//! Shared set-up: a fake device served over a Unix socket.
#![allow(dead_code, clippy::unwrap_used, clippy::single_range_in_vec_init)]

use pcibox_kit::{Device, IrqKind};
use pcibox_model::fake::Fake;
use pcibox_vfio_user::{Client, ClientOptions, Server, ServerDma, ServerOptions, StopHandle};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

/// A fake e1000e-like device: BAR0 16 KiB (mappable), BAR2 4 KiB (trapped),
/// 4 MSI-X vectors, INTx.
pub fn fake() -> Fake {
    Fake::new(0x8086, 0x10d3)
        .with_region(0, 0x4000, vec![0..0x4000])
        .with_region(2, 0x1000, vec![])
        .with_irqs(IrqKind::Msix, 4)
        .with_irqs(IrqKind::Intx, 1)
}

pub struct Running {
    pub path: PathBuf,
    pub stop: StopHandle,
    pub dma: ServerDma,
    pub thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

static N: AtomicU32 = AtomicU32::new(0);

/// Serves `fake` on a fresh socket path in a thread.
pub fn serve(fake: &Fake, opts: ServerOptions) -> Running {
    let path = std::env::temp_dir().join(format!(
        "pcibox-vu-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let mut server = Server::new(Box::new(fake.clone()), opts).unwrap();
    let stop = server.stop_handle();
    let dma = server.dma();
    let thread = std::thread::spawn(move || {
        server.run(&listener).unwrap();
    });
    Running {
        path,
        stop,
        dma,
        thread: Some(thread),
    }
}

/// A kit device reached through a vfio-user client.
pub fn connect(r: &Running, opts: ClientOptions) -> Device {
    let client = Client::connect(&r.path, opts).unwrap();
    Device::new(Box::new(client)).unwrap()
}

/// Waits (bounded) until `f` holds.
pub fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

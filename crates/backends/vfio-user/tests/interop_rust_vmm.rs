//! Interoperability with a vfio-user implementation nobody here wrote: the rust-vmm `vfio_user`
//! crate (0.1.7, the one cloud-hypervisor uses). Its client drives our server on the kit's fake
//! device, and our client — as a kit backend — drives its server over a small device written
//! here against its `ServerBackend` trait.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use pcibox_kit::{Device, IrqKind};
use pcibox_vfio_user::{Client, ClientOptions, ServerOptions};
use rustix::event::{eventfd, EventfdFlags};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, ServerBackend, ServerRegion};

const CONFIG: u32 = 7;
const MSIX: u32 = 2;

fn read_efd(fd: impl AsFd) -> u64 {
    let mut b = [0u8; 8];
    rustix::io::read(fd, &mut b).unwrap();
    u64::from_ne_bytes(b)
}

#[test]
fn their_client_drives_our_server() {
    let fake = fake();
    let running = serve(&fake, ServerOptions::default());
    let mut c = vfio_user::Client::new(&running.path).unwrap();

    // Region info as they parsed it.
    assert_eq!(c.region(0).map(|r| r.size), Some(0x4000));
    assert_eq!(c.region(2).map(|r| r.size), Some(0x1000));
    assert!(c.region(CONFIG).is_some_and(|r| r.size >= 256));

    // Config space and a trapped BAR, both ways.
    let mut id = [0u8; 4];
    c.region_read(CONFIG, 0, &mut id).unwrap();
    assert_eq!(u32::from_le_bytes(id), 0x10d3_8086);
    let traps = fake.region_traps();
    c.region_write(2, 0x20, &[1, 2, 3, 4]).unwrap();
    let mut back = [0u8; 4];
    c.region_read(2, 0x20, &mut back).unwrap();
    assert_eq!(back, [1, 2, 3, 4]);
    assert!(
        fake.region_traps() >= traps + 2,
        "BAR2 accesses did not reach the device"
    );

    // MSI-X through their eventfd.
    assert_eq!(c.get_irq_info(MSIX).unwrap().count, 4);
    let efd = eventfd(0, EventfdFlags::CLOEXEC).unwrap();
    c.set_irqs(
        MSIX,
        VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        0,
        1,
        &[efd.as_raw_fd()],
    )
    .unwrap();
    assert_eq!(fake.irq_enabled(), Some(IrqKind::Msix));
    assert!(fake.trigger(0));
    assert_eq!(read_efd(&efd), 1);

    // DMA into their memory file, at the IOVA they mapped it.
    let mem = rustix::fs::memfd_create("interop-dma", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&mem, 0x2000).unwrap();
    c.dma_map(0, 0x10_0000, 0x2000, mem.as_raw_fd()).unwrap();
    assert_eq!(running.dma.window_count(), 1);
    running.dma.write(0x10_0010, b"from the device").unwrap();
    let mem = File::from(mem);
    let mut seen = [0u8; 15];
    mem.read_exact_at(&mut seen, 0x10).unwrap();
    assert_eq!(&seen, b"from the device");
    mem.write_all_at(b"to the device", 0x1000).unwrap();
    let mut got = [0u8; 13];
    running.dma.read(0x10_1000, &mut got).unwrap();
    assert_eq!(&got, b"to the device");
    c.dma_unmap(0x10_0000, 0x2000).unwrap();
    assert_eq!(running.dma.window_count(), 0);

    let resets = fake.resets();
    c.reset().unwrap();
    assert_eq!(fake.resets(), resets + 1);

    // Gone: the server turns the interrupts off and is ready for the next client.
    c.shutdown().unwrap();
    drop(c);
    eventually("interrupts off after their client left", || {
        fake.irq_enabled().is_none()
    });
    let mut again = vfio_user::Client::new(&running.path).unwrap();
    again.region_read(CONFIG, 0, &mut id).unwrap();
    assert_eq!(u32::from_le_bytes(id), 0x10d3_8086);
}

/// The device behind their server: config space, a 4 KiB BAR0 of memory, the DMA files and
/// interrupt eventfds it was given.
#[derive(Default)]
struct Model {
    config: Vec<u8>,
    bar0: Vec<u8>,
    maps: Vec<(u64, u64, u64, File)>,
    /// MSI-X vector → eventfd.
    irqs: Vec<Option<File>>,
    resets: u32,
}

#[derive(Clone)]
struct Shared(Arc<Mutex<Model>>);

fn bounds(len: usize, offset: u64, n: usize) -> std::io::Result<std::ops::Range<usize>> {
    let start = usize::try_from(offset).map_err(std::io::Error::other)?;
    match start.checked_add(n) {
        Some(end) if end <= len => Ok(start..end),
        _ => Err(std::io::ErrorKind::InvalidInput.into()),
    }
}

impl ServerBackend for Shared {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> std::io::Result<()> {
        let m = self.0.lock().unwrap();
        let mem = match region {
            CONFIG => &m.config,
            0 => &m.bar0,
            _ => return Err(std::io::ErrorKind::InvalidInput.into()),
        };
        data.copy_from_slice(&mem[bounds(mem.len(), offset, data.len())?]);
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut m = self.0.lock().unwrap();
        let mem = match region {
            CONFIG => &mut m.config,
            0 => &mut m.bar0,
            _ => return Err(std::io::ErrorKind::InvalidInput.into()),
        };
        let r = bounds(mem.len(), offset, data.len())?;
        mem[r].copy_from_slice(data);
        Ok(())
    }

    fn dma_map(
        &mut self,
        _flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> std::io::Result<()> {
        let fd = fd.ok_or(std::io::ErrorKind::InvalidInput)?;
        self.0
            .lock()
            .unwrap()
            .maps
            .push((address, size, offset, fd));
        Ok(())
    }

    fn dma_unmap(&mut self, _flags: DmaUnmapFlags, address: u64, size: u64) -> std::io::Result<()> {
        let mut m = self.0.lock().unwrap();
        let before = m.maps.len();
        m.maps.retain(|(a, s, _, _)| !(*a == address && *s == size));
        if m.maps.len() == before {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().resets += 1;
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        _flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> std::io::Result<()> {
        if index != MSIX {
            return Ok(());
        }
        // Vectors start..start+count: one eventfd each, or none (count 0: all off).
        let mut m = self.0.lock().unwrap();
        if count == 0 {
            m.irqs.clear();
            return Ok(());
        }
        if fds.len() != count as usize {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        for (i, fd) in (start as usize..).zip(fds) {
            if m.irqs.len() <= i {
                m.irqs.resize_with(i + 1, || None);
            }
            m.irqs[i] = Some(fd);
        }
        Ok(())
    }
}

impl Shared {
    /// The device writes guest memory at `iova` through the file it was given.
    fn dma_write(&self, iova: u64, data: &[u8]) {
        let m = self.0.lock().unwrap();
        let (addr, _, offset, file) = m
            .maps
            .iter()
            .find(|(a, s, _, _)| (*a..a + s).contains(&iova))
            .expect("IOVA not mapped");
        file.write_all_at(data, offset + (iova - addr)).unwrap();
    }
}

fn their_server(path: &Path) -> (vfio_user::Server, Shared) {
    let mut config = vec![0u8; 256];
    config[0..4].copy_from_slice(&0x10d3_8086u32.to_le_bytes());
    config[8..12].copy_from_slice(&0x0200_0000u32.to_le_bytes()); // Ethernet controller
    let model = Shared(Arc::new(Mutex::new(Model {
        config,
        bar0: vec![0; 0x1000],
        ..Model::default()
    })));
    let regions = (0..9u32)
        .map(|index| {
            let size = match index {
                0 => 0x1000,
                CONFIG => 256,
                _ => 0,
            };
            let flags = if size > 0 {
                VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
            } else {
                0
            };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: std::mem::size_of::<vfio_region_info>() as u32,
                    flags,
                    index,
                    cap_offset: 0,
                    size,
                    offset: 0,
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect();
    let irqs = [1, 0, 2, 0, 0]
        .into_iter()
        .enumerate()
        .map(|(index, count)| IrqInfo {
            index: index as u32,
            flags: VFIO_IRQ_INFO_EVENTFD,
            count,
        })
        .collect();
    let server = vfio_user::Server::new(path, true, irqs, regions).unwrap();
    (server, model)
}

#[test]
fn our_client_drives_their_server() {
    let path = std::env::temp_dir().join(format!("pcibox-interop-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (server, model) = their_server(&path);
    let mut backend = model.clone();
    let thread = std::thread::spawn(move || server.run(&mut backend));

    let client = Client::connect(&path, ClientOptions::default()).unwrap();
    let dev = Device::new(Box::new(client)).unwrap();
    assert_eq!(dev.config_read32(0).unwrap(), 0x10d3_8086);

    // BAR0: posted writes, then a read behind them in the same stream.
    let bar0 = dev.region(0).unwrap();
    assert_eq!(bar0.size(), 0x1000);
    bar0.write32(0x40, 0xdead_beef).unwrap();
    bar0.write32(0x44, 0x0123_4567).unwrap();
    assert_eq!(bar0.read32(0x40).unwrap(), 0xdead_beef);
    assert_eq!(
        model.0.lock().unwrap().bar0[0x44..0x48],
        0x0123_4567u32.to_le_bytes()
    );

    // DMA: the device writes our buffer through the file our client passed.
    let buf = dev.alloc_dma(0x2000).unwrap();
    model.dma_write(buf.iova() + 0x1008, b"written by their device");
    let mut seen = [0u8; 23];
    buf.read(0x1008, &mut seen).unwrap();
    assert_eq!(&seen, b"written by their device");

    // MSI-X: the device signals the eventfd our client passed.
    let irqs = dev.enable_interrupts(IrqKind::Msix, 2).unwrap();
    {
        let m = model.0.lock().unwrap();
        assert_eq!(
            m.irqs.iter().flatten().count(),
            2,
            "eventfds handed to their device"
        );
        let fd = m.irqs[1].as_ref().unwrap();
        rustix::io::write(fd, &1u64.to_ne_bytes()).unwrap();
    }
    let v = irqs.vector(1).unwrap();
    assert_eq!(v.wait(Some(Duration::from_secs(5))).unwrap(), 1);

    dev.reset().unwrap();
    assert_eq!(model.0.lock().unwrap().resets, 1);

    drop(irqs);
    drop(buf);
    assert!(
        model.0.lock().unwrap().maps.is_empty(),
        "DMA_UNMAP did not reach their device"
    );
    // The last handle on the device closes the connection: their server returns.
    drop(bar0);
    drop(dev);
    eventually("their server to see the connection close", || {
        thread.is_finished()
    });
    thread.join().unwrap().unwrap();
}

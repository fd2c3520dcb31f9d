//! The driver proper: bring-up, link, batch receive/transmit, interrupts and
//! waiting, statistics and quiesce-before-teardown. The per-frame interface
//! is in `frames.rs`.

use crate::error::{Error, Result};
use crate::frames::{Ready, Rx, Tx};
use crate::rings::{RxBatch, RxRing, TxRing};
use crate::stats::Stats;
use e1000_spec::regs::{self, Ctrl, CtrlExt, Interrupts as Cause, Ivar, Rctl, Status, Tctl};
use e1000_spec::{mac_from_eeprom_words, mac_from_ral_rah, ral_rah_from_mac, MacAddress};
use pcibox_kit::{Device, Interrupts, IrqKind, Region};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// Intel's PCI vendor ID.
pub const VENDOR_INTEL: u16 = 0x8086;
/// The 82574L's device ID (what QEMU's `e1000e` presents).
pub const DEVICE_82574L: u16 = 0x10D3;

/// How long interrupts stay masked before MSI-X may be disabled: QEMU 7.2's
/// e1000e aborts the VM if an interrupt throttling timer (EITR, ≥ 128 µs)
/// fires after MSI-X was turned off, so let every timer run out first.
pub const QUIESCE_WAIT: Duration = Duration::from_millis(5);

/// MSI-X vector numbers (IVAR entries).
const VEC_RX: u8 = 0;
const VEC_TX: u8 = 1;
const VEC_OTHER: u8 = 2;

/// Interrupt delivery the driver should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqPreference {
    /// MSI-X if the device offers it, else INTx, else polling.
    Auto,
    /// MSI-X (one vector each for receive, transmit and other causes).
    Msix,
    /// Legacy INTx, with the host's automask and the driver's EOI.
    Intx,
    /// No interrupts: the driver polls descriptor status.
    Poll,
}

/// The interrupt delivery in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqMode {
    /// MSI-X with `vectors` vectors.
    Msix {
        /// Vectors enabled (1 or 3).
        vectors: u32,
    },
    /// INTx.
    Intx,
    /// Polling.
    Poll,
}

impl std::fmt::Display for IrqMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IrqMode::Msix { .. } => f.write_str("msix"),
            IrqMode::Intx => f.write_str("intx"),
            IrqMode::Poll => f.write_str("poll"),
        }
    }
}

/// Bring-up options.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Interrupt delivery.
    pub irq: IrqPreference,
    /// Receive descriptors (multiple of 8, 8..=4096).
    pub rx_ring: u32,
    /// Transmit descriptors (multiple of 8, 8..=4096).
    pub tx_ring: u32,
    /// MAC loopback (RCTL.LBM): transmitted frames come back to the
    /// receiver instead of going to the wire. For benchmarks.
    pub loopback: bool,
    /// Time between masking interrupts and disabling them at teardown
    /// ([`QUIESCE_WAIT`]). Only a test demonstrating the QEMU abort sets it
    /// lower.
    pub quiesce_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            irq: IrqPreference::Auto,
            rx_ring: 128,
            tx_ring: 128,
            loopback: false,
            quiesce_wait: QUIESCE_WAIT,
        }
    }
}

/// What [`E1000e::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// An interrupt arrived (MSI-X vector index, or 0 for INTx), or in
    /// polled mode a receive descriptor completed.
    Event(usize),
    /// The timeout passed.
    Timeout,
}

/// An 82574L brought up on a kit [`Device`].
#[derive(Debug)]
pub struct E1000e {
    // Field order is drop order: interrupts off before the rings' DMA
    // memory goes, the device (bus master off, mappings removed) last.
    irq: Option<Interrupts>,
    rx: RxRing,
    tx: TxRing,
    regs: Region,
    device: Device,
    mode: IrqMode,
    /// IMS value re-armed after every interrupt.
    ims: u32,
    mac: MacAddress,
    stats: Stats,
    quiesce_wait: Duration,
    quiesced: bool,
}

impl E1000e {
    /// Checks the device is an 82574L, resets it and brings it up: MAC
    /// address, receive and transmit rings, interrupts as `config.irq` asks.
    /// Does not wait for the link (see [`E1000e::wait_link`]).
    pub fn open(device: Device, config: Config) -> Result<E1000e> {
        let (vendor, dev_id) = device.ids()?;
        if vendor != VENDOR_INTEL || dev_id != DEVICE_82574L {
            return Err(Error::NotE1000e {
                name: device.name().to_string(),
                vendor,
                device: dev_id,
            });
        }
        device.enable_memory_and_bus_master()?;
        let regs = device.region(0)?;
        // Quiet the device before anything else: whatever a previous owner
        // left running (interrupts, DMA into memory that is gone) stops here.
        stop(&regs)?;
        reset(&regs)?;
        let mac = read_mac(&regs)?;
        let rx = RxRing::new(&device, config.rx_ring)?;
        let tx = TxRing::new(&device, config.tx_ring)?;
        let mut nic = E1000e {
            irq: None,
            rx,
            tx,
            regs,
            device,
            mode: IrqMode::Poll,
            ims: 0,
            mac,
            stats: Stats::default(),
            quiesce_wait: config.quiesce_wait,
            quiesced: false,
        };
        nic.configure(config.loopback)?;
        nic.setup_interrupts(config.irq)?;
        nic.stats.irq_mode = nic.mode.to_string();
        tracing::info!(name = nic.device.name(), %mac, mode = %nic.mode, "e1000e up");
        Ok(nic)
    }

    fn r32(&self, off: u32) -> Result<u32> {
        Ok(self.regs.read32(off.into())?)
    }

    fn w32(&self, off: u32, v: u32) -> Result<()> {
        Ok(self.regs.write32(off.into(), v)?)
    }

    fn configure(&mut self, loopback: bool) -> Result<()> {
        let (ral, rah) = ral_rah_from_mac(self.mac);
        self.w32(regs::ral(0), ral)?;
        self.w32(regs::rah(0), rah)?;
        for i in 1..16 {
            self.w32(regs::rah(i), 0)?;
        }
        for i in 0..regs::MTA_LEN {
            self.w32(regs::MTA + 4 * i, 0)?;
        }
        let ext = CtrlExt::from_bits_retain(self.r32(regs::CTRL_EXT)?) | CtrlExt::DRV_LOAD;
        self.w32(regs::CTRL_EXT, ext.bits())?;
        let ctrl = Ctrl::from_bits_retain(self.r32(regs::CTRL)?) | Ctrl::SLU;
        self.w32(regs::CTRL, ctrl.bits())?;
        // Legacy receive descriptors, no receive interrupt delay.
        self.w32(regs::RFCTL, 0)?;
        self.w32(regs::RDTR, 0)?;
        self.w32(regs::RADV, 0)?;
        self.w32(regs::TIDV, 0)?;
        self.w32(regs::TADV, 0)?;
        self.rx.program(&self.regs)?;
        self.tx.program(&self.regs)?;
        let tarc = self.r32(regs::TARC0)? | regs::TARC_ENABLE;
        self.w32(regs::TARC0, tarc)?;
        self.w32(regs::TCTL, Tctl::full_duplex_default().bits())?;
        // Accept our address and broadcast, strip the CRC, 2048-byte buffers.
        let mut rctl = Rctl::EN | Rctl::BAM | Rctl::SECRC | Rctl::RDMTS_QUARTER;
        if loopback {
            rctl |= Rctl::from_bits_retain(0b01 << 6); // LBM = MAC loopback
        }
        self.w32(regs::RCTL, rctl.bits())?;
        Ok(())
    }

    fn setup_interrupts(&mut self, pref: IrqPreference) -> Result<()> {
        let msix = self
            .device
            .irq_info(IrqKind::Msix)
            .map(|i| i.count)
            .unwrap_or(0);
        let intx = self
            .device
            .irq_info(IrqKind::Intx)
            .map(|i| i.count)
            .unwrap_or(0);
        let mode = match pref {
            IrqPreference::Auto if msix > 0 => IrqMode::Msix {
                vectors: msix.min(3),
            },
            IrqPreference::Auto if intx > 0 => IrqMode::Intx,
            IrqPreference::Auto | IrqPreference::Poll => IrqMode::Poll,
            IrqPreference::Msix if msix > 0 => IrqMode::Msix {
                vectors: msix.min(3),
            },
            IrqPreference::Intx if intx > 0 => IrqMode::Intx,
            IrqPreference::Msix => {
                return Err(Error::IrqMode("device offers no MSI-X vectors".into()))
            }
            IrqPreference::Intx => return Err(Error::IrqMode("device offers no INTx".into())),
        };
        match mode {
            IrqMode::Msix { vectors } => {
                // One vector per cause group if there are three, else all on 0.
                let (rx, tx, other) = if vectors >= 3 {
                    (VEC_RX, VEC_TX, VEC_OTHER)
                } else {
                    (0, 0, 0)
                };
                let ivar = Ivar {
                    rxq0: Some(rx),
                    txq0: Some(tx),
                    other: Some(other),
                    tx_every_writeback: true,
                    ..Ivar::default()
                };
                self.w32(regs::IVAR, ivar.encode()?)?;
                let causes = Cause::RXQ0 | Cause::TXQ0 | Cause::OTHER;
                // Auto-clear the causes when their vector fires. Without
                // CTRL_EXT.IAME this also clears them from IMS, hence the
                // re-arm in `service`.
                self.w32(regs::EIAC, causes.bits())?;
                self.device
                    .update_command(0, pcibox_kit::COMMAND_INTX_DISABLE)?;
                self.irq = Some(self.device.enable_interrupts(IrqKind::Msix, vectors)?);
                self.ims = (causes | Cause::LSC | Cause::RXO).bits();
                self.stats.vector_names = if vectors >= 3 {
                    vec!["rx".into(), "tx".into(), "other".into()]
                } else {
                    vec!["all".into()]
                };
            }
            IrqMode::Intx => {
                self.device
                    .update_command(0, pcibox_kit::COMMAND_INTX_DISABLE)?;
                self.irq = Some(self.device.enable_interrupts(IrqKind::Intx, 1)?);
                self.ims =
                    (Cause::RXT0 | Cause::TXDW | Cause::LSC | Cause::RXO | Cause::RXDMT0).bits();
                self.stats.vector_names = vec!["intx".into()];
            }
            IrqMode::Poll => {
                self.ims = 0;
                self.stats.vector_names = Vec::new();
            }
        }
        self.mode = mode;
        // Clear anything latched, then unmask.
        let icr = self.r32(regs::ICR)?;
        self.w32(regs::ICR, icr)?;
        if self.ims != 0 {
            self.w32(regs::IMS, self.ims)?;
        }
        Ok(())
    }

    /// The station address in use.
    pub fn mac(&self) -> MacAddress {
        self.mac
    }

    /// The interrupt delivery in use.
    pub fn irq_mode(&self) -> IrqMode {
        self.mode
    }

    /// The kit device (for its name and diagnostics).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Link up, and the speed in Mb/s.
    pub fn link(&self) -> Result<(bool, u32)> {
        let st = Status::from_bits_retain(self.r32(regs::STATUS)?);
        Ok((st.contains(Status::LU), st.speed_mbps()))
    }

    /// Waits up to `timeout` for the link to come up.
    pub fn wait_link(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.link()?.0 {
                return Ok(());
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(Error::LinkDown {
                    ms: timeout.as_millis() as u64,
                });
            }
            // A link change raises LSC, so this returns early when it does.
            self.wait(left.min(Duration::from_millis(50)))?;
        }
    }

    /// Receives up to `max` frames, handing each to `sink` (lent from the
    /// receive staging buffer, see [`E1000e::rx`]), and gives the slots back
    /// with one RDT write.
    pub fn receive_batch(&mut self, max: usize, sink: &mut dyn FnMut(&[u8])) -> Result<RxBatch> {
        self.rx.clean(&self.regs, max, sink)
    }

    /// A receive descriptor is waiting (without taking it).
    pub fn rx_ready(&self) -> Result<bool> {
        self.rx.ready()
    }

    /// Queues as many `frames` as fit in the transmit ring with one doorbell
    /// write; returns how many were queued (the rest did not fit).
    pub fn transmit_batch(&mut self, frames: &[&[u8]]) -> Result<usize> {
        self.tx.push(&self.regs, frames)
    }

    /// The receive and transmit halves, to use both at once (a smoltcp
    /// token pair, a bridge moving frames between two devices).
    pub fn split(&mut self) -> (Rx<'_>, Tx<'_>) {
        (
            Rx::new(&mut self.rx, &self.regs),
            Tx::new(&mut self.tx, &self.regs),
        )
    }

    /// Reclaims completed transmit descriptors; returns how many are still
    /// in flight.
    pub fn tx_reclaim(&mut self) -> Result<u32> {
        self.tx.reclaim()?;
        Ok(self.tx.in_flight())
    }

    /// Largest frame [`E1000e::transmit_batch`] takes.
    pub fn max_frame(&self) -> usize {
        self.tx.max_frame()
    }

    /// Waits up to `timeout` for an interrupt (MSI-X/INTx) or, polling, for
    /// a receive descriptor to complete. Acknowledges and re-arms. Received
    /// slots not yet given back go back to the device first.
    pub fn wait(&mut self, timeout: Duration) -> Result<Wake> {
        self.rx.give_back(&self.regs)?;
        match self.mode {
            IrqMode::Msix { .. } | IrqMode::Intx => {
                let fired = match &self.irq {
                    Some(irq) => irq.wait_any(Some(timeout))?,
                    None => None,
                };
                match fired {
                    Some(v) => {
                        self.service()?;
                        Ok(Wake::Event(v))
                    }
                    None => Ok(Wake::Timeout),
                }
            }
            IrqMode::Poll => {
                let start = Instant::now();
                loop {
                    if self.rx.ready()? {
                        return Ok(Wake::Event(0));
                    }
                    let left = timeout.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        return Ok(Wake::Timeout);
                    }
                    std::thread::sleep(left.min(Duration::from_micros(200)));
                }
            }
        }
    }

    /// Waits up to `timeout` until `what` is ready: a received descriptor to
    /// take ([`E1000e::rx`]), a free transmit slot ([`E1000e::tx`]), or
    /// either. Sleeps on the interrupt vectors (MSI-X: receive, transmit and
    /// other causes; INTx) or polls the descriptors every 200 µs. Every
    /// interrupt that fired is consumed and serviced first, so with a zero
    /// `timeout` this is also what an event loop calls when one of
    /// [`E1000e::interrupt_fds`] is readable. Received slots not yet given
    /// back go back to the device first. Returns whether `what` is ready.
    pub fn wait_for(&mut self, what: Ready, timeout: Duration) -> Result<bool> {
        self.rx.give_back(&self.regs)?;
        let start = Instant::now();
        loop {
            let ready = match what {
                Ready::Rx => self.rx.ready()?,
                Ready::TxSpace => self.tx.space()? > 0,
                Ready::Either => self.rx.ready()? || self.tx.space()? > 0,
            };
            let left = timeout.saturating_sub(start.elapsed());
            if ready || left.is_zero() {
                // Leave no vector readable behind (an event loop would spin).
                self.acknowledge()?;
                return Ok(ready);
            }
            match &self.irq {
                Some(irq) => {
                    if irq.wait_any(Some(left))?.is_some() {
                        self.service()?;
                    }
                }
                None => std::thread::sleep(left.min(Duration::from_micros(200))),
            }
        }
    }

    /// Consumes every vector that fired (without blocking) and services the
    /// device once if any did.
    fn acknowledge(&mut self) -> Result<()> {
        let Some(irq) = &self.irq else {
            return Ok(());
        };
        let mut fired = false;
        while irq.wait_any(Some(Duration::ZERO))?.is_some() {
            fired = true;
        }
        if fired {
            self.service()?;
        }
        Ok(())
    }

    /// The interrupt vectors' eventfds (none when polling), for an event
    /// loop: when one is readable, call [`E1000e::wait_for`] with a zero
    /// timeout.
    pub fn interrupt_fds(&self) -> Vec<BorrowedFd<'_>> {
        match &self.irq {
            Some(irq) => irq.vectors().iter().map(|v| v.fd()).collect(),
            None => Vec::new(),
        }
    }

    /// After an interrupt: read the causes, acknowledge them (ICR is
    /// write-1-to-clear), then re-enable delivery — MSI-X auto-clear took
    /// the causes out of IMS, INTx needs its end-of-interrupt.
    fn service(&mut self) -> Result<()> {
        let icr = self.r32(regs::ICR)?;
        if icr != 0 {
            self.w32(regs::ICR, icr)?;
        }
        let causes = Cause::from_bits_retain(icr);
        if causes.contains(Cause::LSC) {
            self.stats.link_changes += 1;
        }
        if causes.contains(Cause::RXO) {
            self.stats.rx_overruns += 1;
        }
        match self.mode {
            IrqMode::Msix { .. } => self.w32(regs::IMS, self.ims)?,
            IrqMode::Intx => {
                if let Some(v) = self.irq.as_ref().and_then(|i| i.vector(0)) {
                    v.unmask()?;
                }
            }
            IrqMode::Poll => {}
        }
        Ok(())
    }

    /// Software counters, eventfd counts per vector and the hardware
    /// statistics registers (accumulated: they are read-to-clear).
    pub fn stats(&mut self) -> Result<Stats> {
        for s in e1000_spec::stats::STATS {
            let v = if s.wide {
                // Low half first: reading the high half clears both.
                let lo = self.r32(s.offset)?;
                let hi = self.r32(s.offset + 4)?;
                e1000_spec::stats::wide(lo, hi)
            } else {
                u64::from(self.r32(s.offset)?)
            };
            *self.stats.hw.entry(s.name.to_string()).or_insert(0) += v;
        }
        self.stats.rx_frames = self.rx.frames;
        self.stats.rx_errors = self.rx.errors;
        self.stats.tx_frames = self.tx.frames;
        self.stats.tx_bytes = self.tx.bytes;
        self.stats.tx_ring_full = self.tx.ring_full;
        self.stats.vector_counts = match &self.irq {
            Some(irq) => irq.vectors().iter().map(|v| v.count()).collect(),
            None => Vec::new(),
        };
        let (up, speed) = self.link()?;
        self.stats.link_up = up;
        self.stats.speed_mbps = speed;
        self.stats.mac = self.mac.to_string();
        Ok(self.stats.clone())
    }

    /// Stops the device safely: mask every cause, stop receive and
    /// transmit, clear latched causes, then give QEMU's throttling timers
    /// time to run out before interrupts may be disabled. Idempotent; run
    /// by `Drop` too.
    pub fn quiesce(&mut self) -> Result<()> {
        if self.quiesced {
            return Ok(());
        }
        self.quiesced = true;
        stop(&self.regs)?;
        std::thread::sleep(self.quiesce_wait);
        // A timer that fired in the meantime may have latched a cause.
        let icr = self.r32(regs::ICR)?;
        self.w32(regs::ICR, icr)?;
        // Rings unhooked before their memory is unmapped.
        for r in [
            regs::RDLEN,
            regs::TDLEN,
            regs::RDBAL,
            regs::RDBAH,
            regs::TDBAL,
            regs::TDBAH,
        ] {
            self.w32(r, 0)?;
        }
        let ext = CtrlExt::from_bits_retain(self.r32(regs::CTRL_EXT)?) - CtrlExt::DRV_LOAD;
        self.w32(regs::CTRL_EXT, ext.bits())?;
        Ok(())
    }

    /// Quiesces, then releases interrupts, rings and the device in order,
    /// reporting errors (dropping does the same but can only log them).
    pub fn close(mut self) -> Result<()> {
        self.quiesce()
    }
}

impl Drop for E1000e {
    fn drop(&mut self) {
        if let Err(e) = self.quiesce() {
            tracing::warn!(
                "e1000e: quiesce before teardown failed: {}",
                pcibox_kit::Chain(&e)
            );
            // Still keep MSI-X on through the throttling window.
            std::thread::sleep(self.quiesce_wait);
        }
    }
}

/// Masks all causes, disables receive and transmit, and clears ICR.
fn stop(regs: &Region) -> Result<()> {
    regs.write32(regs::IMC.into(), Cause::ALL.bits())?;
    regs.write32(regs::RCTL.into(), 0)?;
    regs.write32(regs::TCTL.into(), 0)?;
    // Read back to flush the posted writes, then acknowledge everything.
    let _ = regs.read32(regs::STATUS.into())?;
    let icr = regs.read32(regs::ICR.into())?;
    regs.write32(regs::ICR.into(), icr | Cause::ALL.bits())?;
    Ok(())
}

/// CTRL.RST and wait for it to self-clear.
fn reset(regs: &Region) -> Result<()> {
    let ctrl = regs.read32(regs::CTRL.into())?;
    regs.write32(regs::CTRL.into(), ctrl | Ctrl::RST.bits())?;
    // The 82574 needs ~1 ms before registers may be touched again.
    std::thread::sleep(Duration::from_millis(1));
    poll_until(
        "reset (CTRL.RST to clear)",
        Duration::from_millis(200),
        || Ok(regs.read32(regs::CTRL.into())? & Ctrl::RST.bits() == 0),
    )?;
    // Reset re-enables nothing, but be sure: mask and clear again.
    regs.write32(regs::IMC.into(), Cause::ALL.bits())?;
    let icr = regs.read32(regs::ICR.into())?;
    regs.write32(regs::ICR.into(), icr)?;
    Ok(())
}

fn poll_until(
    what: &'static str,
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if done()? {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what,
                ms: timeout.as_millis() as u64,
            });
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// RAL0/RAH0 if the address-valid bit is set and the address is a usable
/// station address, else EEPROM words 0–2 through EERD.
fn read_mac(regs: &Region) -> Result<MacAddress> {
    let ral = regs.read32(regs::ral(0).into())?;
    let rah = regs.read32(regs::rah(0).into())?;
    if let Some(mac) = mac_from_ral_rah(ral, rah).filter(MacAddress::is_valid_station) {
        return Ok(mac);
    }
    let mut words = [0u16; 3];
    for (i, w) in words.iter_mut().enumerate() {
        regs.write32(regs::EERD.into(), regs::eerd_start(i as u16)?)?;
        let mut got = None;
        poll_until("EEPROM read (EERD.DONE)", Duration::from_millis(50), || {
            got = regs::eerd_data(regs.read32(regs::EERD.into())?);
            Ok(got.is_some())
        })?;
        *w = got.unwrap_or(0);
    }
    let mac = mac_from_eeprom_words(words);
    if mac.is_valid_station() {
        Ok(mac)
    } else {
        Err(Error::NoMac)
    }
}

//! A small 82574L written as a `pcibox_model::DeviceModel`: enough of the
//! register file for this driver, acting on each register write as it
//! lands (the trapped BAR write is the doorbell hook). It clears CTRL.RST
//! at once, answers EERD from a three-word EEPROM, consumes the transmit
//! ring when TDT is written and, in MAC loopback, writes each frame into
//! the receive ring; then it raises the causes' interrupts: MSI-X vectors
//! as IVAR maps them, auto-clearing the EIAC causes from ICR and IMS as the
//! vector fires, or INTx while a cause is unmasked.

use e1000_spec::regs::{self, Ctrl, Interrupts as Cause, Ivar, Rctl, Status};
use e1000_spec::{RxDesc, TxDesc, DESC_LEN};
use pci::{Bar, MemKind, MsixRepr};
use pci_virt::{Ids, ModelBuilder, Size, VirtualConfig};
use pcibox_kit::IrqKind;
use pcibox_model::{
    DeviceModel, DmaSpace, IrqCounts, IrqSink, ModelBackend, ModelRegion, RegionMemory,
};

/// BAR 0: the register file.
pub const BAR0: u64 = 128 * 1024;
/// BAR 3: the MSI-X table and PBA.
const BAR3: u64 = 16 * 1024;
/// The EEPROM's first words: the MAC address 52:54:00:12:34:56.
pub const EEPROM: [u16; 3] = [0x5452, 0x1200, 0x5634];
/// The MSI-X vectors offered (as QEMU's e1000e).
const MSIX_VECTORS: u32 = 5;

/// The 82574L model. Its state is public to the tests, which reach it with
/// `ModelBackend::with`.
#[derive(Debug)]
pub struct E1000Model {
    config: VirtualConfig,
    regs: Vec<u32>,
    msix_table: RegionMemory,
    dma: DmaSpace,
    irq: IrqSink,
    /// Receive descriptors still to be written back with a length beyond
    /// the buffer (a hostile device).
    pub corrupt_next: u32,
    /// EEPROM words read through EERD.
    pub eeprom_reads: u32,
    /// Transmit descriptors consumed.
    pub tx_frames: u64,
}

/// Starts the model served as a kit backend.
pub fn backend() -> ModelBackend<E1000Model> {
    ModelBackend::build("e1000e-model", |io| {
        E1000Model::new(io.dma().clone(), io.irq().clone())
    })
}

fn config_space() -> VirtualConfig {
    let ids = Ids {
        vendor: 0x8086,
        device: 0x10d3,
        class: 0x0200,
        subsystem_vendor: 0x8086,
        ..Ids::default()
    };
    let mem = |addr| Bar::Memory {
        addr,
        mem: MemKind::Bits32,
        prefetchable: false,
    };
    let msix = MsixRepr {
        enable: false,
        function_mask: false,
        table_size: MSIX_VECTORS as u16,
        table_bir: 3,
        table_offset: 0,
        pba_bir: 3,
        pba_offset: 0x2000,
    };
    ModelBuilder::new(Size::Conventional, &ids)
        .interrupt_pin(1)
        .and_then(|b| b.bar(0, mem(0xfebc_0000), BAR0))
        .and_then(|b| b.bar(3, mem(0xfebe_0000), BAR3))
        .and_then(|b| b.msix(0xa0, &msix))
        .expect("a valid 82574L layout")
        .build()
}

impl E1000Model {
    fn new(dma: DmaSpace, irq: IrqSink) -> Self {
        let mut m = E1000Model {
            config: config_space(),
            regs: vec![0; BAR0 as usize / 4],
            msix_table: RegionMemory::new("e1000e-model-msix", BAR3)
                .expect("memfd for the MSI-X table"),
            dma,
            irq,
            corrupt_next: 0,
            eeprom_reads: 0,
            tx_frames: 0,
        };
        m.reset();
        m
    }

    fn r(&self, reg: u32) -> u32 {
        self.regs[reg as usize / 4]
    }

    fn set(&mut self, reg: u32, v: u32) {
        self.regs[reg as usize / 4] = v;
    }

    fn base(&self, lo: u32, hi: u32) -> u64 {
        u64::from(self.r(lo)) | u64::from(self.r(hi)) << 32
    }

    fn write_reg(&mut self, reg: u32, v: u32) {
        match reg {
            regs::CTRL if v & Ctrl::RST.bits() != 0 => self.reset(),
            regs::EERD if v & regs::EERD_START != 0 => {
                let addr = (v >> regs::EERD_ADDR_SHIFT) & 0x3fff;
                let data = EEPROM.get(addr as usize).copied().unwrap_or(0xffff);
                self.eeprom_reads += 1;
                let done = regs::EERD_DONE | addr << regs::EERD_ADDR_SHIFT;
                self.set(reg, done | u32::from(data) << regs::EERD_DATA_SHIFT);
            }
            regs::ICR => self.set(regs::ICR, self.r(regs::ICR) & !v),
            regs::ICS => self.cause(Cause::from_bits_retain(v)),
            regs::IMS => {
                self.set(regs::IMS, self.r(regs::IMS) | v);
                self.cause(Cause::empty());
            }
            regs::IMC => self.set(regs::IMS, self.r(regs::IMS) & !v),
            regs::STATUS => {}
            regs::TDT => {
                self.set(reg, v);
                self.transmit();
            }
            _ => self.set(reg, v),
        }
    }

    /// Consumes the transmit ring from TDH to TDT.
    fn transmit(&mut self) {
        let len = self.r(regs::TDLEN) / DESC_LEN as u32;
        if len == 0 || self.r(regs::TCTL) & 2 == 0 {
            return;
        }
        let base = self.base(regs::TDBAL, regs::TDBAH);
        let (mut head, tail) = (self.r(regs::TDH), self.r(regs::TDT) % len);
        let mut causes = Cause::empty();
        while head != tail {
            let at = base + u64::from(head) * DESC_LEN as u64;
            let mut raw = [0u8; DESC_LEN];
            self.dma.read(at, &mut raw).expect("transmit descriptor");
            let d = TxDesc::new_unchecked(&raw[..]);
            let frame = self
                .dma
                .read_vec(d.buffer_addr(), usize::from(d.length()))
                .expect("transmit data");
            self.dma.write(at + 12, &[1]).expect("transmit DD");
            head = (head + 1) % len;
            self.set(regs::TDH, head);
            self.tx_frames += 1;
            causes |= Cause::TXDW | Cause::TXQ0;
            if Rctl::from_bits_retain(self.r(regs::RCTL)) & Rctl::LBM_MASK
                == Rctl::from_bits_retain(0b01 << 6)
            {
                causes |= self.receive(&frame);
            }
        }
        self.cause(causes);
    }

    /// Writes `frame` into the next receive descriptor; the causes raised.
    fn receive(&mut self, frame: &[u8]) -> Cause {
        let len = self.r(regs::RDLEN) / DESC_LEN as u32;
        if len == 0 || self.r(regs::RCTL) & Rctl::EN.bits() == 0 {
            return Cause::empty();
        }
        let (head, tail) = (self.r(regs::RDH), self.r(regs::RDT) % len);
        if head == tail {
            return Cause::RXO | Cause::OTHER; // no descriptor: overrun
        }
        let at = self.base(regs::RDBAL, regs::RDBAH) + u64::from(head) * DESC_LEN as u64;
        let mut raw = [0u8; DESC_LEN];
        self.dma.read(at, &mut raw).expect("receive descriptor");
        let addr = RxDesc::new_unchecked(&raw[..]).buffer_addr();
        self.dma.write(addr, frame).expect("receive data");
        let mut length = frame.len() as u16;
        if self.corrupt_next > 0 {
            self.corrupt_next -= 1;
            length = 5000;
        }
        let mut d = RxDesc::new_unchecked(&mut raw[..]);
        d.set_length(length);
        d.set_status(e1000_spec::desc::RxStatus::DD | e1000_spec::desc::RxStatus::EOP);
        self.dma
            .write(at + 8, &raw[8..])
            .expect("receive write-back");
        self.set(regs::RDH, (head + 1) % len);
        Cause::RXT0 | Cause::RXQ0
    }

    /// Latches `new` causes in ICR and raises the interrupts they unmask.
    fn cause(&mut self, new: Cause) {
        let icr = self.r(regs::ICR) | new.bits();
        self.set(regs::ICR, icr);
        let pending = icr & self.r(regs::IMS);
        if pending == 0 {
            return;
        }
        match self.irq.enabled() {
            Some(IrqKind::Msix) => {
                let ivar = Ivar::decode(self.r(regs::IVAR));
                let groups = [
                    (Cause::RXQ0, ivar.rxq0),
                    (Cause::TXQ0, ivar.txq0),
                    (Cause::OTHER, ivar.other),
                ];
                for (group, vector) in groups {
                    let (Some(vector), true) = (vector, pending & group.bits() != 0) else {
                        continue;
                    };
                    // Auto-clear: without CTRL_EXT.IAME the EIAC causes
                    // leave ICR and IMS as their vector fires.
                    let auto = self.r(regs::EIAC) & group.bits();
                    self.set(regs::ICR, self.r(regs::ICR) & !auto);
                    self.set(regs::IMS, self.r(regs::IMS) & !auto);
                    self.irq.raise(u32::from(vector));
                }
            }
            Some(_) => {
                // INTx: the sink holds it pending while the line is masked.
                self.irq.raise(0);
            }
            None => {}
        }
    }
}

impl DeviceModel for E1000Model {
    fn config(&self) -> &VirtualConfig {
        &self.config
    }

    fn config_mut(&mut self) -> &mut VirtualConfig {
        &mut self.config
    }

    fn regions(&self) -> Vec<ModelRegion> {
        vec![
            ModelRegion::trapped(0, BAR0),
            ModelRegion::memory(3, self.msix_table.clone(), Vec::new()),
        ]
    }

    fn irqs(&self) -> IrqCounts {
        IrqCounts {
            intx: 1,
            msi: 0,
            msix: MSIX_VECTORS,
        }
    }

    fn bar_read(&mut self, index: u32, offset: u64, buf: &mut [u8]) -> pcibox_model::Result<()> {
        if index == 3 {
            return self.msix_table.read(offset, buf);
        }
        let reg = dword(index, offset, buf.len())?;
        buf.copy_from_slice(&self.r(reg).to_le_bytes());
        Ok(())
    }

    fn bar_write(&mut self, index: u32, offset: u64, data: &[u8]) -> pcibox_model::Result<()> {
        if index == 3 {
            return self.msix_table.write(offset, data);
        }
        let reg = dword(index, offset, data.len())?;
        let mut v = [0u8; 4];
        v.copy_from_slice(data);
        self.write_reg(reg, u32::from_le_bytes(v));
        Ok(())
    }

    fn reset(&mut self) {
        self.regs.fill(0);
        let status = Status::LU | Status::FD | Status::from_bits_retain(0b10 << 6);
        self.set(regs::STATUS, status.bits());
    }
}

/// The register of a 32-bit access; other widths are refused.
fn dword(index: u32, offset: u64, len: usize) -> pcibox_model::Result<u32> {
    if len != 4 || !offset.is_multiple_of(4) {
        return Err(pcibox_model::Error::Region {
            index,
            offset,
            len,
            why: "the 82574L model takes aligned 32-bit register accesses only",
        });
    }
    Ok(offset as u32)
}

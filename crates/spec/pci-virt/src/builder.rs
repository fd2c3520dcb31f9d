//! The device-model profile: a fully emulated config space, laid out by a
//! builder and linked when built.

use crate::policy::Source;
use crate::rules::{self, msi_len, Profile};
use crate::{Error, Size, VirtualConfig};
use pci::cap_reg::{exp, msi, msix, pm};
use pci::{cap_id, reg, Bar, MsiRepr, MsixRepr, PciePortType, PcieRepr, PmRepr};

/// The identity registers of a model's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Revision ID.
    pub revision: u8,
    /// Base class and subclass (`0x0200` = Ethernet).
    pub class: u16,
    /// Programming interface.
    pub prog_if: u8,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem: u16,
}

/// Builds a model's config space: a type 0 header with `ids`, then BARs,
/// an expansion ROM and capabilities at the offsets asked for. Everything
/// is virtual. [`build`](ModelBuilder::build) links the capability lists
/// in offset order.
#[derive(Debug, Clone)]
pub struct ModelBuilder {
    vc: VirtualConfig,
    slots: [bool; 6],
    used: Vec<(usize, usize)>,
    caps: Vec<usize>,
    ext: Vec<usize>,
}

/// The 4-bit encoding of a port type.
fn port_raw(t: PciePortType) -> u8 {
    match t {
        PciePortType::Endpoint => 0,
        PciePortType::LegacyEndpoint => 1,
        PciePortType::RootPort => 4,
        PciePortType::Upstream => 5,
        PciePortType::Downstream => 6,
        PciePortType::PcieToPci => 7,
        PciePortType::PciToPcie => 8,
        PciePortType::RcIntegratedEndpoint => 9,
        PciePortType::RcEventCollector => 10,
        PciePortType::Unknown(n) => n & 0xf,
    }
}

/// Maps an `emit` failure of the `pci` crate to a placement error.
fn emitted(what: &'static str, at: usize, r: Result<(), pci::Error>) -> Result<(), Error> {
    r.map_err(|_| Error::Placement {
        what,
        offset: at,
        why: "initial state does not fit the layout",
    })
}

impl ModelBuilder {
    /// A blank header of `size` with `ids`: command, status, cache line
    /// and interrupt line behave as in `docs/virt-config.md`; every other
    /// byte reads as set here and is read-only.
    pub fn new(size: Size, ids: &Ids) -> Self {
        let mut vc = VirtualConfig::with_bytes(vec![0; size.len()], Source::Virtual);
        vc.put(reg::VENDOR_ID, &ids.vendor.to_le_bytes());
        vc.put(reg::DEVICE_ID, &ids.device.to_le_bytes());
        vc.put(reg::REVISION, &[ids.revision, ids.prog_if]);
        vc.put(reg::CLASS, &ids.class.to_le_bytes());
        vc.put(reg::SUBSYS_VENDOR, &ids.subsystem_vendor.to_le_bytes());
        vc.put(reg::SUBSYS_ID, &ids.subsystem.to_le_bytes());
        rules::header(&mut vc, Profile::Model);
        ModelBuilder {
            vc,
            slots: [false; 6],
            used: Vec::new(),
            caps: Vec::new(),
            ext: Vec::new(),
        }
    }

    /// Sets the interrupt pin (0 none, 1–4 INTA–INTD).
    pub fn interrupt_pin(mut self, pin: u8) -> Result<Self, Error> {
        if pin > 4 {
            return Err(Error::Placement {
                what: "interrupt pin",
                offset: reg::INT_PIN,
                why: "not 0-4",
            });
        }
        self.vc.put(reg::INT_PIN, &[pin]);
        Ok(self)
    }

    /// Emulates BAR `index` as `bar` (an I/O or memory BAR; its address is
    /// the initial one, rounded down to the size) with `size` bytes. A
    /// 64-bit BAR takes the next slot too.
    pub fn bar(mut self, index: u8, bar: Bar, size: u64) -> Result<Self, Error> {
        let i = usize::from(index);
        let wide = bar.is_64bit();
        if i > 5 || self.slots[i] || (wide && self.slots.get(i + 1).is_some_and(|&u| u)) {
            return Err(Error::Bar {
                index,
                why: "slot taken or out of range",
            });
        }
        let n = self.vc.install_bar(index, &bar, size)?;
        for s in &mut self.slots[i..i + usize::from(n)] {
            *s = true;
        }
        Ok(self)
    }

    /// Emulates an expansion ROM of `size` bytes, disabled at address 0.
    pub fn rom(mut self, size: u64) -> Result<Self, Error> {
        self.vc.install_rom(size, 0)?;
        Ok(self)
    }

    /// Reserves `len` bytes at `at` for `what`, a standard capability, or
    /// an extended one when `ext`.
    fn place(&mut self, what: &'static str, at: usize, len: usize, ext: bool) -> Result<(), Error> {
        let bad = |why| {
            Err(Error::Placement {
                what,
                offset: at,
                why,
            })
        };
        let (lo, hi) = if ext {
            (0x100, self.vc.len())
        } else {
            (0x40, 0x100)
        };
        if ext && self.vc.len() < 4096 {
            return bad("extended capabilities need a 4096-byte space");
        }
        if at & 3 != 0 || at < lo || at + len > hi {
            return bad("not dword-aligned or outside the capability area");
        }
        if self.used.iter().any(|&(s, e)| at < e && s < at + len) {
            return bad("overlaps another capability");
        }
        self.used.push((at, at + len));
        if ext {
            self.ext.push(at);
        } else {
            self.caps.push(at);
        }
        Ok(())
    }

    /// Adds a Power Management capability at `at` from `pm`'s version,
    /// flags, supported states, No_Soft_Reset and initial PMCSR. With
    /// `d0_d3hot_only`, D1/D2 writes are refused whatever it supports.
    pub fn pm(mut self, at: u8, pm: &PmRepr, d0_d3hot_only: bool) -> Result<Self, Error> {
        let at = usize::from(at);
        self.place("PM capability", at, PmRepr::LEN, false)?;
        let pmc = u16::from(pm.version & 7)
            | u16::from(pm.pme_clock) << 3
            | u16::from(pm.dsi) << 5
            | u16::from(pm.aux_current & 7) << 6
            | u16::from(pm.d1) << 9
            | u16::from(pm.d2) << 10
            | u16::from(pm.pme_support & 0x1f) << 11;
        let nsr = if pm.no_soft_reset {
            pm::NO_SOFT_RESET
        } else {
            0
        };
        self.vc.put(at, &[cap_id::PM, 0]);
        self.vc.put(at + pm::PMC, &pmc.to_le_bytes());
        self.vc.put(at + pm::PMCSR, &nsr.to_le_bytes());
        emitted("PM capability", at, pm.emit(&mut self.vc.copy, at))?;
        rules::pm(&mut self.vc, at, Profile::Model, d0_d3hot_only);
        Ok(self)
    }

    /// Adds an MSI capability at `at` with `msi`'s layout (64-bit,
    /// per-vector masking, vectors capable) and initial state.
    pub fn msi(mut self, at: u8, m: &MsiRepr) -> Result<Self, Error> {
        let at = usize::from(at);
        let ctl = u16::from(m.multiple_message_capable.min(5)) << msi::MMC_SHIFT
            | if m.is_64bit { msi::IS_64 } else { 0 }
            | if m.per_vector_masking { msi::PVM } else { 0 };
        self.place("MSI capability", at, msi_len(ctl), false)?;
        self.vc.put(at, &[cap_id::MSI, 0]);
        self.vc.put(at + msi::CONTROL, &ctl.to_le_bytes());
        let mut init = *m;
        init.multiple_message_enable = m.multiple_message_enable.min(m.multiple_message_capable);
        emitted("MSI capability", at, init.emit(&mut self.vc.copy, at))?;
        if let Some(p) = m.pending.filter(|_| m.per_vector_masking) {
            let r = if m.is_64bit {
                msi::MASK_64
            } else {
                msi::MASK_32
            };
            self.vc.put(at + r + 4, &p.to_le_bytes());
        }
        rules::msi(&mut self.vc, at, Profile::Model);
        Ok(self)
    }

    /// Adds an MSI-X capability at `at` with `msix`'s table size, table
    /// and PBA locations and initial enable/function mask.
    pub fn msix(mut self, at: u8, m: &MsixRepr) -> Result<Self, Error> {
        let at = usize::from(at);
        let bad = |why| {
            Err(Error::Placement {
                what: "MSI-X capability",
                offset: at,
                why,
            })
        };
        if !(1..=2048).contains(&m.table_size) {
            return bad("table size not 1-2048");
        }
        if m.table_bir > 5 || m.pba_bir > 5 || (m.table_offset | m.pba_offset) & 7 != 0 {
            return bad("BIR above 5 or offset not 8-byte aligned");
        }
        self.place("MSI-X capability", at, MsixRepr::LEN, false)?;
        let ctl = (m.table_size - 1) & msix::TABLE_SIZE_MASK;
        self.vc.put(at, &[cap_id::MSIX, 0]);
        self.vc.put(at + msix::CONTROL, &ctl.to_le_bytes());
        let table = m.table_offset | u32::from(m.table_bir);
        let pba = m.pba_offset | u32::from(m.pba_bir);
        self.vc.put(at + msix::TABLE, &table.to_le_bytes());
        self.vc.put(at + msix::PBA, &pba.to_le_bytes());
        emitted("MSI-X capability", at, m.emit(&mut self.vc.copy, at))?;
        rules::msix(&mut self.vc, at, Profile::Model);
        Ok(self)
    }

    /// Adds a PCI Express capability at `at` (0x24 bytes for version 1,
    /// 0x3c from version 2) from `pcie`: version, port type, slot flag,
    /// interrupt message, max payload supported, FLR capability, device
    /// control/status and the link registers.
    pub fn pcie(mut self, at: u8, p: &PcieRepr) -> Result<Self, Error> {
        let at = usize::from(at);
        let len = if p.version >= 2 {
            exp::LEN_V2
        } else {
            exp::LEN_V1
        };
        self.place("PCI Express capability", at, len, false)?;
        let flags = u16::from(p.version & 0xf)
            | u16::from(port_raw(p.port_type)) << 4
            | u16::from(p.slot) << 8
            | u16::from(p.interrupt_message & 0x1f) << 9;
        let mps = (p.max_payload_supported.max(128) / 128).ilog2().min(5);
        let devcap = mps | if p.flr { exp::DEVCAP_FLR } else { 0 };
        self.vc.put(at, &[cap_id::EXP, 0]);
        self.vc.put(at + exp::FLAGS, &flags.to_le_bytes());
        self.vc.put(at + exp::DEVCAP, &devcap.to_le_bytes());
        let devctl = p.device_control & !exp::DEVCTL_FLR;
        self.vc.put(at + exp::DEVCTL, &devctl.to_le_bytes());
        self.vc
            .put(at + exp::DEVSTA, &p.device_status.to_le_bytes());
        if let Some(l) = p.link {
            let cap = u32::from(l.max_speed & 0xf)
                | u32::from(l.max_width & 0x3f) << 4
                | u32::from(l.aspm_support & 3) << 10
                | u32::from(l.port) << 24;
            let sta = u16::from(l.speed & 0xf) | u16::from(l.width & 0x3f) << 4;
            self.vc.put(at + exp::LNKCAP, &cap.to_le_bytes());
            self.vc.put(at + exp::LNKCTL, &l.control.to_le_bytes());
            self.vc.put(at + exp::LNKSTA, &sta.to_le_bytes());
        }
        rules::pcie(&mut self.vc, at, len, Profile::Model, p.flr);
        Ok(self)
    }

    /// Adds a vendor-specific capability at `at`: its length byte, then
    /// `data` (read-only).
    pub fn vendor(mut self, at: u8, data: &[u8]) -> Result<Self, Error> {
        let at = usize::from(at);
        let len = 3 + data.len();
        if len > 0xff {
            return Err(Error::Placement {
                what: "vendor capability",
                offset: at,
                why: "longer than 255 bytes",
            });
        }
        self.place("vendor capability", at, len, false)?;
        self.vc.put(at, &[cap_id::VENDOR, 0, len as u8]);
        self.vc.put(at + 3, data);
        Ok(self)
    }

    /// Adds an extended capability `id` of `version` at `at` with `body`
    /// after its header (read-only).
    pub fn ext(mut self, at: u16, id: u16, version: u8, body: &[u8]) -> Result<Self, Error> {
        let at = usize::from(at);
        self.place("extended capability", at, 4 + body.len(), true)?;
        let head = u32::from(id) | u32::from(version & 0xf) << 16;
        self.vc.put(at, &head.to_le_bytes());
        self.vc.put(at + 4, body);
        Ok(self)
    }

    /// Links the capability lists (in offset order) and returns the space.
    pub fn build(mut self) -> VirtualConfig {
        self.caps.sort_unstable();
        self.ext.sort_unstable();
        self.vc.link_std(&self.caps);
        self.vc.link_ext(&self.ext);
        self.vc
    }
}

//! The standard rules of the registers this crate knows, in one place, for
//! both profiles: a device model (everything virtual) and a firewall
//! (pass-through where the device may be driven directly, virtual where the
//! owner must act, hidden or read-only elsewhere).

use crate::handler::Handler;
use crate::policy::{Access, Rule};
use crate::VirtualConfig;
use pci::cap_reg::{exp, msi, msix, pm};
use pci::{command, reg, status, PciePortType};

/// Which kind of space the rules are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// A fully emulated device.
    Model,
    /// A virtual space over a real device.
    Firewall,
}

impl Profile {
    /// A rule for bits the device itself may hold: virtual in a model,
    /// pass-through in a firewall.
    fn pass(self, access: Access) -> Rule {
        match self {
            Profile::Model => Rule::virt(access),
            Profile::Firewall => Rule::device(access),
        }
    }
}

/// Command register bits a driver may change.
pub(crate) const COMMAND_RW: u16 = command::IO
    | command::MEMORY
    | command::MASTER
    | command::PARITY
    | command::SERR
    | command::INTX_DISABLE;

/// Status register bits that are write-1-to-clear (error reports).
pub(crate) const STATUS_W1C: u16 = status::PARITY
    | status::SIG_TARGET_ABORT
    | status::REC_TARGET_ABORT
    | status::REC_MASTER_ABORT
    | status::SIG_SYSTEM_ERROR
    | status::DETECTED_PARITY;

/// The type 0 header's rules other than BARs and the ROM: command and
/// status, cache line size, the capability pointer and list bit (set by
/// the chain linking) and a virtual interrupt line.
pub(crate) fn header(vc: &mut VirtualConfig, p: Profile) {
    vc.rule(
        reg::COMMAND,
        2,
        COMMAND_RW.into(),
        p.pass(Access::ReadWrite),
    );
    vc.handlers.push(Handler::Command);
    vc.rule(
        reg::STATUS,
        2,
        STATUS_W1C.into(),
        p.pass(Access::Write1Clear),
    );
    vc.rule(
        reg::STATUS,
        2,
        status::CAP_LIST.into(),
        Rule::virt(Access::ReadOnly),
    );
    vc.rule(reg::CACHE_LINE, 1, 0xff, p.pass(Access::ReadWrite));
    vc.rule(reg::CAP_PTR, 1, 0xff, Rule::virt(Access::ReadOnly));
    vc.rule(reg::INT_LINE, 1, 0xff, Rule::virt(Access::ReadWrite));
}

/// PM at `at`: the power state is virtual (the owner acts on
/// [`Event::PowerState`](crate::Event::PowerState)); D1 and D2 only when
/// the PMC says so and `d0_d3hot_only` is off; PME enable and status belong
/// to the device.
pub(crate) fn pm(vc: &mut VirtualConfig, at: usize, p: Profile, d0_d3hot_only: bool) {
    let pmc = vc.copy16(at + pm::PMC);
    let r = at + pm::PMCSR;
    vc.rule(r, 2, pm::STATE_MASK.into(), Rule::virt(Access::ReadWrite));
    vc.rule(r, 2, pm::PME_ENABLE.into(), p.pass(Access::ReadWrite));
    vc.rule(r, 2, pm::PME_STATUS.into(), p.pass(Access::Write1Clear));
    let mut allowed = 1 | 1 << 3;
    if !d0_d3hot_only {
        if pmc & pm::PMC_D1 != 0 {
            allowed |= 1 << 1;
        }
        if pmc & pm::PMC_D2 != 0 {
            allowed |= 1 << 2;
        }
    }
    vc.handlers.push(Handler::Pm { at, allowed });
}

/// The length of the MSI capability whose control register is `ctl`.
pub(crate) fn msi_len(ctl: u16) -> usize {
    let mut n = 0x0a;
    if ctl & msi::IS_64 != 0 {
        n += 4;
    }
    if ctl & msi::PVM != 0 {
        n += 10;
    }
    n
}

/// MSI at `at`: enable, multiple message enable, address, data and mask
/// bits are virtual (interrupts are the owner's to set up); the pending
/// bits belong to the device. A firewall starts with MSI off and zeroed.
pub(crate) fn msi(vc: &mut VirtualConfig, at: usize, p: Profile) {
    let ctl = vc.copy16(at + msi::CONTROL);
    let virt_rw = Rule::virt(Access::ReadWrite);
    let mut regs = vec![
        (msi::CONTROL, 2, u32::from(msi::ENABLE | msi::MME_MASK)),
        (msi::ADDRESS, 4, !3),
    ];
    let (data, mask) = if ctl & msi::IS_64 != 0 {
        regs.push((msi::ADDRESS_HI, 4, u32::MAX));
        (msi::DATA_64, msi::MASK_64)
    } else {
        (msi::DATA_32, msi::MASK_32)
    };
    regs.push((data, 2, 0xffff));
    if ctl & msi::PVM != 0 {
        let vectors = 1u32 << ((ctl >> msi::MMC_SHIFT) & 7).min(5);
        regs.push((mask, 4, u32::MAX >> (32 - vectors)));
    }
    for (r, width, bits) in regs {
        vc.rule(at + r, width, bits, virt_rw);
        if p == Profile::Firewall {
            vc.rule(at + r, width, bits, Rule::HIDDEN);
            vc.rule(at + r, width, bits, virt_rw);
        }
    }
    vc.handlers.push(Handler::Msi {
        at,
        len: msi_len(ctl),
    });
}

/// MSI-X at `at`: enable and function mask are virtual; table and PBA
/// locations are read-only. A firewall starts with MSI-X off.
pub(crate) fn msix(vc: &mut VirtualConfig, at: usize, p: Profile) {
    let bits = u32::from(msix::ENABLE | msix::FUNCTION_MASK);
    if p == Profile::Firewall {
        vc.rule(at + msix::CONTROL, 2, bits, Rule::HIDDEN);
    }
    vc.rule(at + msix::CONTROL, 2, bits, Rule::virt(Access::ReadWrite));
    vc.handlers.push(Handler::Msix { at });
}

/// PCI Express at `at`, `len` bytes of it present. Device control: error
/// reporting, relaxed ordering, extended tags, no snoop and max read
/// request are the device's; max payload only in a model (it must match
/// the fabric); never phantom functions or aux power. Initiate FLR, when
/// `flr`, is virtual and becomes [`Event::FlrRequested`](crate::Event).
/// Device status error bits are write-1-to-clear. Link control is
/// read-only in a firewall (no link disable, retrain or clocking changes);
/// a model allows ASPM, common clock and extended synch. Device control 2:
/// completion timeout in a model, everything but ARI forwarding in a
/// firewall.
pub(crate) fn pcie(vc: &mut VirtualConfig, at: usize, len: usize, p: Profile, flr: bool) {
    let r = at + exp::DEVCTL;
    let mut rw = exp::DEVCTL_REPORTING
        | exp::DEVCTL_RELAXED
        | exp::DEVCTL_EXT_TAG
        | exp::DEVCTL_NOSNOOP
        | exp::DEVCTL_READRQ;
    if p == Profile::Model {
        rw |= exp::DEVCTL_PAYLOAD;
    }
    vc.rule(r, 2, rw.into(), p.pass(Access::ReadWrite));
    let flr_bit = u32::from(exp::DEVCTL_FLR);
    vc.rule(r, 2, flr_bit, Rule::HIDDEN);
    if flr {
        vc.rule(r, 2, flr_bit, Rule::virt(Access::ReadWrite));
        vc.handlers.push(Handler::Pcie { at });
    }
    let errors = exp::DEVSTA_ERRORS.into();
    vc.rule(at + exp::DEVSTA, 2, errors, p.pass(Access::Write1Clear));
    let flags = vc.copy16(at + exp::FLAGS);
    let port = PciePortType::from_raw((flags >> 4) as u8);
    if p == Profile::Model && port.has_link() {
        let link = exp::LNKCTL_ASPM | exp::LNKCTL_COMMON_CLOCK | exp::LNKCTL_EXT_SYNCH;
        vc.rule(
            at + exp::LNKCTL,
            2,
            link.into(),
            Rule::virt(Access::ReadWrite),
        );
        let bw = exp::LNKSTA_BW_STATUS.into();
        vc.rule(at + exp::LNKSTA, 2, bw, Rule::virt(Access::Write1Clear));
    }
    if flags & 0xf >= 2 && len >= exp::DEVCTL2 + 2 {
        let (bits, rule) = match p {
            Profile::Model => (exp::DEVCTL2_COMP_TIMEOUT, Rule::virt(Access::ReadWrite)),
            Profile::Firewall => (!exp::DEVCTL2_ARI, Rule::device(Access::ReadWrite)),
        };
        vc.rule(at + exp::DEVCTL2, 2, bits.into(), rule);
    }
}

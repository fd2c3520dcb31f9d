//! The firewall profile: a virtual space over a real device's config.

use crate::chain::filter_chain;
use crate::policy::{Rule, Source};
use crate::rules::{self, Profile};
use crate::{Error, VirtualConfig};
use pci::cap_reg::exp;
use pci::{cap_id, reg, Bar, ConfigSpace, HeaderType};

/// What a firewall lets a driver see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallPolicy {
    /// Standard capability IDs that stay visible (others are hidden and
    /// unlinked).
    pub caps: Vec<u8>,
    /// Extended capability IDs that stay visible.
    pub ext_caps: Vec<u16>,
    /// The size of each BAR slot as the owner knows it (from the backend's
    /// region info); 0 hides the slot. The BAR's type comes from the
    /// device's register. A 64-bit BAR's size goes in its lower slot.
    pub bar_sizes: [u64; 6],
    /// The expansion ROM's size; 0 hides it.
    pub rom_size: u64,
    /// Only D0 and D3hot may be entered, whatever the PM capability offers.
    pub d0_d3hot_only: bool,
    /// Initiate FLR becomes [`Event::FlrRequested`](crate::Event) (when the
    /// device is FLR-capable); otherwise the bit is read-only.
    pub flr: bool,
}

impl Default for FirewallPolicy {
    /// PM, MSI, MSI-X and PCI Express kept, no extended capabilities, no
    /// BARs or ROM, D0/D3hot only, FLR as an event.
    fn default() -> Self {
        FirewallPolicy {
            caps: vec![cap_id::PM, cap_id::MSI, cap_id::MSIX, cap_id::EXP],
            ext_caps: Vec::new(),
            bar_sizes: [0; 6],
            rom_size: 0,
            d0_d3hot_only: true,
            flr: true,
        }
    }
}

impl VirtualConfig {
    /// A firewall over `device` (the device's 256- or 4096-byte config
    /// space as read now), for a type 0 header.
    ///
    /// Everything is pass-through and read-only except: the command
    /// register's decode, master, parity, SERR and INTx-disable bits and
    /// the cache line size (pass-through, writable); the status error bits
    /// (pass-through, write-1-to-clear); BARs and the ROM with a size
    /// (virtual, sized; others hidden); the interrupt line (virtual); the
    /// capability pointers (virtual, re-linked); the kept capabilities'
    /// handler registers (see `docs/virt-config.md`). Bytes of hidden
    /// capabilities and outside any capability read 0.
    pub fn firewall(device: &[u8], policy: &FirewallPolicy) -> Result<Self, Error> {
        if !matches!(device.len(), 256 | 4096) {
            return Err(Error::DeviceSize(device.len()));
        }
        let cs = ConfigSpace::new_checked(device).map_err(|_| Error::DeviceSize(device.len()))?;
        if cs.header_type() != HeaderType::Normal {
            return Err(Error::Header(cs.header_type_raw()));
        }
        let chain = filter_chain(device, &policy.caps, &policy.ext_caps)?;
        let mut vc = VirtualConfig::with_bytes(device.to_vec(), Source::Device);
        vc.set_range(reg::BAR0, reg::BAR0 + 24, Rule::HIDDEN);
        vc.set_range(reg::ROM, reg::ROM + 4, Rule::HIDDEN);
        let kept = chain.caps.iter().chain(&chain.ext);
        let mut open: Vec<(usize, usize)> = kept
            .map(|k| (usize::from(k.offset), usize::from(k.offset + k.len)))
            .collect();
        open.sort_unstable();
        let mut from = 0x40;
        for &(start, end) in open.iter().chain([(vc.len(), vc.len())].iter()) {
            vc.set_range(from, start, Rule::HIDDEN);
            from = from.max(end);
        }
        rules::header(&mut vc, Profile::Firewall);
        for (i, bar) in cs.bars() {
            let size = policy.bar_sizes[i];
            if size == 0 {
                continue;
            }
            if matches!(bar, Bar::Upper) {
                return Err(Error::Bar {
                    index: i as u8,
                    why: "a size for the upper half of a 64-bit BAR",
                });
            }
            vc.install_bar(i as u8, &bar, size)?;
        }
        if policy.rom_size != 0 {
            vc.install_rom(policy.rom_size, cs.rom_raw().unwrap_or(0))?;
        }
        for k in &chain.caps {
            let at = usize::from(k.offset);
            match k.id as u8 {
                cap_id::PM => rules::pm(&mut vc, at, Profile::Firewall, policy.d0_d3hot_only),
                cap_id::MSI => rules::msi(&mut vc, at, Profile::Firewall),
                cap_id::MSIX => rules::msix(&mut vc, at, Profile::Firewall),
                cap_id::EXP => {
                    let flr = policy.flr && vc.copy32(at + exp::DEVCAP) & exp::DEVCAP_FLR != 0;
                    rules::pcie(&mut vc, at, k.len.into(), Profile::Firewall, flr);
                }
                _ => {}
            }
        }
        let std: Vec<usize> = chain.caps.iter().map(|k| k.offset.into()).collect();
        let ext: Vec<usize> = chain.ext.iter().map(|k| k.offset.into()).collect();
        vc.link_std(&std);
        vc.link_ext(&ext);
        Ok(vc)
    }
}

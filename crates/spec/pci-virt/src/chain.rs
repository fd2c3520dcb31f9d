//! Capability chains: filtering a real device's lists down to an
//! allow-list (bounded walks, so loops and bad pointers only cut a list
//! short) and linking a list of kept or built capabilities.

use crate::policy::{Access, Rule};
use crate::rules::msi_len;
use crate::{Error, VirtualConfig};
use pci::cap_reg::{exp, msi};
use pci::{cap_id, ext_cap_id, reg, status, ConfigSpace};

/// A capability that stays visible: where it is, its ID and the bytes it
/// spans (its header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// Offset of its header.
    pub offset: u16,
    /// Capability ID (standard: the ID byte; extended: the 16-bit ID).
    pub id: u16,
    /// Bytes from `offset` that belong to it.
    pub len: u16,
}

/// The capabilities kept from a device, in list order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// The standard list.
    pub caps: Vec<Kept>,
    /// The extended list.
    pub ext: Vec<Kept>,
}

/// The (required, at most) length of a standard capability, judged from
/// its ID and its own registers; `None` when the ID's layout is not known.
fn std_len(buf: &[u8], at: usize, id: u8) -> Option<(usize, usize)> {
    let byte = |o: usize| buf.get(at + o).copied().unwrap_or(0);
    let word = |o: usize| u16::from_le_bytes([byte(o), byte(o + 1)]);
    Some(match id {
        cap_id::PM => (8, 8),
        cap_id::MSI => {
            let n = msi_len(word(msi::CONTROL));
            (n, n)
        }
        cap_id::MSIX => (12, 12),
        cap_id::EXP if word(exp::FLAGS) & 0xf >= 2 => (exp::LEN_V2, exp::LEN_V2),
        cap_id::EXP => (exp::LNKSTA + 2, exp::LEN_V1),
        cap_id::VENDOR => {
            let n = usize::from(byte(2)).max(3);
            (n, n)
        }
        _ => return None,
    })
}

/// Keeps the walked capabilities (`(offset, id)` in list order) whose ID is
/// allowed. Each spans its known length, or up to the next capability
/// (by offset) or `end` when the layout is unknown; one whose known length
/// does not fit before the next is dropped.
fn keep(
    walked: &[(usize, u16)],
    end: usize,
    allowed: impl Fn(u16) -> bool,
    len_of: impl Fn(usize, u16) -> Option<(usize, usize)>,
) -> Vec<Kept> {
    let mut starts: Vec<usize> = walked.iter().map(|w| w.0).collect();
    starts.sort_unstable();
    let mut kept = Vec::new();
    for &(at, id) in walked {
        if !allowed(id) {
            continue;
        }
        let room = starts
            .iter()
            .find(|&&s| s > at)
            .map_or(end, |&s| s.min(end))
            - at;
        let len = match len_of(at, id) {
            Some((need, _)) if need > room => continue,
            Some((_, most)) => most.min(room),
            None => room,
        };
        kept.push(Kept {
            offset: at as u16,
            id,
            len: len as u16,
        });
    }
    kept
}

/// Walks a device's capability lists (at most 48 standard and 960
/// extended steps; a loop, a pointer into the header or past the end ends
/// a list there) and keeps the capabilities whose IDs are in `caps` and
/// `ext_caps`.
pub fn filter_chain(device: &[u8], caps: &[u8], ext_caps: &[u16]) -> Result<Chain, Error> {
    let cs = ConfigSpace::new_checked(device).map_err(|_| Error::DeviceSize(device.len()))?;
    let end = device.len().min(256);
    let walked: Vec<(usize, u16)> = cs
        .caps()
        .map_while(Result::ok)
        .map(|c| (usize::from(c.offset), u16::from(c.id)))
        .collect();
    let std = keep(
        &walked,
        end,
        |id| caps.iter().any(|&c| u16::from(c) == id),
        |at, id| std_len(device, at, id as u8),
    );
    let walked: Vec<(usize, u16)> = cs
        .ext_caps()
        .map_while(Result::ok)
        .map(|c| (usize::from(c.offset), c.id))
        .collect();
    let ext = keep(
        &walked,
        device.len(),
        |id| ext_caps.contains(&id),
        |_, id| (id == ext_cap_id::DSN).then_some((12, 12)),
    );
    Ok(Chain { caps: std, ext })
}

impl VirtualConfig {
    /// Links the standard capabilities at `offsets` (in list order): the
    /// capability pointer, each next pointer (virtual, read-only) and the
    /// status register's list bit.
    pub(crate) fn link_std(&mut self, offsets: &[usize]) {
        let ro = Rule::virt(Access::ReadOnly);
        let first = offsets.first().map_or(0, |&o| o as u8);
        self.put(reg::CAP_PTR, &[first]);
        for (i, &at) in offsets.iter().enumerate() {
            let next = offsets.get(i + 1).map_or(0, |&o| o as u8);
            self.put(at + 1, &[next]);
            self.rule(at + 1, 1, 0xff, ro);
        }
        let st = self.copy16(reg::STATUS) & !status::CAP_LIST;
        let list = if offsets.is_empty() {
            0
        } else {
            status::CAP_LIST
        };
        self.put(reg::STATUS, &(st | list).to_le_bytes());
    }

    /// Links the extended capabilities at `offsets` (in list order) by
    /// their next fields (virtual, read-only). When the first is not at
    /// 0x100, a header with ID 0 at 0x100 points to it; with none, 0x100
    /// reads 0. The caller has hidden 0x100 unless a capability starts
    /// there.
    pub(crate) fn link_ext(&mut self, offsets: &[usize]) {
        if self.len() < 4096 {
            return;
        }
        let ro = Rule::virt(Access::ReadOnly);
        let mut chain: Vec<usize> = offsets.to_vec();
        if chain.first().is_some_and(|&o| o != 0x100) {
            self.put(0x100, &[0; 4]);
            self.rule(0x100, 4, u32::MAX, ro);
            chain.insert(0, 0x100);
        }
        for (i, &at) in chain.iter().enumerate() {
            let next = chain.get(i + 1).map_or(0, |&o| o as u32);
            let head = self.copy32(at);
            self.put(at, &((head & 0xf_ffff) | (next << 20)).to_le_bytes());
            self.rule(at, 4, 0xfff0_0000, ro);
        }
    }
}

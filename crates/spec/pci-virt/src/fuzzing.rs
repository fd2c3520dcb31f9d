//! The body of the `pci_virt` fuzz target (`fuzz/fuzz_targets`), shared
//! with the stable test that replays its corpus and with the property
//! tests: the invariant checks are public so that both call the same code.
//! Everything here panics only if an invariant of this crate breaks.

use crate::{FirewallPolicy, Ids, ModelBuilder, Size, VirtualConfig, WriteOutcome};
use pci::{cap_id, ext_cap_id, Bar, ConfigSpace, MemKind, MsiRepr, MsixRepr, PciePortType};
use pci::{PcieRepr, PmRepr};

/// Feeds `data` to a virtual space. The first byte picks a model (even) or
/// a firewall (odd) and options; a firewall takes the device's 256 or 4096
/// bytes and one byte of allow-list bits next. The rest is a sequence of
/// 7-byte operations: offset (2 bytes), width and kind, value (4 bytes).
pub fn run(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let size = if ctl & 2 != 0 { 4096 } else { 256 };
    let (mut vc, device, ops) = if ctl & 1 == 0 {
        (model(ctl), vec![0u8; size], rest)
    } else {
        let mut device = rest.get(..size).unwrap_or(rest).to_vec();
        device.resize(size, 0);
        device[0x0e] &= 0x80;
        let sel = rest.get(size).copied().unwrap_or(0xff);
        let policy = policy(&device, sel, ctl);
        let vc = VirtualConfig::firewall(&device, &policy).expect("a valid firewall policy");
        check_chain(&device, &vc, &policy);
        (vc, device, rest.get(size + 1..).unwrap_or(&[]))
    };
    for op in ops.chunks_exact(7) {
        let offset = usize::from(u16::from_le_bytes([op[0], op[1]])) % (size + 8);
        let width = [1, 2, 4, 3][usize::from(op[2] & 3)];
        let bytes = &op[3..3 + width.min(4)];
        if op[2] & 0x80 != 0 {
            check_read(&vc, &device, offset, width);
        } else {
            let before = vc.clone();
            match vc.write(offset, bytes) {
                Ok(out) => check_write(&before, &vc, offset, bytes, &out),
                Err(_) => {
                    assert!(
                        offset + width > size || width == 3,
                        "write refused in range"
                    );
                    assert_eq!(
                        before.bytes(),
                        vc.bytes(),
                        "a refused write changed the space"
                    );
                }
            }
        }
    }
}

/// A model with every kind of BAR and capability, options from `ctl`.
pub fn model(ctl: u8) -> VirtualConfig {
    let ids = Ids {
        vendor: 0x1b36,
        device: 0x0010,
        class: 0x0108,
        prog_if: 0x02,
        ..Ids::default()
    };
    let extended = ctl & 2 != 0;
    let size = if extended {
        Size::Extended
    } else {
        Size::Conventional
    };
    let mem = |mem, prefetchable| Bar::Memory {
        addr: 0xfe00_0000,
        mem,
        prefetchable,
    };
    let pm = PmRepr {
        version: 3,
        pme_clock: false,
        dsi: false,
        aux_current: 0,
        d1: true,
        d2: ctl & 0x10 == 0,
        pme_support: 0x19,
        power_state: 0,
        no_soft_reset: true,
        pme_enable: false,
        data_select: 0,
        data_scale: 0,
        pme_status: false,
    };
    let msi = MsiRepr {
        enable: false,
        multiple_message_capable: 3,
        multiple_message_enable: 0,
        is_64bit: ctl & 4 != 0,
        per_vector_masking: ctl & 8 != 0,
        address: 0,
        data: 0,
        mask: Some(0),
        pending: Some(0),
    };
    let msix = MsixRepr {
        enable: false,
        function_mask: false,
        table_size: 16,
        table_bir: 0,
        table_offset: 0x2000,
        pba_bir: 0,
        pba_offset: 0x3000,
    };
    let pcie = PcieRepr {
        version: if ctl & 0x20 != 0 { 2 } else { 1 },
        port_type: PciePortType::Endpoint,
        slot: false,
        interrupt_message: 0,
        max_payload_supported: 256,
        flr: ctl & 0x40 != 0,
        device_control: 0x2810,
        device_status: 0,
        link: None,
    };
    let b = ModelBuilder::new(size, &ids)
        .interrupt_pin(1)
        .and_then(|b| b.bar(0, mem(MemKind::Bits64, true), 0x4000))
        .and_then(|b| b.bar(2, Bar::Io { port: 0xc000 }, 0x20))
        .and_then(|b| b.bar(3, mem(MemKind::Bits32, false), 0x1000))
        .and_then(|b| b.pm(0x40, &pm, ctl & 0x10 != 0))
        .and_then(|b| b.msi(0x48, &msi))
        .and_then(|b| b.msix(0x60, &msix))
        .and_then(|b| b.pcie(0x70, &pcie))
        .and_then(|b| b.vendor(0xb0, b"pcibox"));
    let mut b = b.expect("the fuzz model is valid");
    if ctl & 0x80 != 0 {
        b = b.rom(0x10000).expect("a valid ROM");
    }
    if extended {
        b = b
            .ext(0x100, ext_cap_id::DSN, 1, &[1, 2, 3, 4, 5, 6, 7, 8])
            .and_then(|b| b.ext(0x140, ext_cap_id::AER, 2, &[0; 0x40]))
            .expect("valid extended capabilities");
    }
    b.build()
}

/// A firewall policy for `device`: allow-list bits from `sel`, every BAR
/// the device has sized, a ROM when `ctl` says so.
pub fn policy(device: &[u8], sel: u8, ctl: u8) -> FirewallPolicy {
    let std = [
        cap_id::PM,
        cap_id::MSI,
        cap_id::MSIX,
        cap_id::EXP,
        cap_id::VENDOR,
        0x0d,
    ];
    let ext = [
        (sel & 0x40 != 0, ext_cap_id::AER),
        (sel & 0x80 != 0, ext_cap_id::DSN),
        (sel & 0x40 != 0 && ctl & 0x20 != 0, ext_cap_id::VENDOR),
        (sel & 0x80 != 0 && ctl & 0x20 != 0, ext_cap_id::NULL),
    ];
    let mut p = FirewallPolicy {
        caps: (0..std.len())
            .filter(|i| sel & (1 << i) != 0)
            .map(|i| std[i])
            .collect(),
        ext_caps: ext.iter().filter(|e| e.0).map(|e| e.1).collect(),
        d0_d3hot_only: ctl & 0x10 != 0,
        flr: ctl & 0x40 != 0,
        rom_size: if ctl & 0x80 != 0 { 0x8000 } else { 0 },
        ..FirewallPolicy::default()
    };
    if let Ok(cs) = ConfigSpace::new_checked(device) {
        for (i, bar) in cs.bars() {
            p.bar_sizes[i] = match bar {
                Bar::Io { .. } => 0x20,
                Bar::Memory {
                    mem: MemKind::Bits64,
                    ..
                } => 1 << 33,
                Bar::Memory {
                    mem: MemKind::Reserved,
                    ..
                } => 0,
                Bar::Memory { .. } => 0x1000,
                _ => 0,
            };
        }
    }
    p
}

/// A read of `width` bytes at `offset` with the device's bytes: in range,
/// pass-through bits come from the device, virtual ones from the copy.
pub fn check_read(vc: &VirtualConfig, device: &[u8], offset: usize, width: usize) {
    let mut buf = vec![0u8; width];
    if let Some(d) = device.get(offset..offset + width) {
        buf.copy_from_slice(d);
    }
    let ok = vc.read(offset, &mut buf).is_ok();
    assert_eq!(ok, matches!(width, 1 | 2 | 4) && offset + width <= vc.len());
    if !ok {
        return;
    }
    let view = vc.view(device);
    assert_eq!(
        buf,
        view[offset..offset + width],
        "read differs from the view"
    );
    for (i, &b) in buf.iter().enumerate() {
        let at = offset + i;
        let v = vc.policy().virtual_bits(at);
        assert_eq!(b & !v, device[at] & !v, "pass-through bits at {at:#x}");
        assert_eq!(b & v, vc.bytes()[at] & v, "virtual bits at {at:#x}");
    }
}

/// All checks of one successful write of `data` at `offset`.
pub fn check_write(
    before: &VirtualConfig,
    after: &VirtualConfig,
    offset: usize,
    data: &[u8],
    out: &WriteOutcome,
) {
    assert_eq!(
        before.policy(),
        after.policy(),
        "a write changed the policy"
    );
    check_read_only(before, after, offset, data.len());
    check_w1c(before, after, offset, data);
    check_forward(after, offset, data, out);
    let bits = if data.len() == 4 {
        u32::MAX
    } else {
        (1 << (8 * data.len())) - 1
    };
    assert_eq!(out.denied & !bits, 0, "denied bits outside the access");
    for (i, &d) in data.iter().enumerate() {
        let at = offset + i;
        let tried = d & !before.bytes()[at] & before.policy().read_only(at);
        let denied = (out.denied >> (8 * i)) as u8;
        assert_eq!(
            tried & !denied,
            0,
            "a write to read-only bits at {at:#x} not denied"
        );
    }
    assert_eq!(
        out.virtualised & !bits,
        0,
        "virtualised bits outside the access"
    );
    for e in &out.events {
        if let crate::Event::BarMoved { bar, .. } = e {
            assert!(*bar < 6);
        }
    }
}

/// Read-only bits never change, nor does any byte outside the access.
pub fn check_read_only(before: &VirtualConfig, after: &VirtualConfig, offset: usize, len: usize) {
    for (at, (&b, &a)) in before.bytes().iter().zip(after.bytes()).enumerate() {
        if !(offset..offset + len).contains(&at) {
            assert_eq!(b, a, "byte {at:#x} outside the access changed");
        }
        let ro = before.policy().read_only(at);
        assert_eq!(b & ro, a & ro, "read-only bits changed at {at:#x}");
    }
}

/// Write-1-to-clear bits are never set by a write and clear only where
/// the write had a 1.
pub fn check_w1c(before: &VirtualConfig, after: &VirtualConfig, offset: usize, data: &[u8]) {
    for (i, &d) in data.iter().enumerate() {
        let at = offset + i;
        let c = before.policy().w1c(at);
        let (b, a) = (before.bytes()[at] & c, after.bytes()[at] & c);
        assert_eq!(a & !b, 0, "a write set write-1-to-clear bits at {at:#x}");
        assert_eq!(
            (b & !a) & !d,
            0,
            "write-1-to-clear bits cleared by a 0 at {at:#x}"
        );
    }
}

/// A forwarded write covers exactly the access and only pass-through bits
/// that are writable or write-1-to-clear; applying it to any device value
/// changes nothing else and never writes 1 to another write-1-to-clear bit.
pub fn check_forward(vc: &VirtualConfig, offset: usize, data: &[u8], out: &WriteOutcome) {
    let Some(f) = out.forward else {
        return;
    };
    assert_eq!(
        (usize::from(f.offset), usize::from(f.len)),
        (offset, data.len())
    );
    assert_eq!(f.value & !f.mask, 0, "forwarded value outside its mask");
    for (i, &d) in data.iter().enumerate() {
        let at = offset + i;
        let p = vc.policy();
        let m = (f.mask >> (8 * i)) as u8;
        assert_eq!(
            m & p.virtual_bits(at),
            0,
            "forwarded virtual bits at {at:#x}"
        );
        assert_eq!(
            m & p.read_only(at),
            0,
            "forwarded read-only bits at {at:#x}"
        );
        assert_eq!(
            (f.w1c >> (8 * i)) as u8,
            p.w1c(at),
            "write-1-to-clear guard at {at:#x}"
        );
        assert_eq!(
            (f.value >> (8 * i)) as u8,
            d & m,
            "forwarded value at {at:#x}"
        );
    }
    for current in [0, u32::MAX, 0x5a5a_a5a5, crate::space::le(data)] {
        let new = f.apply(current);
        assert_eq!(
            (new ^ current) & !(f.mask | f.w1c),
            0,
            "apply changed other bits"
        );
        assert_eq!(
            new & f.w1c & !f.mask,
            0,
            "apply rewrote a write-1-to-clear bit as 1"
        );
    }
}

/// After filtering, the visible lists walk without a marked stop, within
/// their bounds, through a subset of the device's capabilities in the
/// device's order, with allowed IDs only; everything else in the
/// capability area is hidden (reads 0, read-only; the link header at
/// 0x100 aside).
pub fn check_chain(device: &[u8], vc: &VirtualConfig, policy: &FirewallPolicy) {
    let view = vc.view(device);
    let (orig, seen) = (
        ConfigSpace::new_checked(device),
        ConfigSpace::new_checked(&view[..]),
    );
    let (Ok(orig), Ok(seen)) = (orig, seen) else {
        panic!("config spaces of {} bytes", device.len());
    };
    let walked: Vec<_> = orig
        .caps()
        .map_while(Result::ok)
        .map(|c| (c.offset.into(), c.id.into()))
        .collect();
    let items = seen
        .caps()
        .map(|r| r.map(|c| (c.offset.into(), c.id.into())));
    let allowed = |id: u16| policy.caps.iter().any(|&c| u16::from(c) == id);
    let n = check_list(items, &walked, allowed, 48);
    assert_eq!(seen.status() & pci::status::CAP_LIST != 0, n > 0);
    let walked: Vec<_> = orig
        .ext_caps()
        .map_while(Result::ok)
        .map(|c| (c.offset, c.id))
        .collect();
    // Leave out the link header the filter puts at 0x100 when the first
    // kept capability is elsewhere.
    let link = |r: &Result<pci::ExtCap, _>| matches!(r, Ok(c) if (c.offset, c.id, c.version) == (0x100, 0, 0));
    let items = seen
        .ext_caps()
        .filter(|r| !link(r))
        .map(|r| r.map(|c| (c.offset, c.id)));
    check_list(items, &walked, |id| policy.ext_caps.contains(&id), 960);
    let chain =
        crate::filter_chain(device, &policy.caps, &policy.ext_caps).expect("filtered before");
    let inside = |at: usize| {
        chain
            .caps
            .iter()
            .chain(&chain.ext)
            .any(|k| (usize::from(k.offset)..usize::from(k.offset + k.len)).contains(&at))
    };
    for (at, &b) in view.iter().enumerate().skip(0x40) {
        if !inside(at) {
            let p = vc.policy();
            let hidden = (p.read_only(at), p.virtual_bits(at)) == (0xff, 0xff);
            assert!(
                hidden,
                "byte {at:#x} outside the kept capabilities is not hidden"
            );
            if !(0x100..0x104).contains(&at) {
                assert_eq!(
                    b, 0,
                    "byte {at:#x} outside the kept capabilities reads {b:#x}"
                );
            }
        }
    }
}

/// One visible list: no marked stop, at most `bound` entries, each
/// `(offset, id)` in the device's `walked` list with an allowed ID and in
/// its order. Returns how many there were.
fn check_list(
    items: impl Iterator<Item = Result<(u16, u16), pci::WalkError>>,
    walked: &[(u16, u16)],
    allowed: impl Fn(u16) -> bool,
    bound: usize,
) -> usize {
    let mut last = None;
    let mut n = 0;
    for item in items {
        n += 1;
        assert!(n <= bound, "filtered list longer than {bound}");
        let (at, id) = item.unwrap_or_else(|e| panic!("filtered list stops: {e}"));
        let pos = walked.iter().position(|&w| w == (at, id));
        let pos =
            pos.unwrap_or_else(|| panic!("capability {id:#x} at {at:#x} not in the device's list"));
        assert!(allowed(id), "capability {id:#x} not allowed");
        assert!(last < Some(pos), "filtered list out of the device's order");
        last = Some(pos);
    }
    n
}

//! The body of the `pci_config` fuzz target (`fuzz/fuzz_targets`), shared
//! with the stable test that replays its corpus and with the property
//! tests. It panics only if an invariant of this crate breaks.

use crate::dump;
use crate::ids::{IdDb, NameMode, Names};
use crate::{json, render, tree::Topology, Device, Options, OsInfo};
use pci::{
    Address, AerRepr, DsnRepr, MsiRepr, MsixRepr, PcieRepr, PmRepr, VirtioCapRepr, WalkError,
};

/// Feeds `data` to every parser of the crate. The first byte picks the
/// rendering options; the rest is a config space (cut down to 64, 256 or
/// 4096 bytes). The whole input is also tried as an lspci dump and as a
/// pci.ids file.
pub fn config(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let addr = Address {
        domain: 0,
        bus: 0,
        device: 0,
        function: 0,
    };
    if let Ok(dev) = Device::new(addr, rest.to_vec(), OsInfo::default()) {
        exercise(&dev, ctl);
    }
    if let Ok(devices) = dump::parse(data) {
        let mut all = Vec::new();
        for d in devices {
            assert!(d.config.len() <= 4096, "dump device over 4096 bytes");
            if let Ok(dev) = Device::new(d.addr, d.config, OsInfo::default()) {
                exercise(&dev, ctl);
                all.push(dev);
            }
        }
        all.sort_by_key(|d| d.addr);
        let topo = Topology::build(&all);
        for i in 0..all.len() {
            assert!(topo.bridge_path(&all, i).len() < all.len().max(1));
        }
        let names = Names::new(None, NameMode::Names);
        let picture = topo.forest(&all, None, Some(&names));
        // A line per device or empty bus (at most one per device and
        // bridge, and the host's), each at most 1 KiB.
        assert!(picture.len() <= (2 * all.len() + 2) * 1030);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(db) = IdDb::parse(text) {
            let names = Names::new(Some(db), NameMode::Both);
            let _ = names.vendor_device(0x8086, 0x100e);
            let _ = names.class(0x0200);
        }
    }
}

/// Walks, parses and renders one device, checking the walk bounds.
pub fn exercise(dev: &Device, ctl: u8) {
    let c = &dev.config;
    let b = c.as_bytes();
    let mut n = 0;
    let mut seen = [false; 256];
    for item in c.caps() {
        n += 1;
        assert!(n <= 49, "capability walk longer than 48 steps");
        let Ok(cap) = item else { continue };
        let at = usize::from(cap.offset);
        assert!(at >= 0x40 && at % 4 == 0, "capability at {at:#x}");
        assert!(!seen[at], "capability {at:#x} visited twice");
        seen[at] = true;
        let _ = PmRepr::parse(b, at);
        let _ = MsiRepr::parse(b, at);
        let _ = MsixRepr::parse(b, at);
        let _ = PcieRepr::parse(b, at);
        let _ = VirtioCapRepr::parse(b, at);
        if let Ok(m) = MsiRepr::parse(b, at) {
            // Emitting what was parsed must reproduce it.
            let mut copy = b.to_vec();
            if m.emit(&mut copy, at).is_ok() {
                assert_eq!(MsiRepr::parse(&copy, at), Ok(m));
            }
        }
    }
    let mut n = 0;
    for item in c.ext_caps() {
        n += 1;
        assert!(n <= 961, "extended capability walk longer than 960 steps");
        match item {
            Ok(cap) => {
                let at = usize::from(cap.offset);
                assert!(at >= 0x100 && at % 4 == 0);
                let _ = AerRepr::parse(b, at);
                let _ = DsnRepr::parse(b, at);
            }
            Err(WalkError::Looped { .. } | WalkError::IntoHeader { .. }) => {}
            Err(e) => panic!("unexpected extended walk stop {e}"),
        }
    }
    for (_, bar) in c.bars() {
        let _ = bar.is_64bit();
    }
    let opts = Options {
        verbose: ctl % 3,
        hex: (ctl >> 2) % 5,
        domains: ctl & 0x20 != 0,
        domains_requested: ctl & 0x20 != 0,
        kernel: ctl & 0x40 != 0,
        machine: ctl >> 7,
        path: 0,
    };
    let names = Names::new(None, NameMode::Names);
    let text = render(dev, &opts, &names);
    assert!(text.len() < 64 * 1024, "rendering of {} bytes", text.len());
    let jopts = json::JsonOptions {
        verbose: opts.verbose,
        hex: opts.hex,
    };
    let _ = json::View::new(dev, &names, &jopts);
}

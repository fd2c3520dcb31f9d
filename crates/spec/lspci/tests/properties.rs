//! Property tests: whatever the bytes, parsing and rendering never panic
//! and every walk ends within its bound; the dumps we print read back.

#![allow(clippy::unwrap_used)]

use pci::Address;
use pci_lspci::ids::{NameMode, Names};
use pci_lspci::tree::Topology;
use pci_lspci::{render, Device, Options, OsInfo};
use proptest::prelude::*;

const ADDR: Address = Address {
    domain: 0,
    bus: 0,
    device: 0,
    function: 0,
};

/// A config space that looks like one: the capability bit set and the
/// pointers and IDs drawn from a small set so that lists, loops and
/// extended capabilities actually occur.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![64usize, 256, 4096]),
        prop::collection::vec(any::<u8>(), 4096),
        prop::collection::vec(
            (
                0u8..64,
                prop::sample::select(vec![1u8, 5, 9, 0x10, 0x11, 0xff, 0x0d, 0x14]),
            ),
            0..12,
        ),
        prop::collection::vec((0u16..1024, 0u16..0x40), 0..12),
        any::<u8>(),
    )
        .prop_map(|(len, mut b, caps, ext, htype)| {
            b.truncate(len);
            b[0x06] |= 0x10;
            b[0x0e] = htype % 4;
            b[0x34] = 0x40;
            b[0x14] = 0x40;
            let mut at = 0x40usize;
            for (next, id) in caps {
                if at + 2 > len {
                    break;
                }
                b[at] = id;
                b[at + 1] = next * 4;
                at = usize::from(next) * 4;
            }
            if len == 4096 {
                let mut at = 0x100usize;
                for (next, id) in ext {
                    let h = u32::from(id) | (1 << 16) | (u32::from(next) * 4) << 20;
                    b[at..at + 4].copy_from_slice(&h.to_le_bytes());
                    at = usize::from(next) * 4;
                    if at < 0x100 {
                        break;
                    }
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any byte string of 0–4096 bytes through every parser and renderer.
    #[test]
    fn any_bytes(data in prop::collection::vec(any::<u8>(), 0..=4096)) {
        pci_lspci::fuzzing::config(&data);
    }

    /// Structured config spaces through -v/-vv/-xxxx rendering and JSON.
    #[test]
    fn structured_spaces(b in structured(), ctl in any::<u8>()) {
        let dev = Device::new(ADDR, b, OsInfo::default()).unwrap();
        pci_lspci::fuzzing::exercise(&dev, ctl);
        for verbose in 0..3 {
            let out = render(&dev, &Options { verbose, hex: 4, ..Options::default() },
                &pci_lspci::ids::Names::new(None, pci_lspci::ids::NameMode::Both));
            prop_assert!(out.starts_with("00:00.0 "));
        }
    }

    /// The -xxxx hex dump we print is read back by the dump parser intact.
    #[test]
    fn dump_round_trip(b in prop::collection::vec(any::<u8>(), 256)) {
        let dev = Device::new(ADDR, b.clone(), OsInfo::default()).unwrap();
        let out = render(&dev, &Options { hex: 3, ..Options::default() },
            &pci_lspci::ids::Names::new(None, pci_lspci::ids::NameMode::Numeric));
        let parsed = pci_lspci::dump::parse(out.as_bytes()).unwrap();
        prop_assert_eq!(parsed.len(), 1);
        prop_assert_eq!(&parsed[0].config, &b);
    }

    /// Any set of functions, bridges with any bus numbers and any parent
    /// links (loops included): the topology is built, every bridge path
    /// ends, and the tree has a bounded line per device or bus.
    #[test]
    fn topologies(spec in prop::collection::vec(
        (0u32..3, 0u8..8, 0u8..4, 0u8..2, 0usize..4, prop::array::uniform3(0u8..10),
         prop::option::of(0usize..40)),
        0..40,
    )) {
        let mut devs: Vec<Device> = Vec::new();
        for (domain, bus, device, function, kind, buses, _) in &spec {
            let addr = Address { domain: *domain, bus: *bus, device: *device, function: *function };
            if devs.iter().any(|d| d.addr == addr) {
                continue;
            }
            let (class, htype) = [(0x0604u16, 1u8), (0x0607, 2), (0x0200, 0), (0x0604, 0x7f)][*kind];
            let mut b = vec![0u8; 64];
            b[0xa..0xc].copy_from_slice(&class.to_le_bytes());
            b[0xe] = htype;
            b[0x18..0x1b].copy_from_slice(buses);
            devs.push(Device::new(addr, b, OsInfo::default()).unwrap());
        }
        let n = devs.len();
        for (i, (.., parent)) in spec.iter().enumerate().take(n) {
            devs[i].os.parent = parent.filter(|&p| p < n).map(|p| devs[p].addr);
        }
        devs.sort_by_key(|d| d.addr);
        let t = Topology::build(&devs);
        for i in 0..n {
            let path = t.bridge_path(&devs, i);
            prop_assert!(path.len() < n);
            prop_assert!(!path.contains(&devs[i].addr));
        }
        let names = Names::new(None, NameMode::Names);
        let shown = |i: usize| i.is_multiple_of(2);
        for filter in [None, Some(&shown as &dyn Fn(usize) -> bool)] {
            let out = t.forest(&devs, filter, Some(&names));
            prop_assert!(out.lines().count() <= 2 * n + 2);
            prop_assert!(out.lines().all(|l| l.len() <= 1026));
        }
    }

}

//! Built and filtered spaces as the real `lspci` (pciutils) reads them: a
//! dump of the virtual view goes through `lspci -F DUMP -vv`, which walks
//! and decodes the capability lists with its own code.

#![allow(clippy::unwrap_used)]

use pci::{cap_id, Address};
use pci_lspci::ids::{NameMode, Names};
use pci_lspci::{render, Device, Options, OsInfo};
use pci_virt::{FirewallPolicy, VirtualConfig};
use std::process::Command;

const VIRTIO_NET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../pcibox/tests/data/pci-config/microvm-0000-00-03.0.config.bin"
);

/// `lspci -F` on a dump of `bytes` (as function 00:01.0), with `-vv`.
/// The test command installs pciutils; without it this fails.
fn lspci_vv(bytes: &[u8], name: &str) -> String {
    let addr = Address {
        domain: 0,
        bus: 0,
        device: 1,
        function: 0,
    };
    let dev = Device::new(addr, bytes.to_vec(), OsInfo::default()).unwrap();
    let opts = Options {
        hex: 4,
        ..Options::default()
    };
    let dump = render(&dev, &opts, &Names::new(None, NameMode::Numeric));
    let path = std::env::temp_dir().join(format!("pci-virt-{}-{name}.txt", std::process::id()));
    std::fs::write(&path, dump).unwrap();
    let out = Command::new("lspci")
        .arg("-F")
        .arg(&path)
        .arg("-vv")
        .output()
        .expect("run lspci (pciutils must be installed: ./scripts/test.sh installs it)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "lspci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The trimmed lines of `text` that start with `prefix`.
fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// Asserts that `text` has every line of `want` (trimmed, whole lines).
fn has(text: &str, want: &[&str]) {
    for w in want {
        assert!(
            text.lines().any(|l| l.trim() == *w),
            "no line {w:?} in:\n{text}"
        );
    }
}

#[test]
fn model_as_lspci_sees_it() {
    let mut vc = pci_virt::fuzzing::model(0x6e);
    let text = lspci_vv(vc.bytes(), "model");
    has(
        &text,
        &[
            "Control: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-",
            "Interrupt: pin A routed to IRQ 0",
            "Region 0: Memory at fe000000 (64-bit, prefetchable) [disabled]",
            "Region 2: I/O ports at c000 [disabled]",
            "Region 3: Memory at fe000000 (32-bit, non-prefetchable) [disabled]",
            "Capabilities: [40] Power Management version 3",
            "Capabilities: [48] MSI: Enable- Count=1/8 Maskable+ 64bit+",
            "Capabilities: [60] MSI-X: Enable- Count=16 Masked-",
            "Vector table: BAR=0 offset=00002000",
            "PBA: BAR=0 offset=00003000",
            "Capabilities: [70] Express (v2) Endpoint, MSI 00",
            "Capabilities: [100 v1] Device Serial Number 08-07-06-05-04-03-02-01",
        ],
    );
    let titles = lines(&text, "Capabilities:");
    assert_eq!(titles.len(), 7, "{titles:#?}");
    assert!(titles[4].starts_with("Capabilities: [b0] Vendor Specific Information: Len=09"));
    assert!(titles[6].starts_with("Capabilities: [140 v2] Advanced Error Reporting"));
    // DevCap's second line says FLR capable; DevCtl's, that the bit reads 0.
    assert!(
        lines(&text, "ExtTag- AttnBtn-")[0].contains("FLReset+"),
        "{text}"
    );
    has(
        &text,
        &["RlxdOrd+ ExtTag- PhantFunc- AuxPwr- NoSnoop+ FLReset-"],
    );
    // The driver's writes, then lspci again.
    let writes = [
        (0x04, &[0x06][..]),
        (0x4a, &[0x21]),
        (0x63, &[0x80]),
        (0x44, &[0x03]),
    ];
    for (at, v) in writes {
        vc.write(at, v).unwrap();
    }
    assert_eq!(
        vc.write(0x79, &[0x80]).unwrap().events,
        [pci_virt::Event::FlrRequested]
    );
    let text = lspci_vv(vc.bytes(), "model-written");
    has(
        &text,
        &[
            "Control: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-",
            "Region 0: Memory at fe000000 (64-bit, prefetchable)",
            "Region 2: I/O ports at c000 [disabled]",
            "Capabilities: [48] MSI: Enable+ Count=4/8 Maskable+ 64bit+",
            "Capabilities: [60] MSI-X: Enable+ Count=16 Masked-",
        ],
    );
    assert!(lines(&text, "Status: D3 NoSoftRst+").len() == 1, "{text}");
}

#[test]
fn firewall_over_virtio_net() {
    let dev = std::fs::read(VIRTIO_NET).unwrap();
    let real = lspci_vv(&dev, "virtio-net");
    let mut bar_sizes = [0; 6];
    bar_sizes[0] = 512 << 10;
    let policy = FirewallPolicy {
        caps: vec![cap_id::VENDOR, cap_id::MSIX],
        bar_sizes,
        ..FirewallPolicy::default()
    };
    let vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    let seen = lspci_vv(&vc.view(&dev), "virtio-net-all");
    // Everything kept: the same regions and capabilities, MSI-X disabled.
    assert_eq!(lines(&seen, "Region"), lines(&real, "Region"));
    let msix_off = |t: &str| t.replace("MSI-X: Enable+", "MSI-X: Enable-");
    assert_eq!(
        lines(&seen, "Capabilities:"),
        lines(&msix_off(&real), "Capabilities:")
    );
    assert_eq!(lines(&seen, "BAR="), lines(&real, "BAR="));
    // MSI-X only: the virtio capabilities are gone.
    let policy = FirewallPolicy {
        caps: vec![cap_id::MSIX],
        ..policy
    };
    let vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    let seen = lspci_vv(&vc.view(&dev), "virtio-net-msix");
    assert_eq!(
        lines(&seen, "Capabilities:"),
        ["Capabilities: [98] MSI-X: Enable- Count=3 Masked-"]
    );
    assert_eq!(lines(&seen, "Vector table:"), lines(&real, "Vector table:"));
}

#[test]
fn firewall_over_a_pcie_model() {
    let dev = pci_virt::fuzzing::model(0x6e).bytes().to_vec();
    let policy = FirewallPolicy {
        caps: vec![cap_id::MSI, cap_id::EXP],
        ext_caps: vec![pci::ext_cap_id::AER],
        ..FirewallPolicy::default()
    };
    let vc = VirtualConfig::firewall(&dev, &policy).unwrap();
    let seen = lspci_vv(&vc.view(&dev), "pcie-firewall");
    let titles = lines(&seen, "Capabilities:");
    assert_eq!(titles.len(), 4, "{seen}");
    assert_eq!(
        titles[0],
        "Capabilities: [48] MSI: Enable- Count=1/8 Maskable+ 64bit+"
    );
    assert_eq!(
        titles[1],
        "Capabilities: [70] Express (v2) Endpoint, MSI 00"
    );
    assert_eq!(titles[2], "Capabilities: [100 v0] Null");
    assert!(titles[3].starts_with("Capabilities: [140 v2] Advanced Error Reporting"));
    // No BAR has a size in the policy: lspci sees none.
    assert_eq!(lines(&seen, "Region"), Vec::<&str>::new());
}

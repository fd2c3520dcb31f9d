//! `pcibox lspci --json`: every output validates against
//! `docs/lspci.schema.json`, and what it says agrees with pciutils' lspci
//! on the same input (this machine, every dump, fake sysfs trees): IDs and
//! names (`-vmm -nn`), driver, NUMA node, IOMMU group and physical slot
//! (`-vmm -k`), IRQs and interrupt pins (`-vv`, `-b -vv`), bus numbers,
//! BARs and capabilities (`-b -vv`), and config bytes (`-xxxx`).

#![allow(clippy::unwrap_used)]

mod lspci_util;

use lspci_util::sysfs::FakeSysfs;
use lspci_util::{data, dumps, lspci, pcibox, repo_root, text, without_modules};
use serde_json::Value;
use std::collections::HashMap;

fn validator() -> jsonschema::Validator {
    let path = repo_root().join("docs/lspci.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

/// `pcibox lspci ARGS --json`, validated against the schema.
fn json(v: &jsonschema::Validator, args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.push("--json");
    let o = pcibox(&all);
    assert!(
        o.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let value: Value = serde_json::from_slice(&o.stdout).unwrap();
    let errors: Vec<String> = v
        .iter_errors(&value)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{all:?} against the schema: {errors:#?}");
    value.as_array().unwrap().clone()
}

/// lspci's output split into one text per device, by `dddd:bb:dd.f`.
fn blocks(args: &[&str]) -> HashMap<String, String> {
    let mut all = args.to_vec();
    all.push("-D");
    let out = lspci(&all);
    assert!(out.status.success(), "lspci {all:?}");
    let mut map = HashMap::new();
    for b in without_modules(&text(&out)).split("\n\n") {
        if let Some((slot, _)) = b.split_once(' ').filter(|_| !b.is_empty()) {
            map.insert(slot.to_string(), b.to_string());
        }
    }
    map
}

/// `lspci -vmm -nn -k`'s records, by slot, as tag → value.
fn records(args: &[&str]) -> HashMap<String, HashMap<String, String>> {
    let mut map = HashMap::new();
    for b in blocks(&[args, &["-vmm", "-nn", "-k"]].concat()).into_values() {
        let rec: HashMap<String, String> = b
            .lines()
            .filter_map(|l| l.split_once(":\t"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert(rec["Slot"].clone(), rec);
    }
    map
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

/// A name with its ID as lspci -nn prints it, `unknown` when pci.ids has
/// no name.
fn nn(name: &Value, id: &str, unknown: &str) -> String {
    format!("{} [{id}]", s(name).unwrap_or(unknown))
}

/// The config bytes of one device in an `lspci -x…` block.
fn hex_bytes(block: &str) -> String {
    block
        .lines()
        .skip(1)
        .flat_map(|l| l.split_once(": ").map(|(_, h)| h.replace(' ', "")))
        .collect()
}

/// Checks `pcibox lspci OURS --json` against `lspci THEIRS`.
fn agrees(v: &jsonschema::Validator, ours: &[&str], theirs: &[&str], from_os: bool) {
    let views = json(v, ours);
    let recs = records(theirs);
    assert_eq!(views.len(), recs.len(), "{ours:?}");
    for view in &views {
        let slot = s(&view["slot"]).unwrap();
        let r = &recs[slot];
        let (vid, did) = (
            s(&view["vendor_id"]).unwrap(),
            s(&view["device_id"]).unwrap(),
        );
        assert_eq!(
            r["Vendor"],
            nn(&view["vendor_name"], vid, "Vendor"),
            "{slot}"
        );
        assert_eq!(
            r["Device"],
            nn(&view["device_name"], did, "Device"),
            "{slot}"
        );
        let class = s(&view["class"]).unwrap();
        assert_eq!(
            r["Class"],
            nn(&view["class_name"], class, "Class"),
            "{slot}"
        );
        assert_eq!(r["ProgIf"], s(&view["prog_if"]).unwrap(), "{slot}");
        let rev = s(&view["revision"]).unwrap();
        assert_eq!(r.get("Rev").map(String::as_str).unwrap_or("00"), rev);
        match view["subsystem"].as_object() {
            Some(sub) => {
                let (sv, sd) = (s(&sub["vendor_id"]).unwrap(), s(&sub["device_id"]).unwrap());
                assert_eq!(r["SVendor"], nn(&sub["vendor_name"], sv, "Unknown vendor"));
                assert_eq!(r["SDevice"], nn(&sub["device_name"], sd, "Device"));
            }
            None => assert!(!r.contains_key("SVendor"), "{slot}"),
        }
        let opt = |k: &str| r.get(k).map(String::as_str);
        assert_eq!(s(&view["driver"]), opt("Driver"), "{slot}");
        assert_eq!(
            view["numa_node"].as_i64().map(|n| n.to_string()).as_deref(),
            opt("NUMANode")
        );
        assert_eq!(s(&view["iommu_group"]), opt("IOMMUGroup"), "{slot}");
        assert_eq!(s(&view["physical_slot"]), opt("PhySlot"), "{slot}");
        if !from_os {
            for k in [
                "driver",
                "irq",
                "numa_node",
                "iommu_group",
                "physical_slot",
                "label",
            ] {
                assert!(view[k].is_null(), "{slot}: {k} from a dump");
            }
        }
    }

    // -v: interrupts, buses, BARs and capabilities; -xxxx: the bytes.
    let views = json(v, &[ours, &["-v", "-xxxx"]].concat());
    let os_view = blocks(&[theirs, &["-vv"]].concat());
    let bus_view = blocks(&[theirs, &["-vv", "-b"]].concat());
    let hex = blocks(&[theirs, &["-xxxx"]].concat());
    for view in &views {
        let slot = s(&view["slot"]).unwrap();
        let (ob, bb) = (&os_view[slot], &bus_view[slot]);
        let line = view["interrupt_line"].as_u64().unwrap();
        let pin = s(&view["interrupt_pin"]).unwrap_or("?");
        if view["header_type"] != "unknown" && (pin != "?" || line != 0) {
            let want = format!("\tInterrupt: pin {pin} routed to IRQ {line}");
            assert!(
                bb.lines().any(|l| l == want),
                "{slot}: no {want:?} in\n{bb}"
            );
        }
        if let Some(irq) = view["irq"].as_u64().filter(|&i| i != 0) {
            let want = format!(" routed to IRQ {irq}");
            assert!(ob.lines().any(|l| l.ends_with(&want)), "{slot}: {ob}");
        }
        if let Some(b) = view["buses"].as_object() {
            let want = format!(
                "\tBus: primary={}, secondary={}, subordinate={},",
                s(&b["primary"]).unwrap(),
                s(&b["secondary"]).unwrap(),
                s(&b["subordinate"]).unwrap()
            );
            assert!(bb.contains(&want), "{slot}: no {want:?}");
        }
        for bar in view["bars"].as_array().unwrap() {
            let (addr, n) = (s(&bar["address"]).unwrap(), bar["index"].as_u64().unwrap());
            let want = match (s(&bar["kind"]).unwrap(), s(&bar["width"])) {
                ("io", _) if addr.trim_start_matches('0').is_empty() => continue,
                ("io", _) => format!("\tRegion {n}: I/O ports at {addr}"),
                // lspci -b shows no address for it (libpci warns instead).
                (_, Some("broken-64-bit")) => continue,
                (_, _) if addr.trim_start_matches('0').is_empty() => continue,
                (_, Some(w)) => format!(
                    "\tRegion {n}: Memory at {addr} ({w}, {}prefetchable)",
                    if bar["prefetchable"] == true {
                        ""
                    } else {
                        "non-"
                    }
                ),
                _ => panic!("{slot}: memory BAR without width"),
            };
            assert!(bb.contains(&want), "{slot}: no {want:?} in\n{bb}");
        }
        for cap in view["capabilities"].as_array().unwrap() {
            let title = format!("\tCapabilities: [{}] ", s(&cap["offset"]).unwrap());
            let line = bb
                .lines()
                .find(|l| l.starts_with(&title))
                .unwrap_or_else(|| panic!("{slot}: lspci lacks {title:?}"));
            if let Some(m) = cap.get("parsed").and_then(|p| p.get("msix")) {
                let n = m["table_size"].as_u64().unwrap();
                assert!(line.contains(&format!("Count={n} ")), "{line} vs {n}");
            }
            if let Some(m) = cap.get("parsed").and_then(|p| p.get("msi")) {
                let is64 = m["is_64bit"].as_bool().unwrap();
                assert!(line.ends_with(if is64 { "64bit+" } else { "64bit-" }));
            }
        }
        for cap in view["extended_capabilities"].as_array().unwrap() {
            let title = format!(
                "\tCapabilities: [{} v{}] ",
                s(&cap["offset"]).unwrap(),
                cap["version"]
            );
            assert!(bb.contains(&title), "{slot}: lspci lacks {title:?}");
        }
        assert_eq!(
            s(&view["config"]).unwrap(),
            hex_bytes(&hex[slot]),
            "{slot}: config bytes"
        );
    }
}

#[test]
fn json_agrees_with_lspci_on_sysfs() {
    let v = validator();
    agrees(&v, &[], &[], true);
    let t = FakeSysfs::build(
        "json-sysfs-tree",
        &data().join("synthetic-tree.lspci-x.txt"),
        &[("0000:0a:00.0", "0000:00:04.0")],
    );
    let p = t.param();
    agrees(&v, &["-O", &p], &["-A", "linux-sysfs", "-O", &p], true);
    let t = FakeSysfs::build(
        "json-sysfs-synth",
        &data().join("synthetic.lspci-xxxx.txt"),
        &[],
    );
    let p = t.param();
    agrees(&v, &["-O", &p], &["-A", "linux-sysfs", "-O", &p], true);
}

#[test]
fn json_agrees_with_lspci_on_dumps() {
    let v = validator();
    for dump in dumps() {
        let f = dump.to_str().unwrap();
        agrees(&v, &["-F", f], &["-F", f], false);
    }
}

#[test]
fn json_options_and_schema() {
    let v = validator();
    let f = data().join("synthetic.lspci-xxxx.txt");
    let f = f.to_str().unwrap();
    // Without -v: the short form; with -x… the bytes lspci would dump.
    let short = json(&v, &["-F", f]);
    assert!(short
        .iter()
        .all(|d| d.get("capabilities").is_none() && d.get("config").is_none()));
    for flag in ["-x", "-xxx", "-xxxx"] {
        let dumps = blocks(&["-F", f, flag]);
        for d in json(&v, &["-F", f, flag]) {
            let slot = s(&d["slot"]).unwrap();
            assert_eq!(
                s(&d["config"]).unwrap(),
                hex_bytes(&dumps[slot]),
                "{flag} {slot}"
            );
        }
    }
    // The filters and -k/-D apply; -D changes nothing (slots are full).
    let one = json(&v, &["-F", f, "-d", "8086:10d3", "-kD"]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["vendor_id"], "8086");
    assert_eq!(one[0]["device_id"], "10d3");
    assert_eq!(one[0]["class"], "0200");
    assert_eq!(json(&v, &["-F", f, "-s", "0001:"]).len(), 1);
    // The schema is not vacuous: each of these breaks it.
    let mut full = json(&v, &["-F", f, "-vv", "-x"]);
    let good = full[0].clone();
    for (key, bad) in [
        ("vendor_id", serde_json::json!(0x8086)),
        ("class", serde_json::json!("200")),
        ("irq", serde_json::json!(-1)),
        ("unknown_key", serde_json::json!(1)),
        ("config", serde_json::json!("00")),
        ("bars", serde_json::json!([{"index": 0}])),
        (
            "capabilities",
            serde_json::json!([{"offset": "40", "id": 16, "name": null}]),
        ),
    ] {
        full[0] = good.clone();
        full[0][key] = bad;
        let instance = Value::Array(full.clone());
        assert!(!v.is_valid(&instance), "the schema accepts {key} broken");
    }
    // Without the -v fields the schema wants none of their partners.
    let mut partial = good.as_object().unwrap().clone();
    partial.remove("bars");
    assert!(!v.is_valid(&Value::Array(vec![Value::Object(partial)])));
}

//! The pci.ids database and pciutils' rules for turning IDs into names.
//!
//! [`IdDb::parse`] reads the text of a `pci.ids` file (borrowing its
//! names); [`Names`] formats vendor/device, subsystem, class and prog-if
//! names exactly as `lspci` does, including its fallbacks when a name is
//! unknown or no database could be loaded, and its `-n`/`-nn` modes.

use std::collections::HashMap;

/// What a pci.ids entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Vendor(u16),
    Device(u16, u16),
    /// vendor, device, subvendor, subdevice
    Subsystem(u16, u16, u16, u16),
    /// subvendor, subdevice (an `S` block)
    GenericSubsystem(u16, u16),
    Class(u8),
    Subclass(u8, u8),
    ProgIf(u8, u8, u8),
}

/// An error in a pci.ids file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at line {line}")]
pub struct IdsError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (pciutils' wording).
    pub reason: &'static str,
}

/// A parsed pci.ids database, borrowing names from the file's text.
#[derive(Debug, Default)]
pub struct IdDb<'a> {
    map: HashMap<Key, &'a str>,
}

fn hex(s: &str, digits: usize) -> Option<u32> {
    let t = s.get(..digits)?;
    if !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(t, 16).ok()
}

fn white_at(s: &str, i: usize) -> bool {
    matches!(s.as_bytes().get(i), Some(b' ') | Some(b'\t'))
}

impl<'a> IdDb<'a> {
    /// Parses the text of a pci.ids file with pciutils' rules (tab nesting,
    /// `C` class blocks, `S` generic subsystem blocks, other capital-letter
    /// blocks skipped, `#` comments).
    pub fn parse(text: &'a str) -> Result<Self, IdsError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Cat {
            None,
            Vendor,
            Class,
            GenSub,
            Unknown,
        }
        let mut db = IdDb::default();
        let mut cat = Cat::None;
        let (mut v, mut d, mut c, mut sc) = (0u16, 0u16, 0u8, 0u8);
        let mut in_device = false;
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let err = |reason| IdsError { line, reason };
            let parse_err = || err("Parse error");
            let mut l = raw.strip_suffix('\r').unwrap_or(raw);
            // pciutils strips one trailing blank.
            if l.ends_with([' ', '\t']) {
                l = &l[..l.len() - 1];
            }
            let body = l.trim_start_matches([' ', '\t']);
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let p = l.trim_start_matches('\t');
            let nest = l.len() - p.len();
            let (key, rest) = match nest {
                0 => {
                    in_device = false;
                    let b = p.as_bytes();
                    if b.len() >= 2 && b[0] == b'C' && b[1] == b' ' {
                        let id = hex(&p[2..], 2).ok_or_else(parse_err)?;
                        if !white_at(p, 4) {
                            return Err(parse_err());
                        }
                        cat = Cat::Class;
                        c = id as u8;
                        sc = 0;
                        (Key::Class(c), &p[5..])
                    } else if b.len() >= 2 && b[0] == b'S' && b[1] == b' ' {
                        let id = hex(&p[2..], 4).ok_or_else(parse_err)?;
                        if p.len() != 6 {
                            return Err(parse_err());
                        }
                        if !db.map.contains_key(&Key::Vendor(id as u16)) {
                            return Err(err("Vendor does not exist"));
                        }
                        cat = Cat::GenSub;
                        v = id as u16;
                        continue;
                    } else if b.len() >= 2 && b[0].is_ascii_uppercase() && b[1] == b' ' {
                        cat = Cat::Unknown;
                        continue;
                    } else {
                        let id = hex(p, 4).ok_or_else(parse_err)?;
                        if !white_at(p, 4) {
                            return Err(parse_err());
                        }
                        cat = Cat::Vendor;
                        v = id as u16;
                        (Key::Vendor(v), &p[5..])
                    }
                }
                _ if cat == Cat::Unknown => continue,
                1 => match cat {
                    Cat::Vendor | Cat::GenSub => {
                        let id = hex(p, 4).ok_or_else(parse_err)?;
                        if !white_at(p, 4) {
                            return Err(parse_err());
                        }
                        if cat == Cat::Vendor {
                            d = id as u16;
                            in_device = true;
                            (Key::Device(v, d), &p[5..])
                        } else {
                            (Key::GenericSubsystem(v, id as u16), &p[5..])
                        }
                    }
                    Cat::Class => {
                        let id = hex(p, 2).ok_or_else(parse_err)?;
                        if !white_at(p, 2) {
                            return Err(parse_err());
                        }
                        sc = id as u8;
                        (Key::Subclass(c, sc), &p[3..])
                    }
                    _ => return Err(parse_err()),
                },
                2 => match cat {
                    Cat::Vendor if in_device => {
                        let sv = hex(p, 4).ok_or_else(parse_err)?;
                        if !white_at(p, 4) {
                            return Err(parse_err());
                        }
                        let sd = hex(p.get(5..).unwrap_or(""), 4).ok_or_else(parse_err)?;
                        if !white_at(p, 9) {
                            return Err(parse_err());
                        }
                        (Key::Subsystem(v, d, sv as u16, sd as u16), &p[10..])
                    }
                    Cat::Class => {
                        let id = hex(p, 2).ok_or_else(parse_err)?;
                        if !white_at(p, 2) {
                            return Err(parse_err());
                        }
                        (Key::ProgIf(c, sc, id as u8), &p[3..])
                    }
                    _ => return Err(parse_err()),
                },
                _ => return Err(parse_err()),
            };
            let name = rest.trim_start_matches([' ', '\t']);
            if name.is_empty() {
                return Err(parse_err());
            }
            if db.map.insert(key, name).is_some() {
                return Err(err("Duplicate entry"));
            }
        }
        Ok(db)
    }

    fn get(&self, key: Key) -> Option<&'a str> {
        self.map.get(&key).copied().filter(|s| !s.is_empty())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the database has no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Cuts `name` as pciutils does when it does not fit a C buffer of `size`
/// bytes: `size - 4` bytes of it and `...`.
pub fn fit(name: String, size: usize) -> String {
    if name.len() < size || size < 4 {
        return name;
    }
    let mut b = name.into_bytes();
    b.truncate(size - 4);
    b.extend_from_slice(b"...");
    String::from_utf8_lossy(&b).into_owned()
}

/// How IDs are shown: `-n` gives [`NameMode::Numeric`], `-nn`
/// [`NameMode::Both`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMode {
    /// Names only (numbers where a name is unknown).
    Names,
    /// Numbers only.
    Numeric,
    /// Names followed by numbers in brackets.
    Both,
}

/// Name lookups with lspci's formatting. `db` is `None` when no pci.ids
/// could be read (every name then falls back to numbers).
#[derive(Debug)]
pub struct Names<'a> {
    db: Option<IdDb<'a>>,
    mode: NameMode,
}

impl<'a> Names<'a> {
    /// Lookups in `db` (or none) shown in `mode`.
    pub fn new(db: Option<IdDb<'a>>, mode: NameMode) -> Self {
        Names { db, mode }
    }

    fn lookup(&self, key: Key) -> Option<&'a str> {
        self.db.as_ref().and_then(|db| db.get(key))
    }

    /// A single name with its number (pciutils' `format_name`).
    fn one(&self, mode: NameMode, name: Option<&str>, num: &str, unknown: &str) -> String {
        match (mode, name) {
            (NameMode::Numeric, _) => num.to_string(),
            (NameMode::Both, None) => format!("{unknown} [{num}]"),
            (NameMode::Names, None) => format!("{unknown} {num}"),
            (NameMode::Names, Some(n)) => n.to_string(),
            (NameMode::Both, Some(n)) => format!("{n} [{num}]"),
        }
    }

    /// A vendor and device name pair (pciutils' `format_name_pair`).
    fn pair(&self, v: Option<&str>, d: Option<&str>, num: &str) -> String {
        match (self.mode, v, d) {
            (NameMode::Numeric, _, _) => num.to_string(),
            (NameMode::Both, Some(v), Some(d)) => format!("{v} {d} [{num}]"),
            (NameMode::Both, None, _) => format!("Device [{num}]"),
            (NameMode::Both, Some(v), None) => format!("{v} Device [{num}]"),
            (NameMode::Names, Some(v), Some(d)) => format!("{v} {d}"),
            (NameMode::Names, None, _) => format!("Device {num}"),
            (NameMode::Names, Some(v), None) => format!("{v} Device {}", &num[5..]),
        }
    }

    /// `Vendor Device` for a function.
    pub fn vendor_device(&self, vendor: u16, device: u16) -> String {
        let num = format!("{vendor:04x}:{device:04x}");
        let v = self.lookup(Key::Vendor(vendor));
        let d = self.lookup(Key::Device(vendor, device));
        self.pair(v, d, &num)
    }

    /// The subsystem name of a function (`Subsystem:` line).
    pub fn subsystem(&self, vendor: u16, device: u16, sv: u16, sd: u16) -> String {
        let num = format!("{sv:04x}:{sd:04x}");
        let v = self.lookup(Key::Vendor(sv));
        let d = self.subsystem_name(vendor, device, sv, sd);
        self.pair(v, d, &num)
    }

    /// The vendor alone (`-m`'s vendor field).
    pub fn vendor(&self, vendor: u16) -> String {
        let num = format!("{vendor:04x}");
        self.one(self.mode, self.vendor_name(vendor), &num, "Vendor")
    }

    /// The device alone (`-m`'s device field).
    pub fn device(&self, vendor: u16, device: u16) -> String {
        let num = format!("{device:04x}");
        self.one(self.mode, self.device_name(vendor, device), &num, "Device")
    }

    /// The subsystem vendor alone (`-m`'s fifth field).
    pub fn subsystem_vendor(&self, sv: u16) -> String {
        let num = format!("{sv:04x}");
        self.one(self.mode, self.vendor_name(sv), &num, "Unknown vendor")
    }

    /// The subsystem device alone (`-m`'s sixth field).
    pub fn subsystem_device(&self, vendor: u16, device: u16, sv: u16, sd: u16) -> String {
        let num = format!("{sd:04x}");
        let d = self.subsystem_name(vendor, device, sv, sd);
        self.one(self.mode, d, &num, "Device")
    }

    /// The vendor's name in pci.ids, if any.
    pub fn vendor_name(&self, vendor: u16) -> Option<&'a str> {
        self.lookup(Key::Vendor(vendor))
    }

    /// The device's name in pci.ids, if any.
    pub fn device_name(&self, vendor: u16, device: u16) -> Option<&'a str> {
        self.lookup(Key::Device(vendor, device))
    }

    /// The subsystem's name in pci.ids: the entry under the device, else a
    /// generic `S` entry, else the device's own name when the subsystem IDs
    /// repeat the device's.
    pub fn subsystem_name(&self, vendor: u16, device: u16, sv: u16, sd: u16) -> Option<&'a str> {
        let mut d = None;
        if vendor > 0 && device > 0 {
            d = self.lookup(Key::Subsystem(vendor, device, sv, sd));
        }
        if d.is_none() {
            d = self.lookup(Key::GenericSubsystem(sv, sd));
        }
        if d.is_none() && vendor == sv && device == sd {
            d = self.lookup(Key::Device(vendor, device));
        }
        d
    }

    /// The class's name in pci.ids: the subclass's, else the base class's.
    pub fn class_name(&self, class: u16) -> Option<&'a str> {
        let (base, sub) = ((class >> 8) as u8, class as u8);
        self.lookup(Key::Subclass(base, sub))
            .or_else(|| self.lookup(Key::Class(base)))
    }

    /// The class name (`Ethernet controller`, `Unassigned class [ffff]`,
    /// `Class 1234`).
    pub fn class(&self, class: u16) -> String {
        let num = format!("{class:04x}");
        let (base, sub) = ((class >> 8) as u8, class as u8);
        if let Some(n) = self.lookup(Key::Subclass(base, sub)) {
            return self.one(self.mode, Some(n), &num, "Class");
        }
        match self.lookup(Key::Class(base)) {
            // Only the base class is known: show the full number too.
            Some(n) if self.mode != NameMode::Numeric => {
                self.one(NameMode::Both, Some(n), &num, "Class")
            }
            n => self.one(self.mode, n, &num, "Class"),
        }
    }

    /// The prog-if name, if pci.ids (or the IDE rule) has one; shown in
    /// every mode, as lspci does.
    pub fn prog_if(&self, class: u16, prog_if: u8) -> Option<String> {
        let (base, sub) = ((class >> 8) as u8, class as u8);
        if let Some(n) = self.lookup(Key::ProgIf(base, sub, prog_if)) {
            return Some(n.to_string());
        }
        if class == 0x0101 && prog_if & 0x70 == 0 {
            let parts: Vec<&str> = [
                (0x80, "Master"),
                (0x08, "SecP"),
                (0x04, "SecO"),
                (0x02, "PriP"),
                (0x01, "PriO"),
            ]
            .iter()
            .filter(|(bit, _)| prog_if & bit != 0)
            .map(|(_, s)| *s)
            .collect();
            return Some(parts.join(" "));
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const IDS: &str = "# comment\n\
8086  Intel Corporation\n\
\t100e  82540EM Gigabit Ethernet Controller\n\
\t\t8086 001e  PRO/1000 MT Mobile Connection\n\
1af4  Red Hat, Inc.\n\
\t1041  Virtio 1.0 network device\n\
C 01  Mass storage controller\n\
\t01  IDE interface\n\
\t06  SATA controller\n\
\t\t01  AHCI 1.0\n\
C ff  Unassigned class\n";

    #[test]
    fn lspci_fallbacks() {
        let n = Names::new(Some(IdDb::parse(IDS).unwrap()), NameMode::Names);
        assert_eq!(
            n.vendor_device(0x8086, 0x100e),
            "Intel Corporation 82540EM Gigabit Ethernet Controller"
        );
        assert_eq!(
            n.vendor_device(0x8086, 0x0d57),
            "Intel Corporation Device 0d57"
        );
        assert_eq!(n.vendor_device(0x1234, 0x0001), "Device 1234:0001");
        assert_eq!(n.class(0x0106), "SATA controller");
        assert_eq!(n.class(0xffff), "Unassigned class [ffff]");
        assert_eq!(n.class(0x0c03), "Class 0c03");
        assert_eq!(n.prog_if(0x0106, 1).as_deref(), Some("AHCI 1.0"));
        assert_eq!(n.prog_if(0x0101, 0x8a).as_deref(), Some("Master SecP PriP"));
        assert_eq!(
            n.subsystem(0x8086, 0x100e, 0x8086, 0x001e),
            "Intel Corporation PRO/1000 MT Mobile Connection"
        );
        assert_eq!(
            n.subsystem(0x1af4, 0x1041, 0x1af4, 0x1041),
            "Red Hat, Inc. Virtio 1.0 network device"
        );
        let both = Names::new(Some(IdDb::parse(IDS).unwrap()), NameMode::Both);
        assert_eq!(both.class(0x0c03), "Class [0c03]");
        assert_eq!(
            both.vendor_device(0x8086, 0x0d57),
            "Intel Corporation Device [8086:0d57]"
        );
        let num = Names::new(None, NameMode::Numeric);
        assert_eq!(num.class(0xffff), "ffff");
        assert_eq!(num.vendor_device(0x1af4, 0x1041), "1af4:1041");
        let none = Names::new(None, NameMode::Names);
        assert_eq!(none.class(0x0600), "Class 0600");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(IdDb::parse("zzzz  x\n").unwrap_err().line, 1);
        assert_eq!(
            IdDb::parse("8086  A\n8086  B\n").unwrap_err().reason,
            "Duplicate entry"
        );
        assert!(IdDb::parse("\t\t\tdeep\n").is_err());
        assert!(IdDb::parse("X foo\n\tbar baz\n").is_ok());
    }
}

//! lspci's device filters, with pciutils' grammar and messages:
//! `-s [[[[domain]:]bus]:][slot][.[func]]` and
//! `-d [vendor]:[device][:class[:prog-if]]`. Every part may be left out or
//! be `*`; numbers are hexadecimal; in a class, an `x` digit matches any.

use pci_lspci::Device;

/// pciutils copies each expression into a 64-byte buffer.
const MAX_LEN: usize = 63;

/// Splits `s` at `sep` into at most `n` fields.
fn split(s: &str, sep: char, n: usize) -> Result<Vec<&str>, &'static str> {
    let fields: Vec<&str> = s.split(sep).collect();
    if fields.len() > n {
        return Err("Too many fields");
    }
    Ok(fields)
}

/// A hex field: `None` when absent, empty or `*`; else the value and, when
/// `masked`, the mask of the digits given (`x` digits are left out).
fn hex_field(field: Option<&str>, max: u32, masked: bool) -> Result<Option<(u32, u32)>, ()> {
    let Some(f) = field.filter(|f| !f.is_empty() && *f != "*") else {
        return Ok(None);
    };
    let (mut value, mut mask, mut bound) = (0u32, u32::MAX, 0u32);
    for ch in f.chars() {
        if masked && (ch == 'x' || ch == 'X') {
            value <<= 4;
            bound = (bound << 4) | 1;
            mask <<= 4;
        } else {
            let d = ch.to_digit(16).ok_or(())?;
            value = (value << 4) | d;
            bound = (bound << 4) | d;
            mask = (mask << 4) | 0xf;
        }
        if bound > max {
            return Err(());
        }
    }
    Ok(Some((value, mask)))
}

/// One value or any.
fn field(field: Option<&str>, max: u32, err: &'static str) -> Result<Option<u32>, &'static str> {
    Ok(hex_field(field, max, false)
        .map_err(|_| err)?
        .map(|(v, _)| v))
}

/// Parsed `-s` and `-d` arguments; an empty filter passes every device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    domain: Option<u32>,
    bus: Option<u32>,
    slot: Option<u32>,
    func: Option<u32>,
    vendor: Option<u32>,
    device: Option<u32>,
    /// Class and the mask of its significant bits.
    class: Option<(u32, u32)>,
    prog_if: Option<u32>,
}

impl Filter {
    /// Adds a `-s` argument.
    pub fn parse_slot(&mut self, spec: &str) -> Result<(), &'static str> {
        if spec.len() > MAX_LEN {
            return Err("Expression too long");
        }
        let f = split(spec, ':', 3)?;
        let mut i = 0;
        if f.len() == 3 {
            self.domain = field(Some(f[0]), 0x7fff_ffff, "Invalid domain number")?;
            i += 1;
        }
        if f.len() > i + 1 {
            self.bus = field(Some(f[i]), 0xff, "Invalid bus number")?;
            i += 1;
        }
        let dev = f[i];
        if !dev.is_empty() && dev != "*" {
            let sf = split(dev, '.', 2).map_err(|_| "Invalid slot/function number")?;
            self.slot = field(Some(sf[0]), 0x1f, "Invalid slot number")?;
            self.func = field(sf.get(1).copied(), 7, "Invalid function number")?;
        }
        Ok(())
    }

    /// Adds a `-d` argument.
    pub fn parse_id(&mut self, spec: &str) -> Result<(), &'static str> {
        if spec.len() > MAX_LEN {
            return Err("Expression too long");
        }
        let f = split(spec, ':', 4)?;
        if f.len() < 2 {
            return Err("At least two fields must be given");
        }
        self.vendor = field(Some(f[0]), 0xffff, "Invalid vendor ID")?;
        self.device = field(Some(f[1]), 0xffff, "Invalid device ID")?;
        self.class =
            hex_field(f.get(2).copied(), 0xffff, true).map_err(|_| "Invalid class code")?;
        self.prog_if = field(
            f.get(3).copied(),
            0xff,
            "Invalid programming interface code",
        )?;
        Ok(())
    }

    /// Whether `d` passes.
    pub fn matches(&self, d: &Device) -> bool {
        let (a, c) = (&d.addr, &d.config);
        let is = |want: Option<u32>, have: u32| want.is_none_or(|w| w == have);
        is(self.domain, a.domain)
            && is(self.bus, a.bus.into())
            && is(self.slot, a.device.into())
            && is(self.func, a.function.into())
            && is(self.vendor, c.vendor_id().into())
            && is(self.device, c.device_id().into())
            && self
                .class
                .is_none_or(|(v, m)| (v ^ u32::from(c.class())) & m == 0)
            && is(self.prog_if, c.prog_if().into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use pci::Address;
    use pci_lspci::OsInfo;

    fn dev(domain: u32, bus: u8, device: u8, function: u8, ids: [u16; 3]) -> Device {
        let mut c = vec![0u8; 64];
        c[0..2].copy_from_slice(&ids[0].to_le_bytes());
        c[2..4].copy_from_slice(&ids[1].to_le_bytes());
        c[10..12].copy_from_slice(&ids[2].to_le_bytes());
        c[9] = 0x30;
        let addr = Address {
            domain,
            bus,
            device,
            function,
        };
        Device::new(addr, c, OsInfo::default()).unwrap()
    }

    fn slot(spec: &str) -> Result<Filter, &'static str> {
        let mut f = Filter::default();
        f.parse_slot(spec).map(|_| f)
    }

    fn id(spec: &str) -> Result<Filter, &'static str> {
        let mut f = Filter::default();
        f.parse_id(spec).map(|_| f)
    }

    #[test]
    fn slots() {
        let ids = [0x8086, 0x10d3, 0x0200];
        let f = slot("99:00.0").unwrap();
        assert!(f.matches(&dev(0, 0x99, 0, 0, ids)));
        assert!(f.matches(&dev(5, 0x99, 0, 0, ids)));
        assert!(!f.matches(&dev(0, 0x98, 0, 0, ids)));
        let f = slot("0001:00:03").unwrap();
        assert!(f.matches(&dev(1, 0, 3, 6, ids)));
        assert!(!f.matches(&dev(0, 0, 3, 6, ids)));
        assert!(slot(".3").unwrap().matches(&dev(0, 7, 9, 3, ids)));
        assert!(slot("*:*:*.*").unwrap().matches(&dev(3, 3, 3, 3, ids)));
        assert_eq!(slot("00:20.0"), Err("Invalid slot number"));
        assert_eq!(slot("00:1f.8"), Err("Invalid function number"));
        assert_eq!(slot("100:00.0"), Err("Invalid bus number"));
        assert_eq!(slot("zz:00:00.0"), Err("Invalid domain number"));
        assert_eq!(slot("1:2:3:4"), Err("Too many fields"));
        assert_eq!(slot("0.1.2"), Err("Invalid slot/function number"));
        assert_eq!(slot(&"0".repeat(64)), Err("Expression too long"));
    }

    #[test]
    fn ids() {
        let nic = dev(0, 0, 3, 0, [0x8086, 0x10d3, 0x0200]);
        let host = dev(0, 0, 0, 0, [0x8086, 0x0d57, 0x0600]);
        assert!(id("8086:").unwrap().matches(&nic));
        assert!(!id(":10d3").unwrap().matches(&host));
        assert!(id("::02xx").unwrap().matches(&nic));
        assert!(!id("::02xx").unwrap().matches(&host));
        // `0x00`: any second digit, so both 0200 and 0600.
        assert!(id("::0x00").unwrap().matches(&host));
        assert!(id("::0x00").unwrap().matches(&nic));
        assert!(id("::0200:30").unwrap().matches(&nic));
        assert!(!id("::0200:31").unwrap().matches(&nic));
        assert_eq!(id("8086"), Err("At least two fields must be given"));
        assert_eq!(id("12345:"), Err("Invalid vendor ID"));
        assert_eq!(id(":x"), Err("Invalid device ID"));
        assert_eq!(id("::xxxxx"), Err("Invalid class code"));
        assert_eq!(id("::0200:100"), Err("Invalid programming interface code"));
        assert_eq!(id("1:2:3:4:5"), Err("Too many fields"));
    }
}

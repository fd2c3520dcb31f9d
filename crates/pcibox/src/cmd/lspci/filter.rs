//! lspci's `-s [[[[domain]:]bus]:][slot][.[func]]` filter: every part may
//! be left out or be `*`; numbers are hexadecimal.

use pci::Address;

/// A parsed `-s` argument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotFilter {
    domain: Option<u32>,
    bus: Option<u8>,
    slot: Option<u8>,
    func: Option<u8>,
}

/// Parses one hex part; empty or `*` means any.
fn part(s: &str, max: u32, err: &'static str) -> Result<Option<u32>, &'static str> {
    if s.is_empty() || s == "*" {
        return Ok(None);
    }
    if s.len() > 8 {
        return Err(err);
    }
    match u32::from_str_radix(s, 16) {
        Ok(v) if v <= max => Ok(Some(v)),
        _ => Err(err),
    }
}

impl SlotFilter {
    /// Parses a `-s` argument with pciutils' rules and messages.
    pub fn parse(spec: &str) -> Result<Self, &'static str> {
        let mut f = SlotFilter::default();
        let (head, mid) = match spec.rfind(':') {
            Some(i) => (Some(&spec[..i]), &spec[i + 1..]),
            None => (None, spec),
        };
        if let Some(head) = head {
            let bus = match head.find(':') {
                Some(i) => {
                    f.domain = part(&head[..i], 0x7fff_ffff, "Invalid domain number")?;
                    &head[i + 1..]
                }
                None => head,
            };
            f.bus = part(bus, 0xff, "Invalid bus number")?.map(|v| v as u8);
        }
        let (slot, func) = match mid.find('.') {
            Some(i) => (&mid[..i], Some(&mid[i + 1..])),
            None => (mid, None),
        };
        f.slot = part(slot, 0x1f, "Invalid slot number")?.map(|v| v as u8);
        if let Some(func) = func {
            f.func = part(func, 7, "Invalid function number")?.map(|v| v as u8);
        }
        Ok(f)
    }

    /// Whether `a` passes the filter.
    pub fn matches(&self, a: &Address) -> bool {
        self.domain.is_none_or(|d| d == a.domain)
            && self.bus.is_none_or(|b| b == a.bus)
            && self.slot.is_none_or(|s| s == a.device)
            && self.func.is_none_or(|f| f == a.function)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(domain: u32, bus: u8, device: u8, function: u8) -> Address {
        Address {
            domain,
            bus,
            device,
            function,
        }
    }

    #[test]
    fn forms() {
        let f = SlotFilter::parse("99:00.0").unwrap();
        assert!(f.matches(&addr(0, 0x99, 0, 0)));
        assert!(f.matches(&addr(5, 0x99, 0, 0)));
        assert!(!f.matches(&addr(0, 0x98, 0, 0)));
        let f = SlotFilter::parse("0001:00:03").unwrap();
        assert!(f.matches(&addr(1, 0, 3, 6)));
        assert!(!f.matches(&addr(0, 0, 3, 6)));
        let f = SlotFilter::parse(".3").unwrap();
        assert!(f.matches(&addr(0, 7, 9, 3)));
        let f = SlotFilter::parse("*:*.*").unwrap();
        assert!(f.matches(&addr(3, 3, 3, 3)));
        assert_eq!(SlotFilter::parse("00:20.0"), Err("Invalid slot number"));
        assert_eq!(SlotFilter::parse("00:1f.8"), Err("Invalid function number"));
        assert_eq!(SlotFilter::parse("100:00.0"), Err("Invalid bus number"));
        assert_eq!(
            SlotFilter::parse("zz:00:00.0"),
            Err("Invalid domain number")
        );
    }
}

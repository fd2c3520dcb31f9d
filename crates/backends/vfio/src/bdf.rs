//! PCI addresses (`DDDD:BB:DD.F`).

use crate::error::Error;
use std::fmt;
use std::str::FromStr;

/// A PCI address: domain, bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bdf {
    /// PCI domain (segment).
    pub domain: u16,
    /// Bus number.
    pub bus: u8,
    /// Device number (0–31).
    pub device: u8,
    /// Function number (0–7).
    pub function: u8,
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl FromStr for Bdf {
    type Err = Error;

    /// Parses `DDDD:BB:DD.F` or `BB:DD.F` (domain 0), hexadecimal.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::BadBdf(s.to_string());
        let (rest, function) = s.rsplit_once('.').ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [d, b, v] if d.len() <= 4 => (*d, *b, *v),
            [b, v] => ("0", *b, *v),
            _ => return Err(bad()),
        };
        let hex = |t: &str, max: u32| -> Result<u32, Error> {
            if t.is_empty() || t.len() > 4 || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            let v = u32::from_str_radix(t, 16).map_err(|_| bad())?;
            if v > max {
                return Err(bad());
            }
            Ok(v)
        };
        Ok(Bdf {
            domain: hex(domain, 0xffff)? as u16,
            bus: hex(bus, 0xff)? as u8,
            device: hex(device, 0x1f)? as u8,
            function: hex(function, 7)? as u8,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let b: Bdf = "0000:00:04.0".parse().unwrap();
        assert_eq!(b.to_string(), "0000:00:04.0");
        let b: Bdf = "1f:1c.7".parse().unwrap();
        assert_eq!((b.domain, b.bus, b.device, b.function), (0, 0x1f, 0x1c, 7));
        assert_eq!(
            "abcd:ff:1f.7".parse::<Bdf>().unwrap().to_string(),
            "abcd:ff:1f.7"
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "00:04",
            "00:20.0",
            "00:04.8",
            "0:0:0:0.0",
            "00000:00:04.0",
            "zz:00.0",
            "00:04.0 ",
            "../00:04.0",
            "00:+4.0",
        ] {
            assert!(s.parse::<Bdf>().is_err(), "{s:?}");
        }
    }
}

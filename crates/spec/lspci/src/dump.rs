//! The text format of `lspci -x`/`-xxx`/`-xxxx` output, which `lspci -F`
//! reads back: a device line (`bb:dd.f …` or `dddd:bb:dd.f …`) followed by
//! lines of `off: xx xx …`; a blank line ends a device. Other lines (for
//! example `-v` output in between) are ignored, as pciutils does.

use pci::Address;

/// One device read from a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpDevice {
    /// Its address.
    pub addr: Address,
    /// Config bytes from 0 up to the highest byte the dump gives; bytes in
    /// between that the dump leaves out read as 0xff.
    pub config: Vec<u8>,
}

/// What is wrong with a dump (pciutils' wording, with a line number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    /// A line longer than pciutils' 255-byte buffer, or the last line
    /// without a newline.
    #[error("line {0} too long or unterminated")]
    LineTooLong(usize),
    /// A data line with something after its bytes.
    #[error("line {0} malformed")]
    Malformed(usize),
    /// A byte offset at or past 4096.
    #[error("line {0}: at most 4096 bytes of config space are supported")]
    TooManyBytes(usize),
    /// A device with fewer than the 64 bytes of the standard header.
    #[error("device {addr} has only {len} bytes of config space (64 needed)")]
    ShortDevice {
        /// The device's address.
        addr: String,
        /// How many bytes the dump gives.
        len: usize,
    },
}

/// Whether `s` starts with `fmt`, where `#` matches any hex digit.
fn shape(s: &[u8], fmt: &str) -> bool {
    s.len() >= fmt.len()
        && fmt.bytes().zip(s).all(|(f, &c)| {
            if f == b'#' {
                c.is_ascii_hexdigit()
            } else {
                f == c
            }
        })
}

/// Parses a device line's address, if the line is one.
fn device_line(l: &[u8]) -> Option<Address> {
    let text = std::str::from_utf8(l).ok()?;
    let hexn = |s: &str| u32::from_str_radix(s, 16).ok();
    let func = |c: u8| (c as char).to_digit(10).map(|f| f as u8);
    if shape(l, "##:##.# ") {
        return Some(Address {
            domain: 0,
            bus: hexn(&text[0..2])? as u8,
            device: hexn(&text[3..5])? as u8,
            function: func(l[6])?,
        });
    }
    for dom in [4usize, 5, 6] {
        let fmt = format!("{}:##:##.# ", "#".repeat(dom));
        if shape(l, &fmt) {
            return Some(Address {
                domain: hexn(&text[..dom])?,
                bus: hexn(&text[dom + 1..dom + 3])? as u8,
                device: hexn(&text[dom + 4..dom + 6])? as u8,
                function: func(l[dom + 7])?,
            });
        }
    }
    None
}

/// Parses the offset of a data line (`xx: `, up to eight hex digits).
fn data_offset(l: &[u8]) -> Option<(usize, usize)> {
    (2..=8).find_map(|n| {
        let fmt = format!("{}: ", "#".repeat(n));
        if shape(l, &fmt) {
            let t = std::str::from_utf8(&l[..n]).ok()?;
            Some((usize::from_str_radix(t, 16).ok()?, n + 2))
        } else {
            None
        }
    })
}

/// Parses a whole dump. Devices keep the file's order (lspci sorts them).
pub fn parse(text: &[u8]) -> Result<Vec<DumpDevice>, DumpError> {
    let mut devices: Vec<DumpDevice> = Vec::new();
    // Whether data lines currently belong to the last device.
    let mut open = false;
    let mut rest = text;
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(DumpError::LineTooLong(line_no));
        };
        // pciutils reads lines into a 255-byte buffer.
        if nl > 253 {
            return Err(DumpError::LineTooLong(line_no));
        }
        let mut l = &rest[..nl];
        // C's fgets/strchr see a NUL as the end of the line: no newline.
        if l.contains(&0) {
            return Err(DumpError::LineTooLong(line_no));
        }
        rest = &rest[nl + 1..];
        if let Some(s) = l.strip_suffix(b"\r") {
            l = s;
        }
        if let Some(addr) = device_line(l) {
            devices.push(DumpDevice {
                addr,
                config: Vec::new(),
            });
            open = true;
        } else if l.is_empty() {
            open = false;
        } else if let (true, Some((mut off, start))) = (open, data_offset(l)) {
            let Some(dev) = devices.last_mut() else {
                continue;
            };
            // The bytes follow "off: " as "xx xx …".
            let mut z = &l[start..];
            while z.len() >= 2
                && z[0].is_ascii_hexdigit()
                && z[1].is_ascii_hexdigit()
                && (z.len() == 2 || z[2] == b' ')
            {
                if off >= 4096 {
                    return Err(DumpError::TooManyBytes(line_no));
                }
                let byte = u8::from_str_radix(std::str::from_utf8(&z[..2]).unwrap_or("zz"), 16)
                    .map_err(|_| DumpError::Malformed(line_no))?;
                if dev.config.len() <= off {
                    dev.config.resize(off + 1, 0xff);
                }
                dev.config[off] = byte;
                off += 1;
                z = &z[2..];
                if !z.is_empty() {
                    z = &z[1..];
                }
            }
            if !z.is_empty() {
                return Err(DumpError::Malformed(line_no));
            }
        }
    }
    Ok(devices)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_devices() {
        let text = b"00:01.0 Ethernet controller: X\n00: 86 80 0e 10\n\tjunk\n10: 01\n\n\
0001:02:1f.7 Y\n00: ff\n";
        let d = parse(text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].addr.device, 1);
        assert_eq!(d[0].config.len(), 0x11);
        assert_eq!(&d[0].config[..4], &[0x86, 0x80, 0x0e, 0x10]);
        assert_eq!(d[0].config[4], 0xff);
        assert_eq!(d[1].addr.domain, 1);
        assert_eq!(
            (d[1].addr.bus, d[1].addr.device, d[1].addr.function),
            (2, 0x1f, 7)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b"00:00.0 x\n00: 86"), Err(DumpError::LineTooLong(2)));
        assert_eq!(
            parse(b"00:00.0 x\n00: 86 zz\n"),
            Err(DumpError::Malformed(2))
        );
        assert_eq!(
            parse(b"00:00.0 x\n1000: 00\n"),
            Err(DumpError::TooManyBytes(2))
        );
        assert_eq!(parse(b"hello\n").unwrap(), vec![]);
        let long = [b'a'; 300];
        assert_eq!(parse(&long), Err(DumpError::LineTooLong(1)));
    }
}

//! IDENTIFY data structures (4096 bytes each): controller (CNS 1), namespace (CNS 0) and the
//! active namespace list (CNS 2).

use crate::{check_len, le, Error};
use serde::Serialize;

/// Size of every IDENTIFY data structure.
pub const IDENTIFY_SIZE: usize = 4096;

/// The fields of the IDENTIFY controller structure the driver and CLI use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifyController {
    /// PCI vendor ID.
    pub vid: u16,
    /// PCI subsystem vendor ID.
    pub ssvid: u16,
    /// Serial number (ASCII, trailing spaces removed).
    pub serial: String,
    /// Model number (ASCII, trailing spaces removed).
    pub model: String,
    /// Firmware revision (ASCII, trailing spaces removed).
    pub firmware: String,
    /// IEEE OUI identifier.
    pub ieee_oui: u32,
    /// Maximum data transfer size as a power of two of CAP.MPSMIN pages (0 = no limit).
    pub mdts: u8,
    /// Controller ID.
    pub cntlid: u16,
    /// Version the controller claims to implement (VS register format; 0 before NVMe 1.2).
    pub version: u32,
    /// Optional admin command support (OACS).
    pub oacs: u16,
    /// Required (bits 3:0) and maximum (bits 7:4) SQ entry size, log2 of bytes.
    pub sqes: u8,
    /// Required and maximum CQ entry size, log2 of bytes.
    pub cqes: u8,
    /// Maximum outstanding commands (0 = not reported).
    pub maxcmd: u16,
    /// Number of namespaces (the highest valid NSID).
    pub nn: u32,
    /// Optional NVM command support (ONCS).
    pub oncs: u16,
    /// Volatile write cache present (VWC bit 0).
    pub volatile_write_cache: bool,
    /// NVM subsystem NVMe qualified name (NUL padded).
    pub subnqn: String,
}

/// One LBA format descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LbaFormat {
    /// Metadata bytes per block.
    pub metadata_size: u16,
    /// log2 of the data size of a block; 0 means the format is not available.
    pub lba_data_shift: u8,
    /// Relative performance (0 best … 3 degraded).
    pub relative_performance: u8,
}

/// The fields of the IDENTIFY namespace structure the driver uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifyNamespace {
    /// Namespace size in logical blocks.
    pub nsze: u64,
    /// Namespace capacity in logical blocks.
    pub ncap: u64,
    /// Namespace utilization in logical blocks.
    pub nuse: u64,
    /// Namespace features.
    pub nsfeat: u8,
    /// Number of LBA formats (a count; the structure stores it 0-based).
    pub nlbaf: u8,
    /// Formatted LBA size: index of the LBA format in use (bits 3:0).
    pub flbas: u8,
    /// Namespace globally unique identifier.
    pub nguid: [u8; 16],
    /// IEEE extended unique identifier.
    pub eui64: [u8; 8],
    /// The LBA formats (only the first `nlbaf`).
    pub lba_formats: Vec<LbaFormat>,
}

/// A checked view over a 4096-byte IDENTIFY buffer.
#[derive(Debug, Clone, Copy)]
pub struct IdentifyData<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> IdentifyData<T> {
    /// Wraps `buf` after checking it holds a whole IDENTIFY structure.
    pub fn new_checked(buf: T) -> Result<Self, Error> {
        check_len("identify data", buf.as_ref(), IDENTIFY_SIZE)?;
        Ok(IdentifyData { buf })
    }
    fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }
}

/// ASCII field with trailing spaces and NULs removed; other non-printable bytes shown as `?`.
fn ascii(b: &[u8]) -> String {
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(0, |i| i + 1);
    b[..end]
        .iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

/// NUL-padded field.
fn nul_padded(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    ascii(&b[..end])
}

impl IdentifyController {
    /// Parses the controller structure.
    pub fn parse<T: AsRef<[u8]>>(view: &IdentifyData<T>) -> Result<IdentifyController, Error> {
        let b = view.bytes();
        let c = IdentifyController {
            vid: le::u16(b, 0),
            ssvid: le::u16(b, 2),
            serial: ascii(&b[4..24]),
            model: ascii(&b[24..64]),
            firmware: ascii(&b[64..72]),
            ieee_oui: u32::from_le_bytes([b[73], b[74], b[75], 0]),
            mdts: b[77],
            cntlid: le::u16(b, 78),
            version: le::u32(b, 80),
            oacs: le::u16(b, 256),
            sqes: b[512],
            cqes: b[513],
            maxcmd: le::u16(b, 514),
            nn: le::u32(b, 516),
            oncs: le::u16(b, 520),
            volatile_write_cache: b[525] & 1 != 0,
            subnqn: nul_padded(&b[768..1024]),
        };
        // The driver uses 64-byte SQ and 16-byte CQ entries; a controller whose required sizes
        // are larger cannot be driven and says so here rather than at queue creation.
        if c.sqes & 0xf > 6 {
            return Err(invalid("SQES", c.sqes as u64));
        }
        if c.cqes & 0xf > 4 {
            return Err(invalid("CQES", c.cqes as u64));
        }
        Ok(c)
    }

    /// Emits the parsed fields into a zeroed 4096-byte buffer (tests, device models).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        check_len("identify data", buf, IDENTIFY_SIZE)?;
        le::put_u16(buf, 0, self.vid);
        le::put_u16(buf, 2, self.ssvid);
        put_ascii(&mut buf[4..24], &self.serial, b' ');
        put_ascii(&mut buf[24..64], &self.model, b' ');
        put_ascii(&mut buf[64..72], &self.firmware, b' ');
        buf[73..76].copy_from_slice(&self.ieee_oui.to_le_bytes()[..3]);
        buf[77] = self.mdts;
        le::put_u16(buf, 78, self.cntlid);
        le::put_u32(buf, 80, self.version);
        le::put_u16(buf, 256, self.oacs);
        buf[512] = self.sqes;
        buf[513] = self.cqes;
        le::put_u16(buf, 514, self.maxcmd);
        le::put_u32(buf, 516, self.nn);
        le::put_u16(buf, 520, self.oncs);
        buf[525] = self.volatile_write_cache as u8;
        put_ascii(&mut buf[768..1024], &self.subnqn, 0);
        Ok(())
    }

    /// Largest transfer in bytes given the controller's minimum page size (None = unlimited).
    pub fn max_transfer(&self, min_page_size: u64) -> Option<u64> {
        if self.mdts == 0 {
            None
        } else {
            Some(
                min_page_size
                    .checked_shl(self.mdts as u32)
                    .unwrap_or(u64::MAX),
            )
        }
    }
}

fn invalid(field: &'static str, value: u64) -> Error {
    Error::Invalid {
        structure: "identify",
        field,
        value,
    }
}

fn put_ascii(dst: &mut [u8], s: &str, pad: u8) {
    dst.fill(pad);
    for (d, c) in dst.iter_mut().zip(s.bytes()) {
        *d = c;
    }
}

impl IdentifyNamespace {
    /// Parses the namespace structure; fails when the format in use is not a usable block size.
    pub fn parse<T: AsRef<[u8]>>(view: &IdentifyData<T>) -> Result<IdentifyNamespace, Error> {
        let b = view.bytes();
        let nlbaf = b[25].min(15) + 1;
        let lba_formats = (0..nlbaf as usize)
            .map(|i| {
                let at = 128 + 4 * i;
                LbaFormat {
                    metadata_size: le::u16(b, at),
                    lba_data_shift: b[at + 2],
                    relative_performance: b[at + 3] & 3,
                }
            })
            .collect();
        let mut nguid = [0u8; 16];
        nguid.copy_from_slice(&b[104..120]);
        let mut eui64 = [0u8; 8];
        eui64.copy_from_slice(&b[120..128]);
        let ns = IdentifyNamespace {
            nsze: le::u64(b, 0),
            ncap: le::u64(b, 8),
            nuse: le::u64(b, 16),
            nsfeat: b[24],
            nlbaf,
            flbas: b[26],
            nguid,
            eui64,
            lba_formats,
        };
        let idx = (ns.flbas & 0xf) as u64;
        let Some(fmt) = ns.lba_formats.get(idx as usize) else {
            return Err(invalid("FLBAS", ns.flbas as u64));
        };
        // 512 B .. 64 KiB blocks are what exists; anything else is a corrupt structure.
        if !(9..=16).contains(&fmt.lba_data_shift) {
            return Err(invalid("LBADS", fmt.lba_data_shift as u64));
        }
        if ns.ncap > ns.nsze {
            return Err(invalid("NCAP", ns.ncap));
        }
        Ok(ns)
    }

    /// The LBA format in use.
    pub fn format(&self) -> LbaFormat {
        // parse() checked the index.
        self.lba_formats
            .get((self.flbas & 0xf) as usize)
            .copied()
            .unwrap_or(LbaFormat {
                metadata_size: 0,
                lba_data_shift: 9,
                relative_performance: 0,
            })
    }

    /// Logical block size in bytes.
    pub fn block_size(&self) -> u32 {
        1u32 << self.format().lba_data_shift
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.nsze.saturating_mul(self.block_size() as u64)
    }

    /// Emits the parsed fields into a 4096-byte buffer (tests, device models).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        check_len("identify data", buf, IDENTIFY_SIZE)?;
        le::put_u64(buf, 0, self.nsze);
        le::put_u64(buf, 8, self.ncap);
        le::put_u64(buf, 16, self.nuse);
        buf[24] = self.nsfeat;
        buf[25] = self.nlbaf.saturating_sub(1);
        buf[26] = self.flbas;
        buf[104..120].copy_from_slice(&self.nguid);
        buf[120..128].copy_from_slice(&self.eui64);
        for (i, f) in self.lba_formats.iter().take(16).enumerate() {
            let at = 128 + 4 * i;
            le::put_u16(buf, at, f.metadata_size);
            buf[at + 2] = f.lba_data_shift;
            buf[at + 3] = f.relative_performance & 3;
        }
        Ok(())
    }
}

/// Parses an active namespace ID list (CNS 2): up to 1024 NSIDs, terminated by a zero.
pub fn parse_namespace_list<T: AsRef<[u8]>>(view: &IdentifyData<T>) -> Vec<u32> {
    view.bytes()[..IDENTIFY_SIZE]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .take_while(|&id| id != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn controller() -> IdentifyController {
        IdentifyController {
            vid: 0x1b36,
            ssvid: 0x1af4,
            serial: "pcibox-nvme0".into(),
            model: "QEMU NVMe Ctrl".into(),
            firmware: "7.2.0".into(),
            ieee_oui: 0x525400,
            mdts: 7,
            cntlid: 0,
            version: 0x0001_0400,
            oacs: 0x000a,
            sqes: 0x66,
            cqes: 0x44,
            maxcmd: 0,
            nn: 256,
            oncs: 0x015d,
            volatile_write_cache: true,
            subnqn: "nqn.2019-08.org.qemu:pcibox-nvme0".into(),
        }
    }

    #[test]
    fn controller_round_trip_and_offsets() -> Result<(), Error> {
        let mut buf = vec![0u8; IDENTIFY_SIZE];
        controller().emit(&mut buf)?;
        assert_eq!(&buf[4..16], b"pcibox-nvme0");
        assert_eq!(buf[16], b' ');
        assert_eq!(&buf[24..38], b"QEMU NVMe Ctrl");
        let parsed = IdentifyController::parse(&IdentifyData::new_checked(&buf[..])?)?;
        assert_eq!(parsed, controller());
        assert_eq!(parsed.max_transfer(4096), Some(512 * 1024));
        Ok(())
    }

    #[test]
    fn namespace_block_size_and_errors() -> Result<(), Error> {
        let mut buf = vec![0u8; IDENTIFY_SIZE];
        buf[0..8].copy_from_slice(&2048u64.to_le_bytes());
        buf[8..16].copy_from_slice(&2048u64.to_le_bytes());
        buf[25] = 1; // two formats
        buf[26] = 1; // second in use
        buf[128 + 2] = 9;
        buf[132 + 2] = 12;
        let ns = IdentifyNamespace::parse(&IdentifyData::new_checked(&buf[..])?)?;
        assert_eq!(ns.block_size(), 4096);
        assert_eq!(ns.capacity_bytes(), 8 << 20);
        buf[26] = 3; // beyond NLBAF
        assert!(IdentifyNamespace::parse(&IdentifyData::new_checked(&buf[..])?).is_err());
        buf[26] = 0;
        buf[130] = 40; // absurd block size
        assert!(IdentifyNamespace::parse(&IdentifyData::new_checked(&buf[..])?).is_err());
        assert!(IdentifyData::new_checked(&buf[..4095]).is_err());
        Ok(())
    }

    #[test]
    fn namespace_list_stops_at_zero() -> Result<(), Error> {
        let mut buf = vec![0u8; IDENTIFY_SIZE];
        buf[0] = 1;
        buf[4] = 3;
        buf[12] = 9; // after the terminator: ignored
        assert_eq!(
            parse_namespace_list(&IdentifyData::new_checked(&buf[..])?),
            vec![1, 3]
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_identify_data_never_panics(bytes in proptest::collection::vec(any::<u8>(), IDENTIFY_SIZE)) {
            let view = IdentifyData::new_checked(&bytes[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Ok(c) = IdentifyController::parse(&view) {
                let mut out = vec![0u8; IDENTIFY_SIZE];
                c.emit(&mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let again = IdentifyController::parse(&IdentifyData::new_checked(&out[..]).map_err(|e| TestCaseError::fail(e.to_string()))?);
                // Strings are normalised once; after that the structure round-trips.
                prop_assert_eq!(again.ok(), Some(c));
            }
            if let Ok(ns) = IdentifyNamespace::parse(&view) {
                prop_assert!(ns.block_size() >= 512);
                let mut out = vec![0u8; IDENTIFY_SIZE];
                ns.emit(&mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let again = IdentifyNamespace::parse(&IdentifyData::new_checked(&out[..]).map_err(|e| TestCaseError::fail(e.to_string()))?);
                prop_assert_eq!(again.ok(), Some(ns));
            }
            prop_assert!(parse_namespace_list(&view).len() <= 1024);
        }
    }
}

//! VFIO_USER_VERSION: the handshake, with optional JSON capabilities.
//!
//! Dialects seen in the wild, all accepted:
//! - libvfio-user: version 0.2, `capabilities` with `max_msg_fds`,
//!   `max_data_xfer_size` and a `migration` object (`pgsize`, …);
//! - QEMU's client: version 0.0, adds `pgsizes`, `max_dma_maps`,
//!   `write_multiple` (and maybe `twin_socket`);
//! - SPDK's client: no JSON at all (the message ends after the minor version).
//!
//! Unknown keys are ignored (their names are kept for logging). A known key
//! with the wrong JSON type, non-UTF-8 or malformed JSON, or more than
//! [`MAX_VERSION_DATA`] bytes is an error.

use serde_json::{Map, Value};

use crate::view::view;
use crate::{Error, Result, MAX_VERSION_DATA};

view!(
    /// VERSION request and reply: major, minor, then optional JSON (NUL-terminated).
    Version, 4, {
        major / set_major: u16 @ 0,
        minor / set_minor: u16 @ 2,
    }
);

/// The version this crate speaks: 0.2 (a server answers with the minimum of
/// this and the client's proposal).
pub const VERSION_MAJOR: u16 = 0;
/// See [`VERSION_MAJOR`].
pub const VERSION_MINOR: u16 = 2;

/// Default `max_msg_fds` when a peer does not say (spec: 1).
pub const DEFAULT_MAX_MSG_FDS: u32 = 1;
/// Default `max_data_xfer_size` when a peer does not say (spec: 1 MiB).
pub const DEFAULT_MAX_DATA_XFER_SIZE: u32 = 1 << 20;
/// Default `max_dma_maps` (spec: 65535).
pub const DEFAULT_MAX_DMA_MAPS: u32 = 65535;
/// Default `pgsizes` (spec: 4 KiB only).
pub const DEFAULT_PGSIZES: u64 = 4096;

/// The `twin_socket` capability object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TwinSocket {
    pub supported: bool,
    /// Index of the server→client socket in the reply's fd array.
    pub fd_index: Option<u32>,
}

/// libvfio-user's `migration` capability object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Migration {
    pub pgsize: Option<u64>,
    pub max_bitmap_size: Option<u64>,
}

/// The `capabilities` object; `None` fields were not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub max_msg_fds: Option<u32>,
    pub max_data_xfer_size: Option<u32>,
    pub max_dma_maps: Option<u32>,
    pub pgsizes: Option<u64>,
    pub twin_socket: Option<TwinSocket>,
    pub write_multiple: Option<bool>,
    pub migration: Option<Migration>,
    /// Names of keys we did not recognise (ignored, kept for logs).
    pub unknown: Vec<String>,
}

impl Capabilities {
    /// `max_msg_fds` with the spec default.
    pub fn max_msg_fds(&self) -> u32 {
        self.max_msg_fds.unwrap_or(DEFAULT_MAX_MSG_FDS)
    }
    /// `max_data_xfer_size` with the spec default.
    pub fn max_data_xfer_size(&self) -> u32 {
        self.max_data_xfer_size
            .unwrap_or(DEFAULT_MAX_DATA_XFER_SIZE)
    }
    /// `max_dma_maps` with the spec default.
    pub fn max_dma_maps(&self) -> u32 {
        self.max_dma_maps.unwrap_or(DEFAULT_MAX_DMA_MAPS)
    }
    /// `pgsizes` with the spec default.
    pub fn pgsizes(&self) -> u64 {
        self.pgsizes.unwrap_or(DEFAULT_PGSIZES)
    }
    /// Whether twin-socket mode is offered/accepted.
    pub fn twin_socket_supported(&self) -> bool {
        self.twin_socket.is_some_and(|t| t.supported)
    }
}

/// A parsed VERSION message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRepr {
    pub major: u16,
    pub minor: u16,
    /// `None` when the peer sent no JSON (SPDK).
    pub caps: Option<Capabilities>,
}

impl VersionRepr {
    /// Parse a VERSION payload.
    pub fn parse<T: AsRef<[u8]>>(view: &Version<T>) -> Result<VersionRepr> {
        let data = view.tail();
        if data.len() > MAX_VERSION_DATA {
            return Err(Error::TooMany {
                what: "version data bytes",
                count: data.len() as u64,
                limit: MAX_VERSION_DATA as u64,
            });
        }
        // Strip the terminating NUL(s); nothing but whitespace means no JSON.
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let text = core::str::from_utf8(&data[..end])
            .map_err(|e| Error::VersionData(format!("not UTF-8: {e}")))?;
        let caps = if text.trim().is_empty() {
            None
        } else {
            Some(parse_json(text)?)
        };
        Ok(VersionRepr {
            major: view.major(),
            minor: view.minor(),
            caps,
        })
    }

    /// The JSON bytes (NUL-terminated) this message carries, if any.
    pub fn data(&self) -> Vec<u8> {
        match &self.caps {
            None => Vec::new(),
            Some(caps) => {
                let mut out = to_json(caps).to_string().into_bytes();
                out.push(0);
                out
            }
        }
    }

    /// Payload length when emitted.
    pub fn buffer_len(&self) -> usize {
        Version::<&[u8]>::LEN + self.data().len()
    }

    /// Emit into a view of exactly [`Self::buffer_len`] bytes (at least).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut Version<T>) {
        view.set_major(self.major);
        view.set_minor(self.minor);
        let data = self.data();
        view.tail_mut()[..data.len()].copy_from_slice(&data);
    }
}

fn bad(key: &str, want: &str) -> Error {
    Error::VersionData(format!("`{key}` is not {want}"))
}

fn as_u32(key: &str, v: &Value) -> Result<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(key, "a 32-bit unsigned number"))
}

fn as_u64(key: &str, v: &Value) -> Result<u64> {
    v.as_u64().ok_or_else(|| bad(key, "an unsigned number"))
}

fn as_bool(key: &str, v: &Value) -> Result<bool> {
    v.as_bool().ok_or_else(|| bad(key, "a boolean"))
}

fn parse_json(text: &str) -> Result<Capabilities> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| Error::VersionData(format!("bad JSON: {e}")))?;
    let root = root
        .as_object()
        .ok_or_else(|| bad("version data", "a JSON object"))?;
    let mut caps = Capabilities::default();
    let Some(obj) = root.get("capabilities") else {
        return Ok(caps);
    };
    let obj = obj
        .as_object()
        .ok_or_else(|| bad("capabilities", "an object"))?;
    for (key, v) in obj {
        match key.as_str() {
            "max_msg_fds" => caps.max_msg_fds = Some(as_u32(key, v)?),
            "max_data_xfer_size" => caps.max_data_xfer_size = Some(as_u32(key, v)?),
            "max_dma_maps" => caps.max_dma_maps = Some(as_u32(key, v)?),
            "pgsizes" => caps.pgsizes = Some(as_u64(key, v)?),
            "write_multiple" => caps.write_multiple = Some(as_bool(key, v)?),
            "twin_socket" => {
                let o = v.as_object().ok_or_else(|| bad(key, "an object"))?;
                let mut t = TwinSocket::default();
                if let Some(s) = o.get("supported") {
                    t.supported = as_bool("twin_socket.supported", s)?;
                }
                if let Some(i) = o.get("fd_index") {
                    t.fd_index = Some(as_u32("twin_socket.fd_index", i)?);
                }
                caps.twin_socket = Some(t);
            }
            "migration" => {
                let o = v.as_object().ok_or_else(|| bad(key, "an object"))?;
                let mut m = Migration::default();
                if let Some(p) = o.get("pgsize") {
                    m.pgsize = Some(as_u64("migration.pgsize", p)?);
                }
                if let Some(p) = o.get("max_bitmap_size") {
                    m.max_bitmap_size = Some(as_u64("migration.max_bitmap_size", p)?);
                }
                caps.migration = Some(m);
            }
            _ => caps.unknown.push(key.clone()),
        }
    }
    Ok(caps)
}

fn to_json(caps: &Capabilities) -> Value {
    let mut c = Map::new();
    if let Some(n) = caps.max_msg_fds {
        c.insert("max_msg_fds".into(), n.into());
    }
    if let Some(n) = caps.max_data_xfer_size {
        c.insert("max_data_xfer_size".into(), n.into());
    }
    if let Some(n) = caps.max_dma_maps {
        c.insert("max_dma_maps".into(), n.into());
    }
    if let Some(n) = caps.pgsizes {
        c.insert("pgsizes".into(), n.into());
    }
    if let Some(b) = caps.write_multiple {
        c.insert("write_multiple".into(), b.into());
    }
    if let Some(t) = caps.twin_socket {
        let mut o = Map::new();
        o.insert("supported".into(), t.supported.into());
        if let Some(i) = t.fd_index {
            o.insert("fd_index".into(), i.into());
        }
        c.insert("twin_socket".into(), o.into());
    }
    if let Some(m) = caps.migration {
        let mut o = Map::new();
        if let Some(p) = m.pgsize {
            o.insert("pgsize".into(), p.into());
        }
        if let Some(p) = m.max_bitmap_size {
            o.insert("max_bitmap_size".into(), p.into());
        }
        c.insert("migration".into(), o.into());
    }
    let mut root = Map::new();
    root.insert("capabilities".into(), c.into());
    root.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<VersionRepr> {
        VersionRepr::parse(&Version::new_checked(bytes)?)
    }

    fn msg(major: u16, minor: u16, json: &str) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&major.to_ne_bytes());
        v.extend_from_slice(&minor.to_ne_bytes());
        v.extend_from_slice(json.as_bytes());
        if !json.is_empty() {
            v.push(0);
        }
        v
    }

    #[test]
    fn libvfio_user_dialect() {
        let r = parse(&msg(
            0,
            2,
            r#"{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576,"migration":{"pgsize":4096,"max_bitmap_size":262144}}}"#,
        ))
        .unwrap();
        assert_eq!((r.major, r.minor), (0, 2));
        let caps = r.caps.unwrap();
        assert_eq!(caps.max_msg_fds(), 8);
        assert_eq!(caps.migration.unwrap().pgsize, Some(4096));
        assert!(caps.unknown.is_empty());
    }

    #[test]
    fn qemu_dialect() {
        let r = parse(&msg(
            0,
            0,
            r#"{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"write_multiple":true,"twin_socket":{"supported":true}}}"#,
        ))
        .unwrap();
        let caps = r.caps.unwrap();
        assert_eq!(caps.write_multiple, Some(true));
        assert_eq!(caps.max_dma_maps(), 65535);
        assert!(caps.twin_socket_supported());
        assert_eq!(caps.twin_socket.unwrap().fd_index, None);
    }

    #[test]
    fn spdk_dialect_no_json() {
        let r = parse(&msg(0, 1, "")).unwrap();
        assert_eq!(r.caps, None);
        // A bare NUL is the same thing.
        let r = parse(&[0, 0, 1, 0, 0]).unwrap();
        assert_eq!(r.caps, None);
    }

    #[test]
    fn unknown_keys_ignored_bad_types_refused() {
        let caps = parse(&msg(0, 0, r#"{"capabilities":{"frobnicate":[1,2]},"x":1}"#))
            .unwrap()
            .caps
            .unwrap();
        assert_eq!(caps.unknown, vec!["frobnicate".to_string()]);
        assert!(parse(&msg(0, 0, r#"{"capabilities":{"max_msg_fds":"8"}}"#)).is_err());
        assert!(parse(&msg(0, 0, r#"{"capabilities":{"max_msg_fds":-1}}"#)).is_err());
        assert!(parse(&msg(0, 0, r#"{"capabilities":"#)).is_err());
        assert!(parse(&msg(0, 0, r#"[1]"#)).is_err());
        assert!(parse(&[0, 0, 0, 0, 0xff, 0xfe]).is_err());
        assert!(parse(&[0, 0]).is_err());
        let huge = format!(r#"{{"capabilities":{{"pad":"{}"}}}}"#, "a".repeat(5000));
        assert!(matches!(
            parse(&msg(0, 0, &huge)),
            Err(Error::TooMany { .. })
        ));
    }

    #[test]
    fn emit_roundtrip() {
        let r = VersionRepr {
            major: 0,
            minor: 2,
            caps: Some(Capabilities {
                max_msg_fds: Some(64),
                twin_socket: Some(TwinSocket {
                    supported: true,
                    fd_index: Some(0),
                }),
                ..Default::default()
            }),
        };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Version::new_unchecked(&mut buf[..]));
        assert_eq!(*buf.last().unwrap(), 0);
        assert_eq!(parse(&buf).unwrap(), r);
    }
}

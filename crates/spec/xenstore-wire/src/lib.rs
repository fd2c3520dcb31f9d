//! The XenStore wire protocol as a spec crate: no I/O, no `unsafe`.
//!
//! Every message in either direction is a 16-byte header ([`Header`],
//! `struct xsd_sockmsg`: type, request id, transaction id, payload length,
//! each a `u32`) followed by at most [`PAYLOAD_MAX`] bytes of payload. Payloads
//! are nul-separated strings whose layout depends on the type
//! ([`MsgType`]); requests are parsed into [`Request`] and replies into
//! [`Reply`]. Errors travel as errno names ([`Errno`]). Paths obey
//! the rules of `docs/misc/xenstore.txt` ([`path`]).
//!
//! All integers are little-endian: xenstored speaks native byte order and
//! every architecture Xen runs on (x86, Arm) is little-endian.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod errno;
mod error;
mod header;
mod msg_type;
pub mod path;
mod perms;
mod reply;
mod request;

pub use errno::Errno;
pub use error::Error;
pub use header::{Header, HeaderRepr, HEADER_LEN};
pub use msg_type::MsgType;
pub use perms::{Perm, PermKind};
pub use reply::Reply;
pub use request::Request;

/// Largest payload allowed in either direction (`XENSTORE_PAYLOAD_MAX`).
/// A peer exceeding it is disconnected, as xenstored does.
pub const PAYLOAD_MAX: usize = 4096;
/// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// Longest path relative to a domain's home (`XENSTORE_REL_PATH_MAX`).
pub const REL_PATH_MAX: usize = 2048;

/// `XS_WRITE_*` is gone from the protocol; the reply to most requests is `OK\0`.
pub const OK: &[u8] = b"OK\0";

/// A whole message, header and payload, checked to be complete.
///
/// `Packet::new_checked` accepts a buffer holding at least one message; the
/// message may be followed by further bytes (the next message), which
/// [`Packet::total_len`] lets a reader skip.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` after checking the header is whole, the payload length
    /// is within [`PAYLOAD_MAX`] and the payload is all there.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let header = Header::new_checked(buffer.as_ref())?;
        let len = header.len();
        if len as usize > PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge(len));
        }
        if buffer.as_ref().len() < HEADER_LEN + len as usize {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// The header view.
    pub fn header(&self) -> Header<&[u8]> {
        Header::new_unchecked(&self.buffer.as_ref()[..HEADER_LEN])
    }

    /// The payload (exactly `len` bytes).
    pub fn payload(&self) -> &[u8] {
        let len = self.header().len() as usize;
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + len]
    }

    /// Header plus payload length: where the next message starts.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.header().len() as usize
    }
}

/// Builds a complete message from its parts.
///
/// # Errors
/// [`Error::PayloadTooLarge`] if `payload` exceeds [`PAYLOAD_MAX`].
pub fn emit_message(
    msg_type: MsgType,
    req_id: u32,
    tx_id: u32,
    payload: &[u8],
) -> Result<Vec<u8>, Error> {
    if payload.len() > PAYLOAD_MAX {
        return Err(Error::PayloadTooLarge(
            u32::try_from(payload.len()).unwrap_or(u32::MAX),
        ));
    }
    let header = HeaderRepr {
        msg_type: msg_type as u32,
        req_id,
        tx_id,
        len: payload.len() as u32,
    };
    let mut out = vec![0; HEADER_LEN + payload.len()];
    header.emit(&mut Header::new_unchecked(&mut out[..HEADER_LEN]));
    out[HEADER_LEN..].copy_from_slice(payload);
    Ok(out)
}

/// Splits a payload made of nul-terminated strings.
///
/// Returns the strings without their terminators, or
/// [`Error::Unterminated`] if the payload does not end in a nul.
/// An empty payload has no strings.
pub fn split_strings(payload: &[u8]) -> Result<Vec<&[u8]>, Error> {
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    match payload.split_last() {
        Some((0, body)) => Ok(body.split(|&b| b == 0).collect()),
        _ => Err(Error::Unterminated),
    }
}

/// Joins strings into a payload, each followed by a nul.
pub fn join_strings<'a>(strings: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        out.extend_from_slice(s);
        out.push(0);
    }
    out
}

/// Parses a decimal number the way the protocol writes them (digits only,
/// no sign, no spaces), rejecting overflow.
pub fn parse_decimal(field: &[u8]) -> Result<u64, Error> {
    if field.is_empty() || field.len() > 20 {
        return Err(Error::BadNumber);
    }
    let mut value: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return Err(Error::BadNumber);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(Error::BadNumber)?;
    }
    Ok(value)
}

/// Parses a domain id (decimal, 0..=65535).
pub fn parse_domid(field: &[u8]) -> Result<u16, Error> {
    u16::try_from(parse_decimal(field)?).map_err(|_| Error::BadNumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_checks_lengths() {
        let msg = emit_message(MsgType::Read, 7, 0, b"/a\0").unwrap();
        let p = Packet::new_checked(&msg[..]).unwrap();
        assert_eq!(p.payload(), b"/a\0");
        assert_eq!(p.total_len(), 19);
        assert_eq!(
            Packet::new_checked(&msg[..18]).unwrap_err(),
            Error::Truncated
        );
        let mut big = msg.clone();
        big[12..16].copy_from_slice(&4097u32.to_le_bytes());
        assert_eq!(
            Packet::new_checked(&big[..]).unwrap_err(),
            Error::PayloadTooLarge(4097)
        );
        assert!(emit_message(MsgType::Write, 0, 0, &[0; 4097]).is_err());
        assert!(emit_message(MsgType::Write, 0, 0, &[0; 4096]).is_ok());
    }

    #[test]
    fn strings_split_and_join() {
        assert_eq!(split_strings(b"").unwrap(), Vec::<&[u8]>::new());
        assert_eq!(split_strings(b"\0").unwrap(), vec![&b""[..]]);
        assert_eq!(
            split_strings(b"a\0bc\0").unwrap(),
            vec![&b"a"[..], &b"bc"[..]]
        );
        assert_eq!(split_strings(b"a\0b").unwrap_err(), Error::Unterminated);
        assert_eq!(join_strings([&b"a"[..], b"bc"]), b"a\0bc\0");
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"0").unwrap(), 0);
        assert_eq!(parse_decimal(b"4294967296").unwrap(), 1 << 32);
        assert!(parse_decimal(b"").is_err());
        assert!(parse_decimal(b"-1").is_err());
        assert!(parse_decimal(b"1 ").is_err());
        assert!(parse_decimal(b"99999999999999999999").is_err());
        assert_eq!(parse_domid(b"65535").unwrap(), 65535);
        assert!(parse_domid(b"65536").is_err());
    }
}

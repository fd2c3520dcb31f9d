//! The message header, `struct xsd_sockmsg`.

use crate::Error;

/// Size of the header in bytes.
pub const HEADER_LEN: usize = 16;

mod field {
    use core::ops::Range;
    pub const TYPE: Range<usize> = 0..4;
    pub const REQ_ID: Range<usize> = 4..8;
    pub const TX_ID: Range<usize> = 8..12;
    pub const LEN: Range<usize> = 12..16;
}

/// A read/write view of a message header.
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps a buffer without checking its length; accessors panic if it is
    /// shorter than [`HEADER_LEN`]. Use [`Header::new_checked`] for peer data.
    pub fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// Wraps a buffer after checking it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Header { buffer })
    }

    fn u32_at(&self, range: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[range];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The raw message type (`XS_*`); see [`crate::MsgType`].
    pub fn msg_type(&self) -> u32 {
        self.u32_at(field::TYPE)
    }
    /// The request id, echoed in the reply.
    pub fn req_id(&self) -> u32 {
        self.u32_at(field::REQ_ID)
    }
    /// The transaction id (0 outside a transaction).
    pub fn tx_id(&self) -> u32 {
        self.u32_at(field::TX_ID)
    }
    /// The payload length that follows the header.
    pub fn len(&self) -> u32 {
        self.u32_at(field::LEN)
    }
    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    fn set_u32(&mut self, range: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[range].copy_from_slice(&v.to_le_bytes());
    }
    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: u32) {
        self.set_u32(field::TYPE, v);
    }
    /// Sets the request id.
    pub fn set_req_id(&mut self, v: u32) {
        self.set_u32(field::REQ_ID, v);
    }
    /// Sets the transaction id.
    pub fn set_tx_id(&mut self, v: u32) {
        self.set_u32(field::TX_ID, v);
    }
    /// Sets the payload length.
    pub fn set_len(&mut self, v: u32) {
        self.set_u32(field::LEN, v);
    }
}

/// A parsed header. `msg_type` stays raw so an unknown type can still be
/// answered with an error carrying the right request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    /// `XS_*` type.
    pub msg_type: u32,
    /// Request id.
    pub req_id: u32,
    /// Transaction id.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

impl HeaderRepr {
    /// Reads a header from a checked view.
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Self {
        HeaderRepr {
            msg_type: h.msg_type(),
            req_id: h.req_id(),
            tx_id: h.tx_id(),
            len: h.len(),
        }
    }

    /// Writes the header into a view.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        h.set_msg_type(self.msg_type);
        h.set_req_id(self.req_id);
        h.set_tx_id(self.tx_id);
        h.set_len(self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_little_endian() {
        let bytes = [2, 0, 0, 0, 0x34, 0x12, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0];
        let h = Header::new_checked(&bytes[..]).unwrap();
        let r = HeaderRepr::parse(&h);
        assert_eq!(
            r,
            HeaderRepr {
                msg_type: 2,
                req_id: 0x1234,
                tx_id: 1,
                len: 3
            }
        );
        let mut out = [0u8; 16];
        r.emit(&mut Header::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes);
        assert_eq!(
            Header::new_checked(&bytes[..15]).unwrap_err(),
            Error::Truncated
        );
    }
}

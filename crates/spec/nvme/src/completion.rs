//! Completion queue entries (16 bytes).

use crate::status::Status;
use crate::{check_len, le, Error};
use serde::Serialize;

/// Size of a completion queue entry in bytes (CC.IOCQES = 4).
pub const CQE_SIZE: usize = 16;

/// A completion queue entry as a plain struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Completion {
    /// Command-specific dword 0 (e.g. the queues granted by SET FEATURES Number of Queues).
    pub dw0: u32,
    /// Command-specific dword 1.
    pub dw1: u32,
    /// Submission queue head pointer as the controller last consumed it.
    pub sq_head: u16,
    /// Submission queue the command came from.
    pub sq_id: u16,
    /// Command identifier.
    pub cid: u16,
    /// Phase tag: flips each time the controller wraps the queue.
    pub phase: bool,
    /// Status field (bits 15:1 of the last word).
    pub status: Status,
}

impl Completion {
    /// Parses an entry.
    pub fn parse<T: AsRef<[u8]>>(view: &CompletionEntry<T>) -> Completion {
        let b = view.buf.as_ref();
        let sf = le::u16(b, 14);
        Completion {
            dw0: le::u32(b, 0),
            dw1: le::u32(b, 4),
            sq_head: le::u16(b, 8),
            sq_id: le::u16(b, 10),
            cid: le::u16(b, 12),
            phase: sf & 1 != 0,
            status: Status::from_field(sf >> 1),
        }
    }

    /// Writes the entry into `buf` (used by tests and device models).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        check_len("completion entry", buf, CQE_SIZE)?;
        le::put_u32(buf, 0, self.dw0);
        le::put_u32(buf, 4, self.dw1);
        le::put_u16(buf, 8, self.sq_head);
        le::put_u16(buf, 10, self.sq_id);
        le::put_u16(buf, 12, self.cid);
        le::put_u16(buf, 14, (self.status.to_field() << 1) | self.phase as u16);
        Ok(())
    }
}

/// A checked view over a 16-byte completion queue entry.
#[derive(Debug, Clone, Copy)]
pub struct CompletionEntry<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> CompletionEntry<T> {
    /// Wraps `buf` after checking it holds a whole entry.
    pub fn new_checked(buf: T) -> Result<Self, Error> {
        check_len("completion entry", buf.as_ref(), CQE_SIZE)?;
        Ok(CompletionEntry { buf })
    }
    /// The phase tag alone: the consumer checks it before reading anything else.
    pub fn phase(&self) -> bool {
        self.buf.as_ref()[14] & 1 != 0
    }
    /// The command identifier.
    pub fn cid(&self) -> u16 {
        le::u16(self.buf.as_ref(), 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_of_an_error_completion() {
        // LBA Out of Range (SCT 0, SC 0x80) with DNR, phase 1, cid 7, SQ 1, head 5.
        let bytes = [0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 0, 7, 0, 0x01, 0x81];
        let view = CompletionEntry::new_checked(&bytes[..]).map_err(|e| e.to_string());
        let Ok(view) = view else {
            panic!("16 bytes rejected")
        };
        let c = Completion::parse(&view);
        assert!(c.phase && view.phase());
        assert_eq!((c.cid, c.sq_id, c.sq_head), (7, 1, 5));
        assert_eq!(c.status.code, 0x80);
        assert!(c.status.do_not_retry);
        assert_eq!(c.status.name(), "LBA Out of Range");
        assert!(CompletionEntry::new_checked(&bytes[..15]).is_err());
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(bytes in proptest::collection::vec(any::<u8>(), CQE_SIZE)) {
            let view = CompletionEntry::new_checked(&bytes[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let c = Completion::parse(&view);
            let mut out = [0u8; CQE_SIZE];
            c.emit(&mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(out.to_vec(), bytes.clone());
            prop_assert_eq!(view.cid(), c.cid);
        }
    }
}

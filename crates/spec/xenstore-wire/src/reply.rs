//! Replies and events (daemon to client).

use crate::path;
use crate::{emit_message, split_strings, Errno, Error, MsgType};

/// A parsed reply or unsolicited event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `ERROR E<name>|`
    Error(Errno),
    /// `WATCH_EVENT <epath>|<token>|` (req_id and tx_id 0)
    WatchEvent {
        /// The path that changed (or the watched path, for a parent removal).
        path: &'a str,
        /// The token given when the watch was registered.
        token: &'a [u8],
    },
    /// A successful reply to a request of the same type; its payload layout
    /// depends on that type (`OK|`, a value, a list of strings, …).
    Data {
        /// The type of the request answered.
        msg_type: MsgType,
        /// The raw payload.
        payload: &'a [u8],
    },
}

impl<'a> Reply<'a> {
    /// Parses a reply of raw type `msg_type`.
    pub fn parse(msg_type: u32, payload: &'a [u8]) -> Result<Reply<'a>, Error> {
        let ty = MsgType::from_u32(msg_type).ok_or(Error::UnknownType(msg_type))?;
        Ok(match ty {
            MsgType::Error => {
                let fields = split_strings(payload)?;
                let [name] = fields.as_slice() else {
                    return Err(Error::BadValue);
                };
                Reply::Error(Errno::from_name(name).ok_or(Error::BadValue)?)
            }
            MsgType::WatchEvent => {
                let fields = split_strings(payload)?;
                let [p, token] = fields.as_slice() else {
                    return Err(Error::MissingField);
                };
                Reply::WatchEvent {
                    path: path::check_watch(p)?,
                    token,
                }
            }
            msg_type => Reply::Data { msg_type, payload },
        })
    }

    /// The whole message. Watch events always carry ids 0.
    pub fn emit(&self, req_id: u32, tx_id: u32) -> Result<Vec<u8>, Error> {
        match self {
            Reply::Error(e) => emit_message(MsgType::Error, req_id, tx_id, &e.payload()),
            Reply::WatchEvent { path, token } => emit_message(
                MsgType::WatchEvent,
                0,
                0,
                &crate::join_strings([path.as_bytes(), token]),
            ),
            Reply::Data { msg_type, payload } => emit_message(*msg_type, req_id, tx_id, payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for r in [
            Reply::Error(Errno::EAGAIN),
            Reply::WatchEvent {
                path: "/a",
                token: b"t",
            },
            Reply::Data {
                msg_type: MsgType::Read,
                payload: b"v",
            },
        ] {
            let m = r.emit(3, 0).unwrap();
            let p = crate::Packet::new_checked(&m[..]).unwrap();
            assert_eq!(Reply::parse(p.header().msg_type(), p.payload()).unwrap(), r);
        }
        assert_eq!(Reply::parse(16, b"ENOPE\0"), Err(Error::BadValue));
        assert_eq!(Reply::parse(15, b"/a\0"), Err(Error::MissingField));
    }
}

//! The 16-byte header every message starts with.

use crate::view::view;
use crate::{Error, Result};

view!(
    /// Message header: id, command, size (header included), flags, errno.
    Header, 16, {
        msg_id / set_msg_id: u16 @ 0,
        command / set_command: u16 @ 2,
        msg_size / set_msg_size: u32 @ 4,
        flags / set_flags: u32 @ 8,
        error / set_error: u32 @ 12,
    }
);

/// Size of the header in bytes.
pub const HEADER_LEN: usize = 16;

/// Header flag bits.
pub mod flags {
    /// Bits 0–3: the message type.
    pub const TYPE_MASK: u32 = 0xf;
    /// Type: a command.
    pub const TYPE_COMMAND: u32 = 0;
    /// Type: a reply to the command with the same id.
    pub const TYPE_REPLY: u32 = 1;
    /// The sender wants no reply to this command.
    pub const NO_REPLY: u32 = 1 << 4;
    /// This reply reports an error (errno in the error field, maybe 0).
    pub const ERROR: u32 = 1 << 5;
    /// All bits this version defines.
    pub const KNOWN: u32 = TYPE_MASK | NO_REPLY | ERROR;
}

/// The commands of the protocol (the `command` header field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Version,
    DmaMap,
    DmaUnmap,
    DeviceGetInfo,
    DeviceGetRegionInfo,
    DeviceGetRegionIoFds,
    DeviceGetIrqInfo,
    DeviceSetIrqs,
    RegionRead,
    RegionWrite,
    DmaRead,
    DmaWrite,
    DeviceReset,
    RegionWriteMulti,
    DeviceFeature,
    MigDataRead,
    MigDataWrite,
    /// A command number this crate does not know; kept so a server can still
    /// consume the message and answer it with an error.
    Unknown(u16),
}

impl Command {
    /// Every known command, in numeric order.
    pub const ALL: [Command; 17] = [
        Command::Version,
        Command::DmaMap,
        Command::DmaUnmap,
        Command::DeviceGetInfo,
        Command::DeviceGetRegionInfo,
        Command::DeviceGetRegionIoFds,
        Command::DeviceGetIrqInfo,
        Command::DeviceSetIrqs,
        Command::RegionRead,
        Command::RegionWrite,
        Command::DmaRead,
        Command::DmaWrite,
        Command::DeviceReset,
        Command::RegionWriteMulti,
        Command::DeviceFeature,
        Command::MigDataRead,
        Command::MigDataWrite,
    ];

    /// The command with this number (unknown numbers are kept as such).
    pub fn from_u16(raw: u16) -> Command {
        match raw {
            1 => Command::Version,
            2 => Command::DmaMap,
            3 => Command::DmaUnmap,
            4 => Command::DeviceGetInfo,
            5 => Command::DeviceGetRegionInfo,
            6 => Command::DeviceGetRegionIoFds,
            7 => Command::DeviceGetIrqInfo,
            8 => Command::DeviceSetIrqs,
            9 => Command::RegionRead,
            10 => Command::RegionWrite,
            11 => Command::DmaRead,
            12 => Command::DmaWrite,
            13 => Command::DeviceReset,
            15 => Command::RegionWriteMulti,
            16 => Command::DeviceFeature,
            17 => Command::MigDataRead,
            18 => Command::MigDataWrite,
            other => Command::Unknown(other),
        }
    }

    /// The command's number.
    pub fn to_u16(self) -> u16 {
        match self {
            Command::Version => 1,
            Command::DmaMap => 2,
            Command::DmaUnmap => 3,
            Command::DeviceGetInfo => 4,
            Command::DeviceGetRegionInfo => 5,
            Command::DeviceGetRegionIoFds => 6,
            Command::DeviceGetIrqInfo => 7,
            Command::DeviceSetIrqs => 8,
            Command::RegionRead => 9,
            Command::RegionWrite => 10,
            Command::DmaRead => 11,
            Command::DmaWrite => 12,
            Command::DeviceReset => 13,
            Command::RegionWriteMulti => 15,
            Command::DeviceFeature => 16,
            Command::MigDataRead => 17,
            Command::MigDataWrite => 18,
            Command::Unknown(raw) => raw,
        }
    }

    /// Whether the server sends this command to the client (DMA_READ/WRITE).
    pub fn is_server_to_client(self) -> bool {
        matches!(self, Command::DmaRead | Command::DmaWrite)
    }
}

/// What kind of message a header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A command; `no_reply` set when the sender wants no answer.
    Command { no_reply: bool },
    /// A successful reply.
    Reply,
    /// An error reply carrying an errno (which may be 0).
    Error(u32),
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    pub msg_id: u16,
    pub command: Command,
    /// Payload bytes following the header (`msg_size - 16`).
    pub payload_len: u32,
    pub kind: Kind,
}

impl HeaderRepr {
    /// Parse a header, refusing a `msg_size` below the header size or above
    /// `max_size`, an unknown message type, and unknown flag bits. An unknown
    /// *command* is not an error here: the message can still be skipped and
    /// answered, so the stream stays in step.
    pub fn parse<T: AsRef<[u8]>>(header: &Header<T>, max_size: u32) -> Result<HeaderRepr> {
        let size = header.msg_size();
        if (size as usize) < HEADER_LEN || size > max_size {
            return Err(Error::BadSize {
                size: size.into(),
                min: HEADER_LEN as u64,
                max: max_size.into(),
            });
        }
        let raw_flags = header.flags();
        if raw_flags & !flags::KNOWN != 0 {
            return Err(Error::Invalid {
                field: "header flags",
                value: raw_flags.into(),
            });
        }
        let kind = match raw_flags & flags::TYPE_MASK {
            flags::TYPE_COMMAND => {
                if raw_flags & flags::ERROR != 0 {
                    return Err(Error::Invalid {
                        field: "header flags",
                        value: raw_flags.into(),
                    });
                }
                Kind::Command {
                    no_reply: raw_flags & flags::NO_REPLY != 0,
                }
            }
            flags::TYPE_REPLY if raw_flags & flags::ERROR != 0 => Kind::Error(header.error()),
            flags::TYPE_REPLY => Kind::Reply,
            other => return Err(Error::BadType(other)),
        };
        Ok(HeaderRepr {
            msg_id: header.msg_id(),
            command: Command::from_u16(header.command()),
            payload_len: size - HEADER_LEN as u32,
            kind,
        })
    }

    /// Write the header. The payload length must fit (callers bound it).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut Header<T>) {
        header.set_msg_id(self.msg_id);
        header.set_command(self.command.to_u16());
        header.set_msg_size(self.payload_len.saturating_add(HEADER_LEN as u32));
        let (f, error) = match self.kind {
            Kind::Command { no_reply: false } => (flags::TYPE_COMMAND, 0),
            Kind::Command { no_reply: true } => (flags::TYPE_COMMAND | flags::NO_REPLY, 0),
            Kind::Reply => (flags::TYPE_REPLY, 0),
            Kind::Error(errno) => (flags::TYPE_REPLY | flags::ERROR, errno),
        };
        header.set_flags(f);
        header.set_error(error);
    }

    /// The header as 16 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut raw = [0u8; HEADER_LEN];
        self.emit(&mut Header::new_unchecked(&mut raw[..]));
        raw
    }

    /// Parse 16 bytes.
    pub fn from_bytes(raw: &[u8], max_size: u32) -> Result<HeaderRepr> {
        HeaderRepr::parse(&Header::new_checked(raw)?, max_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_roundtrip() {
        for raw in 0..=u16::MAX {
            assert_eq!(Command::from_u16(raw).to_u16(), raw);
        }
        for c in Command::ALL {
            assert!(!matches!(c, Command::Unknown(_)));
        }
    }

    #[test]
    fn header_bounds() {
        let mut raw = HeaderRepr {
            msg_id: 7,
            command: Command::RegionRead,
            payload_len: 16,
            kind: Kind::Command { no_reply: false },
        }
        .to_bytes();
        assert_eq!(
            HeaderRepr::from_bytes(&raw, 1024).map(|h| h.payload_len),
            Ok(16)
        );
        // A lying size below the header size.
        raw[4..8].copy_from_slice(&3u32.to_ne_bytes());
        assert!(matches!(
            HeaderRepr::from_bytes(&raw, 1024),
            Err(Error::BadSize { size: 3, .. })
        ));
        // Above the limit.
        raw[4..8].copy_from_slice(&2000u32.to_ne_bytes());
        assert!(matches!(
            HeaderRepr::from_bytes(&raw, 1024),
            Err(Error::BadSize { .. })
        ));
        // Truncated.
        assert!(matches!(
            HeaderRepr::from_bytes(&raw[..10], 1024),
            Err(Error::Truncated { need: 16, have: 10 })
        ));
    }

    #[test]
    fn error_reply_kind() {
        let h = HeaderRepr {
            msg_id: 1,
            command: Command::DmaMap,
            payload_len: 0,
            kind: Kind::Error(17),
        };
        let raw = h.to_bytes();
        assert_eq!(HeaderRepr::from_bytes(&raw, 64), Ok(h));
        let view = Header::new_checked(&raw[..]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(view.flags(), flags::TYPE_REPLY | flags::ERROR);
        assert_eq!(view.error(), 17);
    }
}

//! How the state files are framed (format 2).
//!
//! Each file starts with a 32-byte header: `PCIBOXXS`, the format version
//! (`u32` 2), the kind (`u32`: 1 snapshot, 2 log segment), a sequence number
//! (`u64`: for a snapshot the first log record it does *not* contain, for a
//! segment the sequence number of its first record), 4 reserved bytes and a
//! CRC-32 of the 28 bytes before it.
//!
//! Then frames: a 24-byte header — magic `PXSR`, body length `u32`,
//! sequence number `u64`, CRC-32 of the body, CRC-32 of the 20 header
//! bytes before it — and the body. Log records are numbered consecutively
//! across segments. Because every frame names itself (magic, number, its own
//! checksum), recovery can tell a torn last write (nothing intact follows)
//! from damage in the middle (intact frames follow: refuse to start).
//! All integers are little-endian.

/// The first 8 bytes of every state file.
pub const FILE_MAGIC: [u8; 8] = *b"PCIBOXXS";
/// The format these files are in.
pub const VERSION: u32 = 2;
/// Bytes of a file header.
pub const FILE_HEADER_LEN: usize = 32;
/// The first 4 bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"PXSR";
/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 24;
/// Largest frame body accepted when reading (a guard against a damaged
/// length; no record comes near it).
pub const BODY_MAX: usize = 1 << 30;

/// What a state file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The whole tree.
    Snapshot = 1,
    /// Log records.
    Log = 2,
}

/// CRC-32 (IEEE 802.3, as GPT and zlib use it): the project's one
/// implementation, in the partition-table spec crate.
pub fn crc32(data: &[u8]) -> u32 {
    partition_table::crc32::crc32(data)
}

fn u32_at(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

fn u64_at(d: &[u8], at: usize) -> u64 {
    u64::from(u32_at(d, at)) | (u64::from(u32_at(d, at + 4)) << 32)
}

/// A file header.
pub fn file_header(kind: Kind, seq: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(kind as u32).to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32(&h[..28]);
    h[28..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a file header is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not a format-2 state file (too short, or another magic).
    #[error("not a pcibox xenstored state file (format {VERSION})")]
    Foreign,
    /// The header's checksum does not match.
    #[error("damaged file header")]
    Damaged,
    /// Another version or kind.
    #[error("format {version} kind {kind}, expected format {VERSION} kind {expected}")]
    Unexpected {
        /// Version found.
        version: u32,
        /// Kind found.
        kind: u32,
        /// Kind expected.
        expected: u32,
    },
}

/// Parses a file header of `kind`; returns its sequence number.
pub fn parse_file_header(data: &[u8], kind: Kind) -> Result<u64, HeaderError> {
    let h = data.get(..FILE_HEADER_LEN).ok_or(HeaderError::Foreign)?;
    if h[..8] != FILE_MAGIC {
        return Err(HeaderError::Foreign);
    }
    if crc32(&h[..28]) != u32_at(h, 28) {
        return Err(HeaderError::Damaged);
    }
    let (version, k) = (u32_at(h, 8), u32_at(h, 12));
    if version != VERSION || k != kind as u32 {
        return Err(HeaderError::Unexpected {
            version,
            kind: k,
            expected: kind as u32,
        });
    }
    Ok(u64_at(h, 16))
}

/// A frame holding `body`, numbered `seq`.
pub fn frame(seq: u64, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    f.extend_from_slice(&FRAME_MAGIC);
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend_from_slice(&crc32(body).to_le_bytes());
    let crc = crc32(&f[..20]);
    f.extend_from_slice(&crc.to_le_bytes());
    f.extend_from_slice(body);
    f
}

/// A whole, intact frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// Its body.
    pub body: &'a [u8],
    /// Where the next frame starts.
    pub end: usize,
}

/// Why there is no intact frame at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The file ends inside the frame (its header or its body).
    #[error("the file ends inside it")]
    Truncated,
    /// The header is not a frame header (magic or checksum).
    #[error("no valid frame header")]
    Header,
    /// The header is intact but the body's checksum does not match.
    #[error("its body does not match its checksum")]
    Body,
}

/// The frame at `pos`.
pub fn read_frame(data: &[u8], pos: usize) -> Result<Frame<'_>, FrameError> {
    let h = data
        .get(pos..pos + FRAME_HEADER_LEN)
        .ok_or(FrameError::Truncated)?;
    if h[..4] != FRAME_MAGIC || crc32(&h[..20]) != u32_at(h, 20) {
        // A header cut short by the end of the file reads as garbage too.
        return Err(FrameError::Header);
    }
    let len = u32_at(h, 4) as usize;
    if len > BODY_MAX {
        return Err(FrameError::Header);
    }
    let start = pos + FRAME_HEADER_LEN;
    let body = data.get(start..start + len).ok_or(FrameError::Truncated)?;
    if crc32(body) != u32_at(h, 16) {
        return Err(FrameError::Body);
    }
    Ok(Frame {
        seq: u64_at(h, 8),
        body,
        end: start + len,
    })
}

/// The first offset after `from` where an intact frame starts, if any:
/// after damage, whether anything intact follows.
pub fn next_intact(data: &[u8], from: usize) -> Option<usize> {
    let mut pos = from + 1;
    while pos + FRAME_HEADER_LEN <= data.len() {
        let hit = data[pos..].windows(4).position(|w| w == FRAME_MAGIC)?;
        pos += hit;
        if read_frame(data, pos).is_ok() {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_frames_round_trip_and_damage_is_found() {
        let h = file_header(Kind::Log, 42);
        assert_eq!(parse_file_header(&h, Kind::Log), Ok(42));
        assert!(matches!(
            parse_file_header(&h, Kind::Snapshot),
            Err(HeaderError::Unexpected { .. })
        ));
        let mut bad = h;
        bad[17] ^= 1;
        assert_eq!(
            parse_file_header(&bad, Kind::Log),
            Err(HeaderError::Damaged)
        );
        assert_eq!(
            parse_file_header(b"log", Kind::Log),
            Err(HeaderError::Foreign)
        );

        let mut file = frame(7, b"first");
        let second = file.len();
        file.extend(frame(8, b"second"));
        let f = read_frame(&file, 0).unwrap();
        assert_eq!((f.seq, f.body, f.end), (7, &b"first"[..], second));
        assert_eq!(read_frame(&file, second).unwrap().seq, 8);
        assert_eq!(
            read_frame(&file[..file.len() - 1], second),
            Err(FrameError::Truncated)
        );
        assert_eq!(next_intact(&file, 0), Some(second));
        // A flipped bit in the first frame's length: its header no longer
        // checks out, and the second frame is found after it.
        let mut d = file.clone();
        d[5] ^= 0x10;
        assert_eq!(read_frame(&d, 0), Err(FrameError::Header));
        assert_eq!(next_intact(&d, 0), Some(second));
        // In its body.
        let mut d = file.clone();
        d[FRAME_HEADER_LEN + 1] ^= 1;
        assert_eq!(read_frame(&d, 0), Err(FrameError::Body));
        // Nothing intact after a torn last frame.
        assert_eq!(next_intact(&file[..file.len() - 3], second), None);
    }
}

//! What a record's body holds: a sequence of entries, each a tag byte:
//!
//! - `1` node: path, value, permissions, children (the node's full state);
//! - `2` removal: path;
//! - `3` domain: domid `u16`, introduced `u8`;
//! - `4` children: path, names removed, names appended (a node whose
//!   children alone changed: a busy directory is not logged whole for each
//!   child that comes or goes).
//!
//! Strings are `u16` length + bytes, the value `u32` length + bytes, lists a
//! `u32` count; all integers little-endian. Entries assign state, so applying
//! a record twice gives the same tree (a children entry removes names before
//! appending them, and appends only names not there): the log may safely
//! overlap the snapshot after a crash during compaction.
//!
//! Format 1 (before pcibox's format 2 framing, see [`super::frame`]) framed
//! the same bodies as `len: u32`, `fnv1a32(body): u32`, body; [`decode_v1`]
//! still reads it, to convert old state directories.

use crate::node::Node;
use crate::store::Change;
use std::sync::Arc;
use xenstore_wire::Perm;

/// Why a format-1 record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The file ends inside a record (a torn write).
    #[error("record truncated at byte {0}")]
    Truncated(usize),
    /// The checksum does not match.
    #[error("bad checksum in record at byte {0}")]
    Checksum(usize),
    /// The body is malformed.
    #[error("malformed record at byte {0}")]
    Malformed(usize),
}

/// FNV-1a, 32 bits: enough to tell a torn or garbled record.
pub fn fnv1a32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in data {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s);
}

fn put_strs(out: &mut Vec<u8>, names: &[String]) {
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for n in names {
        put_str(out, n.as_bytes());
    }
}

/// The size of `change`'s entry in a record body.
pub fn entry_len(change: &Change) -> usize {
    let names = |v: &[String]| 4 + v.iter().map(|n| 2 + n.len()).sum::<usize>();
    match change {
        Change::Node {
            path,
            node: Some(n),
        } => node_len(path, n),
        Change::Node { path, node: None } => 3 + path.len(),
        Change::Domain { .. } => 4,
        Change::Children {
            path,
            removed,
            added,
        } => 3 + path.len() + names(removed) + names(added),
    }
}

/// The size of the entry holding node `n` at `path`.
pub fn node_len(path: &str, n: &Node) -> usize {
    3 + path.len()
        + 4
        + n.value.len()
        + 4
        + 3 * n.perms.len()
        + 4
        + n.children.iter().map(|c| 2 + c.len()).sum::<usize>()
}

/// Encodes changes as one record body.
pub fn encode_body(changes: &[Change]) -> Vec<u8> {
    let mut body = Vec::new();
    for c in changes {
        match c {
            Change::Node {
                path,
                node: Some(n),
            } => {
                body.push(1);
                put_str(&mut body, path.as_bytes());
                body.extend_from_slice(&(n.value.len() as u32).to_le_bytes());
                body.extend_from_slice(&n.value);
                body.extend_from_slice(&(n.perms.len() as u32).to_le_bytes());
                for p in &n.perms {
                    body.push(p.kind.letter());
                    body.extend_from_slice(&p.domid.to_le_bytes());
                }
                body.extend_from_slice(&(n.children.len() as u32).to_le_bytes());
                for ch in &n.children {
                    put_str(&mut body, ch.as_bytes());
                }
            }
            Change::Node { path, node: None } => {
                body.push(2);
                put_str(&mut body, path.as_bytes());
            }
            Change::Domain { domid, introduced } => {
                body.push(3);
                body.extend_from_slice(&domid.to_le_bytes());
                body.push(u8::from(*introduced));
            }
            Change::Children {
                path,
                removed,
                added,
            } => {
                body.push(4);
                put_str(&mut body, path.as_bytes());
                put_strs(&mut body, removed);
                put_strs(&mut body, added);
            }
        }
    }
    body
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.u32()? as usize;
        let mut v = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            v.push(self.string()?);
        }
        Some(v)
    }
}

/// Decodes a record body; `None` if it is malformed.
pub fn decode_body(body: &[u8]) -> Option<Vec<Change>> {
    let mut r = Reader { data: body, pos: 0 };
    let mut out = Vec::new();
    while r.pos < body.len() {
        match r.u8()? {
            1 => {
                let path = r.string()?;
                let vlen = r.u32()? as usize;
                let value = r.take(vlen)?.to_vec();
                let np = r.u32()? as usize;
                let mut perms = Vec::with_capacity(np.min(64));
                for _ in 0..np {
                    let letter = r.u8()?;
                    let domid = r.u16()?;
                    let text = format!("{}{domid}", letter as char);
                    perms.push(Perm::parse(text.as_bytes()).ok()?);
                }
                let nc = r.u32()? as usize;
                let mut children = Vec::with_capacity(nc.min(4096));
                for _ in 0..nc {
                    children.push(r.string()?);
                }
                if perms.is_empty() {
                    return None;
                }
                out.push(Change::Node {
                    path,
                    node: Some(Arc::new(Node {
                        value,
                        perms,
                        children,
                        gen: 0,
                    })),
                });
            }
            2 => out.push(Change::Node {
                path: r.string()?,
                node: None,
            }),
            3 => {
                let domid = r.u16()?;
                let introduced = r.u8()? != 0;
                out.push(Change::Domain { domid, introduced });
            }
            4 => out.push(Change::Children {
                path: r.string()?,
                removed: r.strings()?,
                added: r.strings()?,
            }),
            _ => return None,
        }
    }
    Some(out)
}

/// One format-1 record (to test the conversion of old state directories).
pub fn encode_v1(changes: &[Change]) -> Vec<u8> {
    let body = encode_body(changes);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&fnv1a32(&body).to_le_bytes());
    out.extend(body);
    out
}

/// Decodes the records of a format-1 file. Returns the records decoded and
/// the length of the valid prefix, or the error that ended decoding.
pub fn decode_v1(data: &[u8]) -> (Vec<Vec<Change>>, usize, Option<CodecError>) {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let Some(head) = data.get(pos..pos + 8) else {
            return (records, pos, Some(CodecError::Truncated(pos)));
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let sum = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(body) = data.get(pos + 8..pos + 8 + len) else {
            return (records, pos, Some(CodecError::Truncated(pos)));
        };
        if fnv1a32(body) != sum {
            return (records, pos, Some(CodecError::Checksum(pos)));
        }
        match decode_body(body) {
            Some(r) => records.push(r),
            None => return (records, pos, Some(CodecError::Malformed(pos))),
        }
        pos += 8 + len;
    }
    (records, pos, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenstore_wire::PermKind;

    #[test]
    fn bodies_round_trip_and_format_1_is_read() {
        let mut n = Node::new(3, PermKind::Read);
        n.value = b"v\0x".to_vec();
        n.children = vec!["a".into(), "b".into()];
        let changes = vec![
            Change::Node {
                path: "/x".into(),
                node: Some(Arc::new(n)),
            },
            Change::Node {
                path: "/y".into(),
                node: None,
            },
            Change::Domain {
                domid: 7,
                introduced: true,
            },
            Change::Children {
                path: "/x".into(),
                removed: vec!["a".into()],
                added: vec!["c".into(), "d".into()],
            },
        ];
        assert_eq!(decode_body(&encode_body(&changes)), Some(changes.clone()));
        let sizes: usize = changes.iter().map(entry_len).sum();
        assert_eq!(sizes, encode_body(&changes).len(), "entry_len is exact");
        assert_eq!(decode_body(&[9]), None);
        let mut file = encode_v1(&changes);
        let one = file.len();
        file.extend(encode_v1(&changes[1..2]));
        let (recs, valid, err) = decode_v1(&file);
        assert_eq!((recs.len(), valid, err), (2, file.len(), None));
        assert_eq!(recs[0], changes);
        let (recs, valid, err) = decode_v1(&file[..file.len() - 1]);
        assert_eq!((recs.len(), valid), (1, one));
        assert_eq!(err, Some(CodecError::Truncated(one)));
        let mut bad = file.clone();
        bad[one + 9] ^= 1;
        assert_eq!(decode_v1(&bad).2, Some(CodecError::Checksum(one)));
    }
}

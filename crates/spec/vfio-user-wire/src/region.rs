//! DEVICE_GET_REGION_INFO (with its capability list), REGION_READ/WRITE and
//! REGION_WRITE_MULTI.

use crate::dma::no_trailing;
use crate::view::{get, view};
use crate::MAX_WRITE_MULTI;
use crate::{bound, range_end, Error, Result, MAX_AREAS, MAX_DATA_XFER_SIZE, MAX_REGION_CAPS};

view!(
    /// DEVICE_GET_REGION_INFO request and reply (capabilities follow).
    RegionInfo, 32, {
        argsz / set_argsz: u32 @ 0,
        flags / set_flags: u32 @ 4,
        index / set_index: u32 @ 8,
        cap_offset / set_cap_offset: u32 @ 12,
        size / set_size: u64 @ 16,
        offset / set_offset: u64 @ 24,
    }
);

view!(
    /// Header of one region capability (`struct vfio_info_cap_header`).
    CapHeader, 8, {
        id / set_id: u16 @ 0,
        version / set_version: u16 @ 2,
        next / set_next: u32 @ 4,
    }
);

view!(
    /// Body of the sparse-mmap capability: area count, then (offset, size) pairs.
    SparseMmap, 8, {
        nr_areas / set_nr_areas: u32 @ 0,
        reserved / set_reserved: u32 @ 4,
    }
);

view!(
    /// REGION_READ/REGION_WRITE request and reply: offset, region, count, data.
    RegionAccess, 16, {
        offset / set_offset: u64 @ 0,
        region / set_region: u32 @ 8,
        count / set_count: u32 @ 12,
    }
);

view!(
    /// One entry of REGION_WRITE_MULTI (at most 8 bytes of data).
    WriteMultiEntry, 24, {
        offset / set_offset: u64 @ 0,
        region / set_region: u32 @ 8,
        count / set_count: u32 @ 12,
        data / set_data: u64 @ 16,
    }
);

/// Region info flags.
pub const REGION_INFO_FLAG_READ: u32 = 1 << 0;
pub const REGION_INFO_FLAG_WRITE: u32 = 1 << 1;
pub const REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
pub const REGION_INFO_FLAG_CAPS: u32 = 1 << 3;

/// Capability ids.
pub const REGION_INFO_CAP_SPARSE_MMAP: u16 = 1;
pub const REGION_INFO_CAP_TYPE: u16 = 2;

const AREA_LEN: usize = 16;

/// One mappable area of a region (offset relative to the region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseArea {
    pub offset: u64,
    pub size: u64,
}

/// A parsed DEVICE_GET_REGION_INFO request or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfoRepr {
    /// In a request: the most the client accepts. In a reply: the full size.
    pub argsz: u32,
    /// Raw flags ([`REGION_INFO_FLAG_CAPS`] set by `emit` when caps follow).
    pub flags: u32,
    pub index: u32,
    pub size: u64,
    /// mmap offset in the accompanying fd.
    pub offset: u64,
    /// Sparse-mmap capability, when present.
    pub sparse: Option<Vec<SparseArea>>,
    /// Region-type capability (type, subtype), when present.
    pub cap_type: Option<(u32, u32)>,
}

impl RegionInfoRepr {
    pub const LEN: usize = 32;

    /// Parse. Capabilities are followed only when present in the payload (a
    /// reply to a too-small `argsz` carries none); the list must move
    /// forward, stay inside the payload and have at most [`MAX_REGION_CAPS`]
    /// entries; sparse areas must lie inside the region. Unknown
    /// capabilities are skipped.
    pub fn parse<T: AsRef<[u8]>>(view: &RegionInfo<T>) -> Result<RegionInfoRepr> {
        let buf = view.buffer.as_ref();
        let mut repr = RegionInfoRepr {
            argsz: view.argsz(),
            flags: view.flags(),
            index: view.index(),
            size: view.size(),
            offset: view.offset(),
            sparse: None,
            cap_type: None,
        };
        let mut at = view.cap_offset() as usize;
        if repr.flags & REGION_INFO_FLAG_CAPS == 0 || at == 0 || at >= buf.len() {
            if buf.len() > Self::LEN && repr.flags & REGION_INFO_FLAG_CAPS == 0 {
                return Err(Error::Trailing(buf.len() - Self::LEN));
            }
            return Ok(repr);
        }
        let mut seen = 0;
        while at != 0 {
            seen += 1;
            bound("region capabilities", seen, MAX_REGION_CAPS as u64)?;
            if at < Self::LEN {
                return Err(Error::Invalid {
                    field: "region cap offset",
                    value: at as u64,
                });
            }
            let rest = buf.get(at..).ok_or(Error::Invalid {
                field: "region cap offset",
                value: at as u64,
            })?;
            let hdr = CapHeader::new_checked(rest)?;
            let body = &hdr.tail();
            match hdr.id() {
                REGION_INFO_CAP_SPARSE_MMAP => {
                    let sm = SparseMmap::new_checked(*body)?;
                    let n = sm.nr_areas();
                    bound("sparse mmap areas", n.into(), MAX_AREAS.into())?;
                    let areas = sm.tail();
                    crate::need(areas, n as usize * AREA_LEN)?;
                    let mut list = Vec::with_capacity(n as usize);
                    for i in 0..n as usize {
                        let a = SparseArea {
                            offset: get(areas, i * AREA_LEN),
                            size: get(areas, i * AREA_LEN + 8),
                        };
                        if range_end(a.offset, a.size)? > repr.size {
                            return Err(Error::Invalid {
                                field: "sparse area end",
                                value: a.offset.saturating_add(a.size),
                            });
                        }
                        list.push(a);
                    }
                    repr.sparse = Some(list);
                }
                REGION_INFO_CAP_TYPE => {
                    crate::need(body, 8)?;
                    repr.cap_type = Some((get(body, 0), get(body, 4)));
                }
                _ => {}
            }
            let next = hdr.next() as usize;
            if next != 0 && next <= at {
                return Err(Error::Invalid {
                    field: "region cap next",
                    value: next as u64,
                });
            }
            at = next;
        }
        Ok(repr)
    }

    fn caps_len(&self) -> usize {
        let sparse = self
            .sparse
            .as_ref()
            .map_or(0, |a| CapHeader::<&[u8]>::LEN + 8 + a.len() * AREA_LEN);
        let ty = self.cap_type.map_or(0, |_| CapHeader::<&[u8]>::LEN + 8);
        sparse + ty
    }

    /// Payload length when emitted (the value a reply's `argsz` should hold).
    pub fn buffer_len(&self) -> usize {
        Self::LEN + self.caps_len()
    }

    /// Emit the structure and its capabilities (sparse first, then type).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut RegionInfo<T>) {
        view.set_argsz(self.argsz);
        view.set_flags(self.flags);
        view.set_index(self.index);
        view.set_cap_offset(if self.caps_len() == 0 {
            0
        } else {
            Self::LEN as u32
        });
        view.set_size(self.size);
        view.set_offset(self.offset);
        let buf = view.buffer.as_mut();
        let mut at = Self::LEN;
        if let Some(areas) = &self.sparse {
            let len = CapHeader::<&[u8]>::LEN + 8 + areas.len() * AREA_LEN;
            let next = if self.cap_type.is_some() { at + len } else { 0 };
            let mut hdr = CapHeader::new_unchecked(&mut buf[at..at + len]);
            hdr.set_id(REGION_INFO_CAP_SPARSE_MMAP);
            hdr.set_version(1);
            hdr.set_next(next as u32);
            let mut sm = SparseMmap::new_unchecked(hdr.tail_mut());
            sm.set_nr_areas(areas.len() as u32);
            sm.set_reserved(0);
            for (a, chunk) in areas.iter().zip(sm.tail_mut().chunks_exact_mut(AREA_LEN)) {
                crate::view::put(chunk, 0, a.offset);
                crate::view::put(chunk, 8, a.size);
            }
            at += len;
        }
        if let Some((ty, sub)) = self.cap_type {
            let len = CapHeader::<&[u8]>::LEN + 8;
            let mut hdr = CapHeader::new_unchecked(&mut buf[at..at + len]);
            hdr.set_id(REGION_INFO_CAP_TYPE);
            hdr.set_version(1);
            hdr.set_next(0);
            crate::view::put(hdr.tail_mut(), 0, ty);
            crate::view::put(hdr.tail_mut(), 4, sub);
        }
    }
}

/// A parsed REGION_READ/REGION_WRITE message; `data` is empty where the
/// message carries none (READ request, WRITE reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionAccessRepr<'a> {
    pub offset: u64,
    pub region: u32,
    pub count: u32,
    pub data: &'a [u8],
}

impl<'a> RegionAccessRepr<'a> {
    pub const LEN: usize = 16;

    /// Parse; `with_data` says whether exactly `count` bytes must follow.
    pub fn parse(payload: &'a [u8], with_data: bool) -> Result<RegionAccessRepr<'a>> {
        let view = RegionAccess::new_checked(payload)?;
        let count = view.count();
        bound(
            "region access bytes",
            count.into(),
            MAX_DATA_XFER_SIZE.into(),
        )?;
        range_end(view.offset(), count.into())?;
        let data = &payload[Self::LEN..];
        if with_data {
            if data.len() != count as usize {
                return Err(Error::Invalid {
                    field: "region access data length",
                    value: data.len() as u64,
                });
            }
        } else {
            no_trailing(data)?;
        }
        Ok(RegionAccessRepr {
            offset: view.offset(),
            region: view.region(),
            count,
            data: if with_data { data } else { &[] },
        })
    }

    pub fn buffer_len(&self) -> usize {
        Self::LEN + self.data.len()
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut RegionAccess<T>) {
        view.set_offset(self.offset);
        view.set_region(self.region);
        view.set_count(self.count);
        view.tail_mut()[..self.data.len()].copy_from_slice(self.data);
    }
}

/// One coalesced write (1–8 bytes; `data` holds them in its low-address bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteEntry {
    pub offset: u64,
    pub region: u32,
    pub count: u32,
    pub data: [u8; 8],
}

impl WriteEntry {
    /// The bytes to write.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.count.min(8) as usize]
    }
}

/// A parsed REGION_WRITE_MULTI request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteMultiRepr {
    pub writes: Vec<WriteEntry>,
}

impl WriteMultiRepr {
    /// Parse: `wr_cnt` ≤ [`MAX_WRITE_MULTI`], exactly that many entries,
    /// each 1–8 bytes.
    pub fn parse(payload: &[u8]) -> Result<WriteMultiRepr> {
        crate::need(payload, 8)?;
        let n: u64 = get(payload, 0);
        bound("write_multi entries", n, MAX_WRITE_MULTI)?;
        let entries = &payload[8..];
        let len = WriteMultiEntry::<&[u8]>::LEN;
        if entries.len() as u64 != n * len as u64 {
            return Err(Error::Invalid {
                field: "write_multi length",
                value: entries.len() as u64,
            });
        }
        let mut writes = Vec::with_capacity(n as usize);
        for chunk in entries.chunks_exact(len) {
            let e = WriteMultiEntry::new_checked(chunk)?;
            let count = e.count();
            if count == 0 || count > 8 {
                return Err(Error::Invalid {
                    field: "write_multi count",
                    value: count.into(),
                });
            }
            range_end(e.offset(), count.into())?;
            let mut data = [0u8; 8];
            data.copy_from_slice(&chunk[16..24]);
            writes.push(WriteEntry {
                offset: e.offset(),
                region: e.region(),
                count,
                data,
            });
        }
        Ok(WriteMultiRepr { writes })
    }

    pub fn buffer_len(&self) -> usize {
        8 + self.writes.len() * WriteMultiEntry::<&[u8]>::LEN
    }

    pub fn emit(&self, payload: &mut [u8]) {
        crate::view::put(payload, 0, self.writes.len() as u64);
        let len = WriteMultiEntry::<&[u8]>::LEN;
        for (w, chunk) in self.writes.iter().zip(payload[8..].chunks_exact_mut(len)) {
            let mut e = WriteMultiEntry::new_unchecked(&mut *chunk);
            e.set_offset(w.offset);
            e.set_region(w.region);
            e.set_count(w.count);
            chunk[16..24].copy_from_slice(&w.data);
        }
    }
}

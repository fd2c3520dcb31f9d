//! DMA_MAP, DMA_UNMAP (client→server) and DMA_READ/DMA_WRITE (server→client).

use crate::view::view;
use crate::{bound, range_end, Error, Result, MAX_DATA_XFER_SIZE};

view!(
    /// DMA_MAP request: a window of client memory the server may access.
    DmaMap, 32, {
        argsz / set_argsz: u32 @ 0,
        flags / set_flags: u32 @ 4,
        offset / set_offset: u64 @ 8,
        address / set_address: u64 @ 16,
        size / set_size: u64 @ 24,
    }
);

view!(
    /// DMA_UNMAP request and reply.
    DmaUnmap, 24, {
        argsz / set_argsz: u32 @ 0,
        flags / set_flags: u32 @ 4,
        address / set_address: u64 @ 8,
        size / set_size: u64 @ 16,
    }
);

view!(
    /// DMA_READ/DMA_WRITE request and reply: address, count, then data.
    DmaAccess, 16, {
        address / set_address: u64 @ 0,
        count / set_count: u64 @ 8,
    }
);

/// DMA_MAP flag: the server may read the window.
pub const DMA_FLAG_READ: u32 = 1 << 0;
/// DMA_MAP flag: the server may write the window.
pub const DMA_FLAG_WRITE: u32 = 1 << 1;
/// DMA_UNMAP flag: drop every window of the client. Linux VFIO's
/// `VFIO_DMA_UNMAP_FLAG_ALL` (type1 IOMMU), which QEMU's vfio-user client
/// and libvfio-user send as is; address and size must then both be 0.
pub const DMA_UNMAP_FLAG_ALL: u32 = 1 << 1;

/// A parsed DMA_MAP request. A file descriptor (0 or 1) travels beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaMapRepr {
    /// [`DMA_FLAG_READ`] | [`DMA_FLAG_WRITE`].
    pub flags: u32,
    /// Offset of the window in the accompanying file descriptor.
    pub offset: u64,
    /// The IOVA where the window starts.
    pub address: u64,
    pub size: u64,
}

impl DmaMapRepr {
    pub const LEN: usize = 32;

    /// Parse and validate: known flags only, non-empty, no wrap-around.
    pub fn parse<T: AsRef<[u8]>>(view: &DmaMap<T>) -> Result<DmaMapRepr> {
        no_trailing(view.tail())?;
        let flags = view.flags();
        if flags & !(DMA_FLAG_READ | DMA_FLAG_WRITE) != 0 {
            return Err(Error::Invalid {
                field: "dma_map flags",
                value: flags.into(),
            });
        }
        let (address, size, offset) = (view.address(), view.size(), view.offset());
        if size == 0 {
            return Err(Error::Invalid {
                field: "dma_map size",
                value: 0,
            });
        }
        range_end(address, size - 1)?;
        range_end(offset, size - 1)?;
        Ok(DmaMapRepr {
            flags,
            offset,
            address,
            size,
        })
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut DmaMap<T>) {
        view.set_argsz(Self::LEN as u32);
        view.set_flags(self.flags);
        view.set_offset(self.offset);
        view.set_address(self.address);
        view.set_size(self.size);
    }
}

/// A parsed DMA_UNMAP request or reply (the reply echoes the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaUnmapRepr {
    pub argsz: u32,
    /// 0 (one window, matched exactly) or [`DMA_UNMAP_FLAG_ALL`]; other
    /// bits are kept raw so a server can refuse what it does not do.
    pub flags: u32,
    pub address: u64,
    pub size: u64,
}

impl DmaUnmapRepr {
    pub const LEN: usize = 24;

    /// The request that drops every window: [`DMA_UNMAP_FLAG_ALL`], address
    /// and size 0.
    pub fn all() -> DmaUnmapRepr {
        DmaUnmapRepr {
            argsz: Self::LEN as u32,
            flags: DMA_UNMAP_FLAG_ALL,
            address: 0,
            size: 0,
        }
    }

    /// Whether this asks to drop every window.
    pub fn is_all(&self) -> bool {
        self.flags & DMA_UNMAP_FLAG_ALL != 0
    }

    /// Parse. With [`DMA_UNMAP_FLAG_ALL`] the address and size must be 0
    /// (VFIO's rule: a range beside "all" is contradictory), else
    /// `Error::Invalid`.
    pub fn parse<T: AsRef<[u8]>>(view: &DmaUnmap<T>) -> Result<DmaUnmapRepr> {
        no_trailing(view.tail())?;
        let r = DmaUnmapRepr {
            argsz: view.argsz(),
            flags: view.flags(),
            address: view.address(),
            size: view.size(),
        };
        if r.is_all() && (r.address != 0 || r.size != 0) {
            return Err(Error::Invalid {
                field: "dma_unmap range with FLAG_ALL",
                value: if r.address != 0 { r.address } else { r.size },
            });
        }
        Ok(r)
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut DmaUnmap<T>) {
        view.set_argsz(self.argsz);
        view.set_flags(self.flags);
        view.set_address(self.address);
        view.set_size(self.size);
    }
}

/// A parsed DMA_READ/DMA_WRITE message. `data` is empty where the message
/// carries none (DMA_READ request, DMA_WRITE reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaAccessRepr<'a> {
    pub address: u64,
    pub count: u64,
    pub data: &'a [u8],
}

impl<'a> DmaAccessRepr<'a> {
    pub const LEN: usize = 16;

    /// Parse; `with_data` says whether `count` bytes of data must follow.
    /// Without data, a 12-byte payload (a 4-byte count, as the spec's
    /// DMA_WRITE reply table shows) is accepted too.
    pub fn parse(payload: &'a [u8], with_data: bool) -> Result<DmaAccessRepr<'a>> {
        if !with_data && payload.len() == 12 {
            let mut count = [0u8; 4];
            count.copy_from_slice(&payload[8..12]);
            let mut addr = [0u8; 8];
            addr.copy_from_slice(&payload[..8]);
            return Ok(DmaAccessRepr {
                address: u64::from_ne_bytes(addr),
                count: u32::from_ne_bytes(count).into(),
                data: &[],
            });
        }
        let view = DmaAccess::new_checked(payload)?;
        let count = view.count();
        bound("dma access bytes", count, MAX_DATA_XFER_SIZE.into())?;
        range_end(view.address(), count)?;
        let data = &payload[Self::LEN..];
        if with_data {
            if data.len() as u64 != count {
                return Err(Error::Invalid {
                    field: "dma access data length",
                    value: data.len() as u64,
                });
            }
        } else {
            no_trailing(data)?;
        }
        Ok(DmaAccessRepr {
            address: view.address(),
            count,
            data: if with_data { data } else { &[] },
        })
    }

    pub fn buffer_len(&self) -> usize {
        Self::LEN + self.data.len()
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut DmaAccess<T>) {
        view.set_address(self.address);
        view.set_count(self.count);
        view.tail_mut()[..self.data.len()].copy_from_slice(self.data);
    }
}

pub(crate) fn no_trailing(tail: &[u8]) -> Result<()> {
    if tail.is_empty() {
        Ok(())
    } else {
        Err(Error::Trailing(tail.len()))
    }
}

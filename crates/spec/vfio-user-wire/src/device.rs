//! DEVICE_GET_INFO, DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS and
//! DEVICE_GET_REGION_IO_FDS.

use crate::dma::no_trailing;
use crate::view::view;
use crate::{bound, range_end, Error, Result, MAX_AREAS, MAX_IRQS};

view!(
    /// DEVICE_GET_INFO request and reply.
    DeviceInfo, 16, {
        argsz / set_argsz: u32 @ 0,
        flags / set_flags: u32 @ 4,
        num_regions / set_num_regions: u32 @ 8,
        num_irqs / set_num_irqs: u32 @ 12,
    }
);

view!(
    /// DEVICE_GET_IRQ_INFO request and reply.
    IrqInfo, 16, {
        argsz / set_argsz: u32 @ 0,
        flags / set_flags: u32 @ 4,
        index / set_index: u32 @ 8,
        count / set_count: u32 @ 12,
    }
);

view!(
    /// DEVICE_SET_IRQS request (bool data may follow).
    IrqSet, 20, {
        argsz / set_argsz: u32 @ 0,
        flags / set_flags: u32 @ 4,
        index / set_index: u32 @ 8,
        start / set_start: u32 @ 12,
        count / set_count: u32 @ 16,
    }
);

view!(
    /// DEVICE_GET_REGION_IO_FDS request and reply (sub-regions follow).
    RegionIoFds, 16, {
        argsz / set_argsz: u32 @ 0,
        flags / set_flags: u32 @ 4,
        index / set_index: u32 @ 8,
        count / set_count: u32 @ 12,
    }
);

view!(
    /// One sub-region in a REGION_IO_FDS reply (ioeventfd or ioregionfd).
    SubRegionIoFd, 40, {
        offset / set_offset: u64 @ 0,
        size / set_size: u64 @ 8,
        fd_index / set_fd_index: u32 @ 16,
        kind / set_kind: u32 @ 20,
        flags / set_flags: u32 @ 24,
        padding / set_padding: u32 @ 28,
        data / set_data: u64 @ 32,
    }
);

/// Device flag: DEVICE_RESET is supported.
pub const DEVICE_FLAG_RESET: u32 = 1 << 0;
/// Device flag: a PCI device.
pub const DEVICE_FLAG_PCI: u32 = 1 << 1;

/// Most regions a device may report (PCI uses 9; device-specific ones add).
pub const MAX_REGIONS: u32 = 64;
/// Most interrupt types a device may report (PCI uses 5).
pub const MAX_IRQ_TYPES: u32 = 16;

/// PCI region indexes (as in `<linux/vfio.h>`).
pub const PCI_BAR0_REGION_INDEX: u32 = 0;
pub const PCI_ROM_REGION_INDEX: u32 = 6;
pub const PCI_CONFIG_REGION_INDEX: u32 = 7;
pub const PCI_VGA_REGION_INDEX: u32 = 8;
pub const PCI_NUM_REGIONS: u32 = 9;

/// PCI interrupt indexes (as in `<linux/vfio.h>`).
pub const PCI_INTX_IRQ_INDEX: u32 = 0;
pub const PCI_MSI_IRQ_INDEX: u32 = 1;
pub const PCI_MSIX_IRQ_INDEX: u32 = 2;
pub const PCI_ERR_IRQ_INDEX: u32 = 3;
pub const PCI_REQ_IRQ_INDEX: u32 = 4;
pub const PCI_NUM_IRQS: u32 = 5;

/// IRQ info flags.
pub const IRQ_INFO_EVENTFD: u32 = 1 << 0;
pub const IRQ_INFO_MASKABLE: u32 = 1 << 1;
pub const IRQ_INFO_AUTOMASKED: u32 = 1 << 2;
pub const IRQ_INFO_NORESIZE: u32 = 1 << 3;

/// SET_IRQS flag bits.
pub const IRQ_SET_DATA_NONE: u32 = 1 << 0;
pub const IRQ_SET_DATA_BOOL: u32 = 1 << 1;
pub const IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
pub const IRQ_SET_ACTION_MASK: u32 = 1 << 3;
pub const IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
pub const IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
const IRQ_SET_DATA_BITS: u32 = IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL | IRQ_SET_DATA_EVENTFD;
const IRQ_SET_ACTION_BITS: u32 =
    IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK | IRQ_SET_ACTION_TRIGGER;

/// Sub-region types in a REGION_IO_FDS reply.
pub const IO_FD_TYPE_IOEVENTFD: u32 = 0;
pub const IO_FD_TYPE_IOREGIONFD: u32 = 1;

/// A parsed DEVICE_GET_INFO request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfoRepr {
    pub argsz: u32,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
}

impl DeviceInfoRepr {
    pub const LEN: usize = 16;

    pub fn parse<T: AsRef<[u8]>>(view: &DeviceInfo<T>) -> Result<DeviceInfoRepr> {
        no_trailing(view.tail())?;
        bound("regions", view.num_regions().into(), MAX_REGIONS.into())?;
        bound("irq types", view.num_irqs().into(), MAX_IRQ_TYPES.into())?;
        Ok(DeviceInfoRepr {
            argsz: view.argsz(),
            flags: view.flags(),
            num_regions: view.num_regions(),
            num_irqs: view.num_irqs(),
        })
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut DeviceInfo<T>) {
        view.set_argsz(self.argsz);
        view.set_flags(self.flags);
        view.set_num_regions(self.num_regions);
        view.set_num_irqs(self.num_irqs);
    }
}

/// A parsed DEVICE_GET_IRQ_INFO request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqInfoRepr {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub count: u32,
}

impl IrqInfoRepr {
    pub const LEN: usize = 16;

    pub fn parse<T: AsRef<[u8]>>(view: &IrqInfo<T>) -> Result<IrqInfoRepr> {
        no_trailing(view.tail())?;
        bound("irqs", view.count().into(), MAX_IRQS.into())?;
        Ok(IrqInfoRepr {
            argsz: view.argsz(),
            flags: view.flags(),
            index: view.index(),
            count: view.count(),
        })
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut IrqInfo<T>) {
        view.set_argsz(self.argsz);
        view.set_flags(self.flags);
        view.set_index(self.index);
        view.set_count(self.count);
    }
}

/// What a SET_IRQS carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqData<'a> {
    /// Act on every interrupt in the range.
    None,
    /// Act on interrupt `start + i` where `flags[i] != 0`.
    Bool(&'a [u8]),
    /// Eventfds ride beside the message (`count` of them, or none to
    /// de-assign).
    Eventfd,
}

/// What a SET_IRQS does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqAction {
    Mask,
    Unmask,
    Trigger,
}

/// A parsed DEVICE_SET_IRQS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqSetRepr<'a> {
    pub action: IrqAction,
    pub data: IrqData<'a>,
    pub index: u32,
    pub start: u32,
    pub count: u32,
}

impl<'a> IrqSetRepr<'a> {
    pub const LEN: usize = 20;

    /// Parse and validate: exactly one data kind and one action, the range
    /// within [`MAX_IRQS`], bool data exactly `count` bytes.
    pub fn parse(view: &IrqSet<&'a [u8]>) -> Result<IrqSetRepr<'a>> {
        let flags = view.flags();
        let invalid = Error::Invalid {
            field: "set_irqs flags",
            value: flags.into(),
        };
        if flags & !(IRQ_SET_DATA_BITS | IRQ_SET_ACTION_BITS) != 0 {
            return Err(invalid);
        }
        let (index, start, count) = (view.index(), view.start(), view.count());
        bound("irqs", count.into(), MAX_IRQS.into())?;
        let end = range_end(start.into(), count.into())?;
        bound("irq range end", end, MAX_IRQS.into())?;
        let tail: &'a [u8] = &view.into_inner()[Self::LEN..];
        let data = match flags & IRQ_SET_DATA_BITS {
            IRQ_SET_DATA_NONE => {
                no_trailing(tail)?;
                IrqData::None
            }
            IRQ_SET_DATA_EVENTFD => {
                no_trailing(tail)?;
                IrqData::Eventfd
            }
            IRQ_SET_DATA_BOOL => {
                if tail.len() != count as usize {
                    return Err(Error::Invalid {
                        field: "set_irqs bool data length",
                        value: tail.len() as u64,
                    });
                }
                IrqData::Bool(tail)
            }
            _ => return Err(invalid),
        };
        let action = match flags & IRQ_SET_ACTION_BITS {
            IRQ_SET_ACTION_MASK => IrqAction::Mask,
            IRQ_SET_ACTION_UNMASK => IrqAction::Unmask,
            IRQ_SET_ACTION_TRIGGER => IrqAction::Trigger,
            _ => return Err(invalid),
        };
        Ok(IrqSetRepr {
            action,
            data,
            index,
            start,
            count,
        })
    }

    /// The raw flags word.
    pub fn flags(&self) -> u32 {
        let data = match self.data {
            IrqData::None => IRQ_SET_DATA_NONE,
            IrqData::Bool(_) => IRQ_SET_DATA_BOOL,
            IrqData::Eventfd => IRQ_SET_DATA_EVENTFD,
        };
        let action = match self.action {
            IrqAction::Mask => IRQ_SET_ACTION_MASK,
            IrqAction::Unmask => IRQ_SET_ACTION_UNMASK,
            IrqAction::Trigger => IRQ_SET_ACTION_TRIGGER,
        };
        data | action
    }

    pub fn buffer_len(&self) -> usize {
        match self.data {
            IrqData::Bool(b) => Self::LEN + b.len(),
            _ => Self::LEN,
        }
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut IrqSet<T>) {
        view.set_argsz(self.buffer_len() as u32);
        view.set_flags(self.flags());
        view.set_index(self.index);
        view.set_start(self.start);
        view.set_count(self.count);
        if let IrqData::Bool(b) = self.data {
            view.tail_mut()[..b.len()].copy_from_slice(b);
        }
    }
}

/// One sub-region of a REGION_IO_FDS reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRegionIoFdRepr {
    pub offset: u64,
    pub size: u64,
    pub fd_index: u32,
    /// [`IO_FD_TYPE_IOEVENTFD`] or [`IO_FD_TYPE_IOREGIONFD`].
    pub kind: u32,
    pub flags: u32,
    /// `datamatch` (ioeventfd) or `user_data` (ioregionfd).
    pub data: u64,
}

/// A parsed DEVICE_GET_REGION_IO_FDS request (no sub-regions) or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionIoFdsRepr {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    /// Number of sub-regions (in a reply it may exceed `subregions.len()`
    /// when `argsz` was too small for all of them: then none are included).
    pub count: u32,
    pub subregions: Vec<SubRegionIoFdRepr>,
}

impl RegionIoFdsRepr {
    pub const LEN: usize = 16;

    /// Parse; sub-regions must be absent or exactly `count` entries.
    pub fn parse<T: AsRef<[u8]>>(view: &RegionIoFds<T>) -> Result<RegionIoFdsRepr> {
        let count = view.count();
        bound("io fd sub-regions", count.into(), MAX_AREAS.into())?;
        let tail = view.tail();
        let mut subregions = Vec::new();
        if !tail.is_empty() {
            let entry = SubRegionIoFd::<&[u8]>::LEN;
            if tail.len() != count as usize * entry {
                return Err(Error::Invalid {
                    field: "io fd sub-region bytes",
                    value: tail.len() as u64,
                });
            }
            for chunk in tail.chunks_exact(entry) {
                let s = SubRegionIoFd::new_checked(chunk)?;
                subregions.push(SubRegionIoFdRepr {
                    offset: s.offset(),
                    size: s.size(),
                    fd_index: s.fd_index(),
                    kind: s.kind(),
                    flags: s.flags(),
                    data: s.data(),
                });
            }
        }
        Ok(RegionIoFdsRepr {
            argsz: view.argsz(),
            flags: view.flags(),
            index: view.index(),
            count,
            subregions,
        })
    }

    pub fn buffer_len(&self) -> usize {
        Self::LEN + self.subregions.len() * SubRegionIoFd::<&[u8]>::LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut RegionIoFds<T>) {
        view.set_argsz(self.argsz);
        view.set_flags(self.flags);
        view.set_index(self.index);
        view.set_count(self.count);
        let entry = SubRegionIoFd::<&[u8]>::LEN;
        for (s, chunk) in self
            .subregions
            .iter()
            .zip(view.tail_mut().chunks_exact_mut(entry))
        {
            let mut v = SubRegionIoFd::new_unchecked(chunk);
            v.set_offset(s.offset);
            v.set_size(s.size);
            v.set_fd_index(s.fd_index);
            v.set_kind(s.kind);
            v.set_flags(s.flags);
            v.set_padding(0);
            v.set_data(s.data);
        }
    }
}

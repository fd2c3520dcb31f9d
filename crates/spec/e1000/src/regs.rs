//! Register offsets in BAR 0 (memory-mapped, 128 KiB) and their bit layouts.
//!
//! All registers are 32 bits wide and little-endian. Only the registers a
//! simple single-queue driver needs are named here.

use crate::Error;
use bitflags::bitflags;

/// Device Control (read/write). CTRL.RST and CTRL.PHY_RST self-clear.
pub const CTRL: u32 = 0x0000;
/// Device Status (read-only; STATUS.PHYRA is cleared by writing 0 to it).
pub const STATUS: u32 = 0x0008;
/// EEPROM/Flash Control.
pub const EECD: u32 = 0x0010;
/// EEPROM Read: write an address with START, poll until DONE, take the data.
pub const EERD: u32 = 0x0014;
/// Extended Device Control.
pub const CTRL_EXT: u32 = 0x0018;
/// MDI (PHY) control.
pub const MDIC: u32 = 0x0020;
/// Interrupt Cause Read.
///
/// - Writing 1 to a bit clears that cause (**write-1-to-clear**): the
///   portable acknowledgement.
/// - Reading returns the causes and, per the datasheet, clears them
///   (**read-to-clear**) when INT_ASSERTED is set. QEMU's model clears on read
///   only when IMS is 0 or when CTRL_EXT.IAME is set, so a driver should
///   acknowledge by writing back what it read.
/// - With MSI-X, causes whose bit is set in EIAC are auto-cleared when their
///   vector fires, and (unless CTRL_EXT.IAME) the same bits are cleared from
///   IMS too: the driver must re-enable them by writing IMS after handling
///   each interrupt.
pub const ICR: u32 = 0x00C0;
/// Interrupt Throttling Rate (units of 256 ns between interrupts).
pub const ITR: u32 = 0x00C4;
/// Interrupt Cause Set: writing 1 raises the cause (for tests).
pub const ICS: u32 = 0x00C8;
/// Interrupt Mask Set/Read: writing 1 enables a cause; reading gives the mask.
pub const IMS: u32 = 0x00D0;
/// Interrupt Mask Clear: writing 1 disables a cause (write-1-to-clear on IMS).
pub const IMC: u32 = 0x00D8;
/// Extended Interrupt Auto Clear (82574 MSI-X): causes auto-cleared from ICR
/// (and IMS) when their MSI-X vector is sent.
pub const EIAC: u32 = 0x00DC;
/// Interrupt Acknowledge Auto Mask.
pub const IAM: u32 = 0x00E0;
/// Interrupt Vector Allocation Registers (82574 MSI-X), see [`Ivar`].
pub const IVAR: u32 = 0x00E4;
/// Extended Interrupt Throttle for MSI-X vector `n` (0..=4).
pub const fn eitr(n: u32) -> u32 {
    0x00E8 + 4 * n
}
/// Receive Control, see [`Rctl`].
pub const RCTL: u32 = 0x0100;
/// Transmit Control, see [`Tctl`].
pub const TCTL: u32 = 0x0400;
/// Transmit Inter Packet Gap.
pub const TIPG: u32 = 0x0410;
/// Receive descriptor ring base address, low 32 bits (16-byte aligned).
pub const RDBAL: u32 = 0x2800;
/// Receive descriptor ring base address, high 32 bits.
pub const RDBAH: u32 = 0x2804;
/// Receive descriptor ring length in bytes (a multiple of 128).
pub const RDLEN: u32 = 0x2808;
/// Receive Descriptor Head: the next descriptor the device fills (device-owned).
pub const RDH: u32 = 0x2810;
/// Receive Descriptor Tail: one past the last descriptor handed to the device.
pub const RDT: u32 = 0x2818;
/// Receive Delay Timer (0 = interrupt immediately).
pub const RDTR: u32 = 0x2820;
/// Receive Descriptor Control.
pub const RXDCTL: u32 = 0x2828;
/// Receive Interrupt Absolute Delay.
pub const RADV: u32 = 0x282C;
/// Transmit descriptor ring base address, low 32 bits (16-byte aligned).
pub const TDBAL: u32 = 0x3800;
/// Transmit descriptor ring base address, high 32 bits.
pub const TDBAH: u32 = 0x3804;
/// Transmit descriptor ring length in bytes (a multiple of 128).
pub const TDLEN: u32 = 0x3808;
/// Transmit Descriptor Head: the next descriptor the device sends (device-owned).
pub const TDH: u32 = 0x3810;
/// Transmit Descriptor Tail: one past the last descriptor queued by software.
pub const TDT: u32 = 0x3818;
/// Transmit Interrupt Delay Value.
pub const TIDV: u32 = 0x3820;
/// Transmit Descriptor Control.
pub const TXDCTL: u32 = 0x3828;
/// Transmit Absolute Interrupt Delay.
pub const TADV: u32 = 0x382C;
/// Transmit Arbitration Count 0 (bit 10 enables queue 0; set after reset).
pub const TARC0: u32 = 0x3840;
/// Receive Checksum Control.
pub const RXCSUM: u32 = 0x5000;
/// Receive Filter Control (RFCTL.EXSTEN selects extended RX descriptors).
pub const RFCTL: u32 = 0x5008;
/// Multicast Table Array: 128 registers, a 4096-bit hash filter.
pub const MTA: u32 = 0x5200;
/// Number of MTA registers.
pub const MTA_LEN: u32 = 128;
/// Receive Address Low for entry `n` (0..=15): MAC bytes 0..4.
pub const fn ral(n: u32) -> u32 {
    0x5400 + 8 * n
}
/// Receive Address High for entry `n`: MAC bytes 4..6 and Address Valid.
pub const fn rah(n: u32) -> u32 {
    0x5404 + 8 * n
}
/// RAH.AV: the receive address entry is valid (used by the filter).
pub const RAH_AV: u32 = 1 << 31;
/// TARC0 bit that enables transmit queue 0.
pub const TARC_ENABLE: u32 = 1 << 10;

bitflags! {
    /// Device Control (CTRL).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Ctrl: u32 {
        /// Full duplex.
        const FD = 1 << 0;
        /// GIO master disable: stop issuing DMA (poll STATUS.GIO_MASTER_ENABLE).
        const GIO_MASTER_DISABLE = 1 << 2;
        /// Auto-speed detection enable.
        const ASDE = 1 << 5;
        /// Set link up.
        const SLU = 1 << 6;
        /// Speed selection bits (with FRCSPD).
        const SPEED_MASK = 0b11 << 8;
        /// Force speed.
        const FRCSPD = 1 << 11;
        /// Force duplex.
        const FRCDPX = 1 << 12;
        /// Device reset (self-clearing). QEMU 7.2 only reloads the MAC address
        /// on it; a driver programs every register it uses afterwards anyway.
        const RST = 1 << 26;
        /// Receive flow control enable.
        const RFCE = 1 << 27;
        /// Transmit flow control enable.
        const TFCE = 1 << 28;
        /// VLAN mode enable.
        const VME = 1 << 30;
        /// PHY reset (self-clearing).
        const PHY_RST = 1 << 31;
        const _ = !0;
    }
}

bitflags! {
    /// Device Status (STATUS).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Status: u32 {
        /// Full duplex.
        const FD = 1 << 0;
        /// Link up.
        const LU = 1 << 1;
        /// Transmission paused (flow control).
        const TXOFF = 1 << 4;
        /// Speed bits 7:6 (see [`Status::speed_mbps`]).
        const SPEED_MASK = 0b11 << 6;
        /// PHY reset asserted.
        const PHYRA = 1 << 10;
        /// GIO master enable status: the device may still issue DMA.
        const GIO_MASTER_ENABLE = 1 << 19;
        const _ = !0;
    }
}

impl Status {
    /// Link speed in Mb/s from STATUS.SPEED.
    pub fn speed_mbps(self) -> u32 {
        match (self.bits() >> 6) & 0b11 {
            0b00 => 10,
            0b01 => 100,
            _ => 1000,
        }
    }
}

bitflags! {
    /// Extended Device Control (CTRL_EXT).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct CtrlExt: u32 {
        /// Extended interrupt auto-mask enable (MSI-X).
        const EIAME = 1 << 24;
        /// Interrupt acknowledge auto-mask enable.
        const IAME = 1 << 27;
        /// Driver loaded (tells firmware a driver owns the device).
        const DRV_LOAD = 1 << 28;
        /// Clear interrupt timers when IMS is written with all ones.
        const INT_TIMERS_CLEAR_ENA = 1 << 29;
        /// Clear the MSI-X pending bit when IMS is written.
        const PBA_CLR = 1 << 31;
        const _ = !0;
    }
}

bitflags! {
    /// Interrupt causes, shared by ICR, ICS, IMS, IMC, EIAC and IAM.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Interrupts: u32 {
        /// Transmit descriptor written back.
        const TXDW = 1 << 0;
        /// Transmit queue empty.
        const TXQE = 1 << 1;
        /// Link status change.
        const LSC = 1 << 2;
        /// Receive descriptor minimum threshold reached.
        const RXDMT0 = 1 << 4;
        /// Receiver overrun (no free descriptor for a frame).
        const RXO = 1 << 6;
        /// Receiver timer: a frame was written back.
        const RXT0 = 1 << 7;
        /// MDI access complete.
        const MDAC = 1 << 9;
        /// Transmit descriptor low threshold.
        const TXD_LOW = 1 << 15;
        /// Small receive packet detected.
        const SRPD = 1 << 16;
        /// Receive ACK frame detected.
        const ACK = 1 << 17;
        /// Manageability event.
        const MNG = 1 << 18;
        /// MSI-X: receive queue 0 (instead of RXT0 when MSI-X is enabled).
        const RXQ0 = 1 << 20;
        /// MSI-X: receive queue 1.
        const RXQ1 = 1 << 21;
        /// MSI-X: transmit queue 0 (instead of TXDW when MSI-X is enabled).
        const TXQ0 = 1 << 22;
        /// MSI-X: transmit queue 1.
        const TXQ1 = 1 << 23;
        /// MSI-X: any other cause (link, overrun, ...).
        const OTHER = 1 << 24;
        /// Some cause is asserted (ICR only, read-only).
        const INT_ASSERTED = 1 << 31;
        const _ = !0;
    }
}

impl Interrupts {
    /// Every cause a driver can mask (IMC with this masks all).
    pub const ALL: Interrupts = Interrupts::from_bits_retain(!(1 << 31));
}

bitflags! {
    /// Receive Control (RCTL).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Rctl: u32 {
        /// Receiver enable.
        const EN = 1 << 1;
        /// Store bad packets.
        const SBP = 1 << 2;
        /// Unicast promiscuous.
        const UPE = 1 << 3;
        /// Multicast promiscuous.
        const MPE = 1 << 4;
        /// Long packet enable (frames over 1522 bytes).
        const LPE = 1 << 5;
        /// Loopback mode bits.
        const LBM_MASK = 0b11 << 6;
        /// RX descriptor minimum threshold: 1/4 of the ring.
        const RDMTS_QUARTER = 0b01 << 8;
        /// Descriptor type bits (00 legacy/extended, 01 packet split).
        const DTYP_MASK = 0b11 << 10;
        /// Multicast offset bits (MTA hash selection, see [`crate::mta_hash`]).
        const MO_MASK = 0b11 << 12;
        /// Accept broadcast.
        const BAM = 1 << 15;
        /// Buffer size bits (see [`RxBufSize`]).
        const BSIZE_MASK = 0b11 << 16;
        /// VLAN filter enable.
        const VFE = 1 << 18;
        /// Discard pause frames.
        const DPF = 1 << 22;
        /// Pass MAC control frames.
        const PMCF = 1 << 23;
        /// Buffer size extension (multiplies BSIZE by 16).
        const BSEX = 1 << 25;
        /// Strip Ethernet CRC: without it, lengths include 4 bytes of FCS.
        const SECRC = 1 << 26;
        const _ = !0;
    }
}

/// Receive buffer sizes RCTL.BSIZE/BSEX can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RxBufSize {
    /// 256 bytes.
    B256,
    /// 512 bytes.
    B512,
    /// 1024 bytes.
    B1024,
    /// 2048 bytes (the reset value).
    B2048,
    /// 4096 bytes.
    B4096,
    /// 8192 bytes.
    B8192,
    /// 16384 bytes.
    B16384,
}

impl RxBufSize {
    /// The size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            RxBufSize::B256 => 256,
            RxBufSize::B512 => 512,
            RxBufSize::B1024 => 1024,
            RxBufSize::B2048 => 2048,
            RxBufSize::B4096 => 4096,
            RxBufSize::B8192 => 8192,
            RxBufSize::B16384 => 16384,
        }
    }

    /// The RCTL bits (BSIZE and BSEX) that select this size.
    pub fn rctl_bits(self) -> Rctl {
        let (bsize, bsex) = match self {
            RxBufSize::B2048 => (0b00, false),
            RxBufSize::B1024 => (0b01, false),
            RxBufSize::B512 => (0b10, false),
            RxBufSize::B256 => (0b11, false),
            RxBufSize::B16384 => (0b01, true),
            RxBufSize::B8192 => (0b10, true),
            RxBufSize::B4096 => (0b11, true),
        };
        let mut r = Rctl::from_bits_retain(bsize << 16);
        if bsex {
            r |= Rctl::BSEX;
        }
        r
    }

    /// The size RCTL selects, or `None` for the reserved BSEX + BSIZE=00.
    pub fn from_rctl(rctl: Rctl) -> Option<RxBufSize> {
        let bsize = (rctl.bits() >> 16) & 0b11;
        Some(match (bsize, rctl.contains(Rctl::BSEX)) {
            (0b00, false) => RxBufSize::B2048,
            (0b01, false) => RxBufSize::B1024,
            (0b10, false) => RxBufSize::B512,
            (0b11, false) => RxBufSize::B256,
            (0b01, true) => RxBufSize::B16384,
            (0b10, true) => RxBufSize::B8192,
            (0b11, true) => RxBufSize::B4096,
            _ => return None,
        })
    }
}

bitflags! {
    /// Transmit Control (TCTL).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Tctl: u32 {
        /// Transmitter enable.
        const EN = 1 << 1;
        /// Pad short packets to 64 bytes.
        const PSP = 1 << 3;
        /// Collision threshold bits 11:4.
        const CT_MASK = 0xFF << 4;
        /// Collision distance bits 21:12.
        const COLD_MASK = 0x3FF << 12;
        /// Re-transmit on late collision.
        const RTLC = 1 << 24;
        const _ = !0;
    }
}

impl Tctl {
    /// The usual full-duplex setting: enable, pad short packets, collision
    /// threshold 15, collision distance 63, retransmit on late collision.
    pub fn full_duplex_default() -> Tctl {
        Tctl::EN | Tctl::PSP | Tctl::RTLC | Tctl::from_bits_retain((0x0F << 4) | (0x3F << 12))
    }
}

/// EERD.START: begin a read of the word at the address field.
pub const EERD_START: u32 = 1 << 0;
/// EERD.DONE: the read finished and the data field is valid.
pub const EERD_DONE: u32 = 1 << 1;
/// EERD address field shift (82574: bits 15:2).
pub const EERD_ADDR_SHIFT: u32 = 2;
/// EERD data field shift (bits 31:16).
pub const EERD_DATA_SHIFT: u32 = 16;

/// The EERD value that starts a read of EEPROM word `word`.
pub fn eerd_start(word: u16) -> Result<u32, Error> {
    if word >= (1 << 14) {
        return Err(Error::BadEepromAddress(word));
    }
    Ok(EERD_START | (u32::from(word) << EERD_ADDR_SHIFT))
}

/// The data word of a completed EEPROM read, or `None` while DONE is clear.
pub fn eerd_data(eerd: u32) -> Option<u16> {
    if eerd & EERD_DONE == 0 {
        return None;
    }
    Some((eerd >> EERD_DATA_SHIFT) as u16)
}

/// The 82574's MSI-X vector count.
pub const MSIX_VECTORS: u8 = 5;

/// Interrupt Vector Allocation (IVAR): which MSI-X vector each queue's
/// cause is sent on. `None` leaves the entry invalid (no vector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ivar {
    /// Receive queue 0 (bits 2:0, valid bit 3).
    pub rxq0: Option<u8>,
    /// Receive queue 1 (bits 6:4, valid bit 7).
    pub rxq1: Option<u8>,
    /// Transmit queue 0 (bits 10:8, valid bit 11).
    pub txq0: Option<u8>,
    /// Transmit queue 1 (bits 14:12, valid bit 15).
    pub txq1: Option<u8>,
    /// Other causes (bits 18:16, valid bit 19).
    pub other: Option<u8>,
    /// Bit 31: raise a transmit interrupt on every descriptor write-back.
    pub tx_every_writeback: bool,
}

impl Ivar {
    const FIELDS: [u32; 5] = [0, 4, 8, 12, 16];

    /// Encode into the register value. Fails for a vector above 4.
    pub fn encode(&self) -> Result<u32, Error> {
        let mut v = 0u32;
        let entries = [self.rxq0, self.rxq1, self.txq0, self.txq1, self.other];
        for (shift, entry) in Self::FIELDS.iter().zip(entries) {
            if let Some(vec) = entry {
                if vec >= MSIX_VECTORS {
                    return Err(Error::BadVector(vec));
                }
                v |= (u32::from(vec) | 0b1000) << shift;
            }
        }
        if self.tx_every_writeback {
            v |= 1 << 31;
        }
        Ok(v)
    }

    /// Decode a register value (vector numbers are reported as written, even
    /// out-of-range ones, so a caller can spot them).
    pub fn decode(v: u32) -> Ivar {
        let field = |shift: u32| {
            let nib = (v >> shift) & 0xF;
            (nib & 0b1000 != 0).then_some((nib & 0b111) as u8)
        };
        Ivar {
            rxq0: field(0),
            rxq1: field(4),
            txq0: field(8),
            txq1: field(12),
            other: field(16),
            tx_every_writeback: v & (1 << 31) != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_datasheet_map() {
        assert_eq!(
            (ICR, IMS, IMC, EIAC, IAM, IVAR),
            (0xC0, 0xD0, 0xD8, 0xDC, 0xE0, 0xE4)
        );
        assert_eq!((eitr(0), eitr(4)), (0xE8, 0xF8));
        assert_eq!((ral(0), rah(0), ral(1)), (0x5400, 0x5404, 0x5408));
        assert_eq!(RDT - RDBAL, TDT - TDBAL);
    }

    #[test]
    fn eerd_round_trip_and_bounds() {
        assert_eq!(eerd_start(0).ok(), Some(1));
        assert_eq!(eerd_start(2).ok(), Some(1 | (2 << 2)));
        assert_eq!(eerd_start(1 << 14), Err(Error::BadEepromAddress(1 << 14)));
        assert_eq!(eerd_data(0x1234_0000), None);
        assert_eq!(eerd_data(0x5452_0002 | (3 << 2)), Some(0x5452));
    }

    #[test]
    fn ivar_like_linux_for_one_vector_each() {
        let ivar = Ivar {
            rxq0: Some(0),
            txq0: Some(1),
            other: Some(2),
            tx_every_writeback: true,
            ..Ivar::default()
        };
        assert_eq!(ivar.encode().ok(), Some(0x800A_0908));
        assert_eq!(Ivar::decode(0x800A_0908), ivar);
        let bad = Ivar {
            rxq1: Some(5),
            ..Ivar::default()
        };
        assert_eq!(bad.encode(), Err(Error::BadVector(5)));
    }

    #[test]
    fn rx_buffer_sizes_round_trip() {
        for s in [
            RxBufSize::B256,
            RxBufSize::B512,
            RxBufSize::B1024,
            RxBufSize::B2048,
            RxBufSize::B4096,
            RxBufSize::B8192,
            RxBufSize::B16384,
        ] {
            assert_eq!(RxBufSize::from_rctl(s.rctl_bits() | Rctl::EN), Some(s));
        }
        assert_eq!(RxBufSize::from_rctl(Rctl::BSEX), None);
        assert_eq!(RxBufSize::B2048.rctl_bits(), Rctl::empty());
    }

    #[test]
    fn status_speed() {
        assert_eq!(Status::from_bits_retain(0b10 << 6).speed_mbps(), 1000);
        assert_eq!(Status::from_bits_retain(0b01 << 6).speed_mbps(), 100);
        assert_eq!(Status::LU.speed_mbps(), 10);
        assert_eq!(Tctl::full_duplex_default().bits(), 0x0103_F0FA);
    }
}

//! Receive and transmit descriptors (16 bytes each, little-endian).
//!
//! Ownership protocol (both rings): software owns the descriptors from the
//! head register up to (not including) the tail register's complement; the
//! device processes descriptors from head towards tail and sets the DD
//! ("descriptor done") status bit when it writes one back. Software must
//! clear the status byte before handing a descriptor to the device again, so
//! a stale DD is never mistaken for a new completion.
//!
//! Receive descriptors have two formats, chosen by RFCTL.EXSTEN: the legacy
//! one ([`RxDesc`]) and the extended one ([`RxExtDesc`]), whose read format
//! (what software writes) and write-back format (what the device writes)
//! share the same 16 bytes. Transmit descriptors are modelled in the legacy
//! format only ([`TxDesc`]); context and extended data descriptors (DEXT set)
//! are rejected by [`TxDescRepr::parse`].

use crate::Error;
use bitflags::bitflags;

/// Size of every descriptor in bytes.
pub const DESC_LEN: usize = 16;

fn check(what: &'static str, got: usize) -> Result<(), Error> {
    if got < DESC_LEN {
        return Err(Error::Truncated {
            what,
            need: DESC_LEN,
            got,
        });
    }
    Ok(())
}

use le_field::{u16 as u16_at, u32 as u32_at, u64 as u64_at};

bitflags! {
    /// Receive status (legacy byte 12; low byte of the extended status).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct RxStatus: u8 {
        /// Descriptor done: the device wrote this descriptor back.
        const DD = 1 << 0;
        /// End of packet: the last descriptor of a frame.
        const EOP = 1 << 1;
        /// Ignore checksum indication.
        const IXSM = 1 << 2;
        /// The frame was 802.1Q tagged (tag in `special`).
        const VP = 1 << 3;
        /// UDP checksum calculated.
        const UDPCS = 1 << 4;
        /// TCP/UDP checksum calculated.
        const TCPCS = 1 << 5;
        /// IPv4 checksum calculated.
        const IPCS = 1 << 6;
        /// Passed in-exact filter.
        const PIF = 1 << 7;
    }
}

bitflags! {
    /// Receive errors (legacy byte 13; bits 31:24 of the extended status).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct RxErrors: u8 {
        /// CRC or alignment error.
        const CE = 1 << 0;
        /// Symbol error.
        const SE = 1 << 1;
        /// Sequence error.
        const SEQ = 1 << 2;
        /// Carrier extension error.
        const CXE = 1 << 4;
        /// TCP/UDP checksum error.
        const TCPE = 1 << 5;
        /// IPv4 checksum error.
        const IPE = 1 << 6;
        /// RX data error.
        const RXE = 1 << 7;
        const _ = !0;
    }
}

impl RxErrors {
    /// Errors that mean the frame itself is damaged (checksum-offload errors
    /// TCPE/IPE are left to the protocol stack).
    pub fn frame_damaged(self) -> bool {
        self.intersects(RxErrors::CE | RxErrors::SE | RxErrors::SEQ | RxErrors::CXE | RxErrors::RXE)
    }
}

/// A legacy receive descriptor:
///
/// | bytes | field |
/// |---|---|
/// | 0..8 | buffer address (IOVA), written by software |
/// | 8..10 | length of data written to the buffer |
/// | 10..12 | packet checksum |
/// | 12 | status ([`RxStatus`]) |
/// | 13 | errors ([`RxErrors`]) |
/// | 14..16 | special (VLAN tag) |
#[derive(Debug, Clone)]
pub struct RxDesc<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RxDesc<T> {
    /// Wrap without checking the length (accessors may panic).
    pub const fn new_unchecked(buffer: T) -> Self {
        RxDesc { buffer }
    }

    /// Wrap, checking the buffer holds a whole descriptor.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        check("legacy receive descriptor", buffer.as_ref().len())?;
        Ok(RxDesc { buffer })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Buffer address (IOVA).
    pub fn buffer_addr(&self) -> u64 {
        u64_at(self.buffer.as_ref(), 0)
    }
    /// Bytes written to the buffer (includes the FCS unless RCTL.SECRC).
    pub fn length(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 8)
    }
    /// Packet checksum.
    pub fn checksum(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 10)
    }
    /// Status bits.
    pub fn status(&self) -> RxStatus {
        RxStatus::from_bits_retain(self.buffer.as_ref()[12])
    }
    /// Error bits.
    pub fn errors(&self) -> RxErrors {
        RxErrors::from_bits_retain(self.buffer.as_ref()[13])
    }
    /// VLAN tag when [`RxStatus::VP`].
    pub fn special(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 14)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RxDesc<T> {
    /// Hand the descriptor to the device: the buffer address, every other
    /// field (status included) zeroed.
    pub fn prepare(&mut self, buffer_addr: u64) {
        let b = &mut self.buffer.as_mut()[..DESC_LEN];
        b.fill(0);
        b[0..8].copy_from_slice(&buffer_addr.to_le_bytes());
    }
    /// Set the buffer address.
    pub fn set_buffer_addr(&mut self, v: u64) {
        self.buffer.as_mut()[0..8].copy_from_slice(&v.to_le_bytes());
    }
    /// Set the length.
    pub fn set_length(&mut self, v: u16) {
        self.buffer.as_mut()[8..10].copy_from_slice(&v.to_le_bytes());
    }
    /// Set the checksum.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[10..12].copy_from_slice(&v.to_le_bytes());
    }
    /// Set the status byte.
    pub fn set_status(&mut self, v: RxStatus) {
        self.buffer.as_mut()[12] = v.bits();
    }
    /// Set the errors byte.
    pub fn set_errors(&mut self, v: RxErrors) {
        self.buffer.as_mut()[13] = v.bits();
    }
    /// Set the special field.
    pub fn set_special(&mut self, v: u16) {
        self.buffer.as_mut()[14..16].copy_from_slice(&v.to_le_bytes());
    }
}

/// A parsed legacy receive descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RxDescRepr {
    /// Buffer address (IOVA).
    pub buffer_addr: u64,
    /// Bytes written.
    pub length: u16,
    /// Packet checksum.
    pub checksum: u16,
    /// Status.
    pub status: RxStatus,
    /// Errors.
    pub errors: RxErrors,
    /// VLAN tag.
    pub special: u16,
}

impl RxDescRepr {
    /// Parse a descriptor (every bit pattern is a legacy receive descriptor).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(d: &RxDesc<&T>) -> Result<RxDescRepr, Error> {
        check("legacy receive descriptor", d.buffer.as_ref().len())?;
        Ok(RxDescRepr {
            buffer_addr: d.buffer_addr(),
            length: d.length(),
            checksum: d.checksum(),
            status: d.status(),
            errors: d.errors(),
            special: d.special(),
        })
    }

    /// Write into a descriptor.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, d: &mut RxDesc<T>) {
        d.set_buffer_addr(self.buffer_addr);
        d.set_length(self.length);
        d.set_checksum(self.checksum);
        d.set_status(self.status);
        d.set_errors(self.errors);
        d.set_special(self.special);
    }

    /// The device has written this descriptor back.
    pub fn is_done(&self) -> bool {
        self.status.contains(RxStatus::DD)
    }
}

/// An extended receive descriptor (RFCTL.EXSTEN), in both formats:
///
/// | bytes | read format (software) | write-back format (device) |
/// |---|---|---|
/// | 0..4 | buffer address low | MRQ: RSS type (3:0), queue |
/// | 4..8 | buffer address high | RSS hash, or IP id (4..6) + checksum (6..8) |
/// | 8..12 | reserved, must be 0 (DD lives here) | status (19:0) and errors (31:20) |
/// | 12..14 | reserved | length |
/// | 14..16 | reserved | VLAN tag |
#[derive(Debug, Clone)]
pub struct RxExtDesc<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RxExtDesc<T> {
    /// Wrap without checking the length.
    pub const fn new_unchecked(buffer: T) -> Self {
        RxExtDesc { buffer }
    }
    /// Wrap, checking the buffer holds a whole descriptor.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        check("extended receive descriptor", buffer.as_ref().len())?;
        Ok(RxExtDesc { buffer })
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Read format: the buffer address.
    pub fn buffer_addr(&self) -> u64 {
        u64_at(self.buffer.as_ref(), 0)
    }
    /// Write-back: multiple receive queues word (RSS type, queue).
    pub fn mrq(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 0)
    }
    /// Write-back: RSS hash, or IP identification and checksum.
    pub fn rss_or_csum(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 4)
    }
    /// Write-back: extended status (bits 19:0) and errors (bits 31:20).
    pub fn status_error(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 8)
    }
    /// Write-back: the low status byte, same bits as the legacy status.
    pub fn status(&self) -> RxStatus {
        RxStatus::from_bits_retain(self.status_error() as u8)
    }
    /// Write-back: the error byte (bits 31:24), same bits as the legacy errors.
    pub fn errors(&self) -> RxErrors {
        RxErrors::from_bits_retain((self.status_error() >> 24) as u8)
    }
    /// Write-back: bytes written.
    pub fn length(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 12)
    }
    /// Write-back: VLAN tag.
    pub fn vlan(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 14)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RxExtDesc<T> {
    /// Read format: hand a buffer to the device (upper 8 bytes zeroed so no
    /// stale DD remains).
    pub fn prepare(&mut self, buffer_addr: u64) {
        let b = &mut self.buffer.as_mut()[..DESC_LEN];
        b.fill(0);
        b[0..8].copy_from_slice(&buffer_addr.to_le_bytes());
    }
    fn put32(&mut self, at: usize, v: u32) {
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put16(&mut self, at: usize, v: u16) {
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
}

/// A parsed extended receive descriptor in write-back format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RxExtDescRepr {
    /// RSS type and queue.
    pub mrq: u32,
    /// RSS hash or IP id + checksum.
    pub rss_or_csum: u32,
    /// Status (19:0) and errors (31:20).
    pub status_error: u32,
    /// Bytes written.
    pub length: u16,
    /// VLAN tag.
    pub vlan: u16,
}

impl RxExtDescRepr {
    /// Parse a write-back descriptor.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(d: &RxExtDesc<&T>) -> Result<RxExtDescRepr, Error> {
        check("extended receive descriptor", d.buffer.as_ref().len())?;
        Ok(RxExtDescRepr {
            mrq: d.mrq(),
            rss_or_csum: d.rss_or_csum(),
            status_error: d.status_error(),
            length: d.length(),
            vlan: d.vlan(),
        })
    }
    /// Write into a descriptor (as the device would).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, d: &mut RxExtDesc<T>) {
        d.put32(0, self.mrq);
        d.put32(4, self.rss_or_csum);
        d.put32(8, self.status_error);
        d.put16(12, self.length);
        d.put16(14, self.vlan);
    }
    /// Status bits (the legacy-compatible low byte).
    pub fn status(&self) -> RxStatus {
        RxStatus::from_bits_retain(self.status_error as u8)
    }
    /// Error bits (31:24).
    pub fn errors(&self) -> RxErrors {
        RxErrors::from_bits_retain((self.status_error >> 24) as u8)
    }
}

bitflags! {
    /// Legacy transmit command byte (byte 11).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct TxCmd: u8 {
        /// End of packet: the last descriptor of a frame.
        const EOP = 1 << 0;
        /// Insert FCS (the Ethernet CRC).
        const IFCS = 1 << 1;
        /// Insert checksum at CSO, computed from CSS.
        const IC = 1 << 2;
        /// Report status: write DD back when done.
        const RS = 1 << 3;
        /// Extension: not a legacy descriptor.
        const DEXT = 1 << 5;
        /// Insert the VLAN tag from `special`.
        const VLE = 1 << 6;
        /// Interrupt delay enable (TIDV/TADV apply).
        const IDE = 1 << 7;
        const _ = !0;
    }
}

bitflags! {
    /// Legacy transmit status byte (byte 12; bits 7:4 reserved).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct TxStatus: u8 {
        /// Descriptor done (written back when RS was set).
        const DD = 1 << 0;
        /// Excess collisions.
        const EC = 1 << 1;
        /// Late collision.
        const LC = 1 << 2;
        /// Transmit underrun.
        const TU = 1 << 3;
        const _ = !0;
    }
}

/// A legacy transmit descriptor:
///
/// | bytes | field |
/// |---|---|
/// | 0..8 | buffer address (IOVA) |
/// | 8..10 | length of this fragment |
/// | 10 | CSO: checksum offset |
/// | 11 | command ([`TxCmd`]) |
/// | 12 | status ([`TxStatus`]) |
/// | 13 | CSS: checksum start |
/// | 14..16 | special (VLAN tag) |
#[derive(Debug, Clone)]
pub struct TxDesc<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TxDesc<T> {
    /// Wrap without checking the length.
    pub const fn new_unchecked(buffer: T) -> Self {
        TxDesc { buffer }
    }
    /// Wrap, checking the buffer holds a whole descriptor.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        check("transmit descriptor", buffer.as_ref().len())?;
        Ok(TxDesc { buffer })
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Buffer address.
    pub fn buffer_addr(&self) -> u64 {
        u64_at(self.buffer.as_ref(), 0)
    }
    /// Fragment length.
    pub fn length(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 8)
    }
    /// Checksum offset.
    pub fn cso(&self) -> u8 {
        self.buffer.as_ref()[10]
    }
    /// Command.
    pub fn cmd(&self) -> TxCmd {
        TxCmd::from_bits_retain(self.buffer.as_ref()[11])
    }
    /// Status.
    pub fn status(&self) -> TxStatus {
        TxStatus::from_bits_retain(self.buffer.as_ref()[12])
    }
    /// Checksum start.
    pub fn css(&self) -> u8 {
        self.buffer.as_ref()[13]
    }
    /// VLAN tag.
    pub fn special(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 14)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TxDesc<T> {
    /// Set the buffer address.
    pub fn set_buffer_addr(&mut self, v: u64) {
        self.buffer.as_mut()[0..8].copy_from_slice(&v.to_le_bytes());
    }
    /// Set the fragment length.
    pub fn set_length(&mut self, v: u16) {
        self.buffer.as_mut()[8..10].copy_from_slice(&v.to_le_bytes());
    }
    /// Set the checksum offset.
    pub fn set_cso(&mut self, v: u8) {
        self.buffer.as_mut()[10] = v;
    }
    /// Set the command.
    pub fn set_cmd(&mut self, v: TxCmd) {
        self.buffer.as_mut()[11] = v.bits();
    }
    /// Set the status.
    pub fn set_status(&mut self, v: TxStatus) {
        self.buffer.as_mut()[12] = v.bits();
    }
    /// Set the checksum start.
    pub fn set_css(&mut self, v: u8) {
        self.buffer.as_mut()[13] = v;
    }
    /// Set the VLAN tag.
    pub fn set_special(&mut self, v: u16) {
        self.buffer.as_mut()[14..16].copy_from_slice(&v.to_le_bytes());
    }
}

/// A parsed legacy transmit descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxDescRepr {
    /// Buffer address (IOVA).
    pub buffer_addr: u64,
    /// Fragment length.
    pub length: u16,
    /// Checksum offset.
    pub cso: u8,
    /// Command.
    pub cmd: TxCmd,
    /// Status.
    pub status: TxStatus,
    /// Checksum start.
    pub css: u8,
    /// VLAN tag.
    pub special: u16,
}

impl TxDescRepr {
    /// A whole frame in one buffer: EOP, insert FCS, report status.
    pub fn single_frame(buffer_addr: u64, length: u16) -> TxDescRepr {
        TxDescRepr {
            buffer_addr,
            length,
            cso: 0,
            cmd: TxCmd::EOP | TxCmd::IFCS | TxCmd::RS,
            status: TxStatus::empty(),
            css: 0,
            special: 0,
        }
    }

    /// Parse a legacy transmit descriptor; DEXT descriptors are refused.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(d: &TxDesc<&T>) -> Result<TxDescRepr, Error> {
        check("transmit descriptor", d.buffer.as_ref().len())?;
        if d.cmd().contains(TxCmd::DEXT) {
            return Err(Error::NotLegacy);
        }
        Ok(TxDescRepr {
            buffer_addr: d.buffer_addr(),
            length: d.length(),
            cso: d.cso(),
            cmd: d.cmd(),
            status: d.status(),
            css: d.css(),
            special: d.special(),
        })
    }

    /// Write into a descriptor.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, d: &mut TxDesc<T>) {
        d.set_buffer_addr(self.buffer_addr);
        d.set_length(self.length);
        d.set_cso(self.cso);
        d.set_cmd(self.cmd);
        d.set_status(self.status);
        d.set_css(self.css);
        d.set_special(self.special);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_are_refused() {
        let b = [0u8; 15];
        assert!(matches!(
            RxDesc::new_checked(&b[..]),
            Err(Error::Truncated {
                need: 16,
                got: 15,
                ..
            })
        ));
        assert!(RxExtDesc::new_checked(&b[..]).is_err());
        assert!(TxDesc::new_checked(&b[..]).is_err());
        assert!(RxDescRepr::parse(&RxDesc::new_unchecked(&b[..])).is_err());
    }

    #[test]
    fn legacy_rx_writeback_as_qemu_writes_it() {
        // A 60-byte frame, DD|EOP, no errors, at buffer 0x1000_0000.
        let mut b = [0u8; 16];
        RxDesc::new_unchecked(&mut b[..]).prepare(0x1000_0000);
        assert_eq!(b[12], 0, "prepare clears status");
        b[8] = 60;
        b[12] = 0x03;
        let d = RxDesc::new_checked(&b[..]).expect("16 bytes");
        let r = RxDescRepr::parse(&d).expect("legacy");
        assert!(r.is_done());
        assert_eq!((r.buffer_addr, r.length), (0x1000_0000, 60));
        assert!(r.status.contains(RxStatus::EOP));
        assert!(!r.errors.frame_damaged());
        assert!(RxErrors::CE.frame_damaged() && !RxErrors::TCPE.frame_damaged());
    }

    #[test]
    fn tx_single_frame_bytes() {
        let mut b = [0xAAu8; 16];
        TxDescRepr::single_frame(0x2000, 42).emit(&mut TxDesc::new_unchecked(&mut b[..]));
        assert_eq!(b, [0, 0x20, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0x0B, 0, 0, 0, 0]);
        b[11] |= TxCmd::DEXT.bits();
        assert_eq!(
            TxDescRepr::parse(&TxDesc::new_unchecked(&b[..])),
            Err(Error::NotLegacy)
        );
    }

    #[test]
    fn extended_rx_status_and_errors() {
        let mut b = [0u8; 16];
        RxExtDesc::new_unchecked(&mut b[..]).prepare(0xdead_beef_0000);
        assert_eq!(
            RxExtDesc::new_unchecked(&b[..]).buffer_addr(),
            0xdead_beef_0000
        );
        assert_eq!(RxExtDesc::new_unchecked(&b[..]).status_error(), 0);
        let wb = RxExtDescRepr {
            mrq: 0,
            rss_or_csum: 0,
            status_error: 0x4000_0003,
            length: 98,
            vlan: 0,
        };
        wb.emit(&mut RxExtDesc::new_unchecked(&mut b[..]));
        let back = RxExtDescRepr::parse(&RxExtDesc::new_unchecked(&b[..])).expect("16 bytes");
        assert_eq!(back, wb);
        assert_eq!(back.status(), RxStatus::DD | RxStatus::EOP);
        assert_eq!(back.errors(), RxErrors::IPE);
    }
}

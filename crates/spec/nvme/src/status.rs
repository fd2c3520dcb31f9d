//! Completion status field: status code type, status code, and their names.

use serde::Serialize;

/// Status Code Type (SCT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StatusCodeType {
    /// Generic command status.
    Generic,
    /// Command specific status.
    CommandSpecific,
    /// Media and data integrity errors.
    MediaError,
    /// Path related status.
    PathRelated,
    /// Reserved types 4..=6.
    Reserved(u8),
    /// Vendor specific.
    VendorSpecific,
}

impl StatusCodeType {
    /// From the 3-bit field.
    pub fn from_bits(v: u8) -> StatusCodeType {
        match v & 7 {
            0 => StatusCodeType::Generic,
            1 => StatusCodeType::CommandSpecific,
            2 => StatusCodeType::MediaError,
            3 => StatusCodeType::PathRelated,
            7 => StatusCodeType::VendorSpecific,
            r => StatusCodeType::Reserved(r),
        }
    }
    /// The 3-bit field.
    pub fn bits(self) -> u8 {
        match self {
            StatusCodeType::Generic => 0,
            StatusCodeType::CommandSpecific => 1,
            StatusCodeType::MediaError => 2,
            StatusCodeType::PathRelated => 3,
            StatusCodeType::Reserved(r) => r & 7,
            StatusCodeType::VendorSpecific => 7,
        }
    }
}

/// The 15-bit status field of a completion (without the phase tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Status code type.
    pub sct: StatusCodeType,
    /// Status code.
    pub code: u8,
    /// Command retry delay index (CRD).
    pub retry_delay: u8,
    /// More information in the error log.
    pub more: bool,
    /// Do not retry: the same command will fail again.
    pub do_not_retry: bool,
}

impl Default for Status {
    fn default() -> Self {
        Status::from_field(0)
    }
}

impl Status {
    /// From the status field shifted down by one (bit 0 = SC bit 0).
    pub fn from_field(f: u16) -> Status {
        Status {
            code: f as u8,
            sct: StatusCodeType::from_bits(((f >> 8) & 7) as u8),
            retry_delay: ((f >> 11) & 3) as u8,
            more: f & (1 << 13) != 0,
            do_not_retry: f & (1 << 14) != 0,
        }
    }
    /// Back to the field (shifted down by one).
    pub fn to_field(self) -> u16 {
        self.code as u16
            | ((self.sct.bits() as u16) << 8)
            | ((self.retry_delay as u16 & 3) << 11)
            | ((self.more as u16) << 13)
            | ((self.do_not_retry as u16) << 14)
    }
    /// Whether the command succeeded.
    pub fn is_success(self) -> bool {
        self.sct == StatusCodeType::Generic && self.code == 0
    }
    /// The specification's name for this status.
    pub fn name(self) -> &'static str {
        status_name(self.sct, self.code)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (sct {:#x}, sc {:#04x}{})",
            self.name(),
            self.sct.bits(),
            self.code,
            if self.do_not_retry { ", dnr" } else { "" }
        )
    }
}

/// The name the specification gives status `code` of type `sct`.
pub fn status_name(sct: StatusCodeType, code: u8) -> &'static str {
    use StatusCodeType::*;
    match (sct, code) {
        (Generic, 0x00) => "Successful Completion",
        (Generic, 0x01) => "Invalid Command Opcode",
        (Generic, 0x02) => "Invalid Field in Command",
        (Generic, 0x03) => "Command ID Conflict",
        (Generic, 0x04) => "Data Transfer Error",
        (Generic, 0x05) => "Commands Aborted due to Power Loss Notification",
        (Generic, 0x06) => "Internal Error",
        (Generic, 0x07) => "Command Abort Requested",
        (Generic, 0x08) => "Command Aborted due to SQ Deletion",
        (Generic, 0x09) => "Command Aborted due to Failed Fused Command",
        (Generic, 0x0a) => "Command Aborted due to Missing Fused Command",
        (Generic, 0x0b) => "Invalid Namespace or Format",
        (Generic, 0x0c) => "Command Sequence Error",
        (Generic, 0x0d) => "Invalid SGL Segment Descriptor",
        (Generic, 0x0e) => "Invalid Number of SGL Descriptors",
        (Generic, 0x0f) => "Data SGL Length Invalid",
        (Generic, 0x10) => "Metadata SGL Length Invalid",
        (Generic, 0x11) => "SGL Descriptor Type Invalid",
        (Generic, 0x12) => "Invalid Use of Controller Memory Buffer",
        (Generic, 0x13) => "PRP Offset Invalid",
        (Generic, 0x14) => "Atomic Write Unit Exceeded",
        (Generic, 0x15) => "Operation Denied",
        (Generic, 0x16) => "SGL Offset Invalid",
        (Generic, 0x18) => "Host Identifier Inconsistent Format",
        (Generic, 0x19) => "Keep Alive Timer Expired",
        (Generic, 0x1a) => "Keep Alive Timeout Invalid",
        (Generic, 0x1b) => "Command Aborted due to Preempt and Abort",
        (Generic, 0x1c) => "Sanitize Failed",
        (Generic, 0x1d) => "Sanitize In Progress",
        (Generic, 0x1e) => "SGL Data Block Granularity Invalid",
        (Generic, 0x1f) => "Command Not Supported for Queue in CMB",
        (Generic, 0x20) => "Namespace is Write Protected",
        (Generic, 0x21) => "Command Interrupted",
        (Generic, 0x22) => "Transient Transport Error",
        (Generic, 0x80) => "LBA Out of Range",
        (Generic, 0x81) => "Capacity Exceeded",
        (Generic, 0x82) => "Namespace Not Ready",
        (Generic, 0x83) => "Reservation Conflict",
        (Generic, 0x84) => "Format In Progress",
        (CommandSpecific, 0x00) => "Completion Queue Invalid",
        (CommandSpecific, 0x01) => "Invalid Queue Identifier",
        (CommandSpecific, 0x02) => "Invalid Queue Size",
        (CommandSpecific, 0x03) => "Abort Command Limit Exceeded",
        (CommandSpecific, 0x05) => "Asynchronous Event Request Limit Exceeded",
        (CommandSpecific, 0x06) => "Invalid Firmware Slot",
        (CommandSpecific, 0x07) => "Invalid Firmware Image",
        (CommandSpecific, 0x08) => "Invalid Interrupt Vector",
        (CommandSpecific, 0x09) => "Invalid Log Page",
        (CommandSpecific, 0x0a) => "Invalid Format",
        (CommandSpecific, 0x0b) => "Firmware Activation Requires Conventional Reset",
        (CommandSpecific, 0x0c) => "Invalid Queue Deletion",
        (CommandSpecific, 0x0d) => "Feature Identifier Not Saveable",
        (CommandSpecific, 0x0e) => "Feature Not Changeable",
        (CommandSpecific, 0x0f) => "Feature Not Namespace Specific",
        (CommandSpecific, 0x80) => "Conflicting Attributes",
        (CommandSpecific, 0x81) => "Invalid Protection Information",
        (CommandSpecific, 0x82) => "Attempted Write to Read Only Range",
        (MediaError, 0x80) => "Write Fault",
        (MediaError, 0x81) => "Unrecovered Read Error",
        (MediaError, 0x82) => "End-to-end Guard Check Error",
        (MediaError, 0x83) => "End-to-end Application Tag Check Error",
        (MediaError, 0x84) => "End-to-end Reference Tag Check Error",
        (MediaError, 0x85) => "Compare Failure",
        (MediaError, 0x86) => "Access Denied",
        (MediaError, 0x87) => "Deallocated or Unwritten Logical Block",
        (PathRelated, 0x00) => "Internal Path Error",
        (PathRelated, 0x01) => "Asymmetric Access Persistent Loss",
        (PathRelated, 0x02) => "Asymmetric Access Inaccessible",
        (PathRelated, 0x03) => "Asymmetric Access Transition",
        (VendorSpecific, _) => "Vendor Specific Status",
        _ => "Reserved Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        assert!(Status::from_field(0).is_success());
        let s = Status::from_field(0x4002);
        assert_eq!(s.name(), "Invalid Field in Command");
        assert_eq!(
            s.to_string(),
            "Invalid Field in Command (sct 0x0, sc 0x02, dnr)"
        );
        assert_eq!(
            Status::from_field(0x0101).name(),
            "Invalid Queue Identifier"
        );
        assert_eq!(Status::from_field(0x0281).name(), "Unrecovered Read Error");
        assert_eq!(Status::from_field(0x0042).name(), "Reserved Status");
    }

    proptest! {
        #[test]
        fn field_round_trip(f in 0u16..0x8000) {
            prop_assert_eq!(Status::from_field(f).to_field(), f);
        }
    }
}

//! NVMe (NVM Express 1.4 base + NVM command set) as a spec crate: no I/O, no `unsafe`.
//!
//! Only the structures the pcibox driver uses are defined:
//! - [`regs`]: controller registers (CAP, VS, CC, CSTS, AQA, ASQ, ACQ) and doorbell offsets;
//! - [`command`]: the 64-byte submission queue entry and the admin / NVM commands we issue;
//! - [`completion`]: the 16-byte completion queue entry;
//! - [`status`]: status codes with their names from the specification;
//! - [`identify`]: IDENTIFY controller and namespace data structures.
//!
//! Buffers that come from a device (or a fuzzer) are read through `new_checked` views, then
//! parsed into plain `Repr`-style structs; structs the host builds are emitted into buffers.
#![forbid(unsafe_code)]

pub mod command;
pub mod completion;
pub mod fuzzing;
pub mod identify;
pub mod regs;
pub mod status;

pub use command::{AdminOpcode, Command, NvmOpcode, SubmissionEntry, SQE_SIZE};
pub use completion::{Completion, CompletionEntry, CQE_SIZE};
pub use identify::{IdentifyController, IdentifyData, IdentifyNamespace, LbaFormat, IDENTIFY_SIZE};
pub use status::{Status, StatusCodeType};

/// Errors of the checked views and parsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the structure it should hold.
    #[error("buffer too short: {len} bytes, {structure} needs {need}")]
    Truncated {
        /// Which structure was being read.
        structure: &'static str,
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A field holds a value the specification does not allow.
    #[error("{structure}: invalid {field}: {value:#x}")]
    Invalid {
        /// Which structure was being read.
        structure: &'static str,
        /// Which field.
        field: &'static str,
        /// The offending value.
        value: u64,
    },
}

/// Checks `buf` holds at least `need` bytes.
pub(crate) fn check_len(structure: &'static str, buf: &[u8], need: usize) -> Result<(), Error> {
    if buf.len() < need {
        Err(Error::Truncated {
            structure,
            len: buf.len(),
            need,
        })
    } else {
        Ok(())
    }
}

/// Little-endian field access (the spec crates' one set of helpers).
pub(crate) use le_field as le;

/// Extracts bits `lo..=hi` of `v`.
pub(crate) const fn bits(v: u64, lo: u32, hi: u32) -> u64 {
    (v >> lo) & ((1u64 << (hi - lo + 1)) - 1)
}

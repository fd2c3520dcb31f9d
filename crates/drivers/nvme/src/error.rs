//! The driver's error type: every failure names the command (and the device's status) or the
//! argument that was refused.

use nvme_spec::Status;
use std::time::Duration;

/// Everything the NVMe driver can report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kit operation (register access, DMA, interrupts) failed.
    #[error(transparent)]
    Kit(#[from] pcibox_kit::Error),
    /// The device completed a command with an error status.
    #[error("{command} (queue {qid}, cid {cid}): {status}")]
    Status {
        /// The command's name, e.g. `READ`.
        command: &'static str,
        /// Submission queue.
        qid: u16,
        /// Command identifier.
        cid: u16,
        /// The status the device returned.
        status: Status,
    },
    /// A command did not complete in time.
    #[error("{command} (queue {qid}, cid {cid}): no completion after {after:?}")]
    Timeout {
        /// The command's name.
        command: &'static str,
        /// Submission queue.
        qid: u16,
        /// Command identifier.
        cid: u16,
        /// How long the driver waited.
        after: Duration,
    },
    /// CSTS.RDY did not follow CC.EN within CAP.TO.
    #[error("controller did not become {state} within CAP.TO = {timeout:?} (CSTS {csts:#x})")]
    ReadyTimeout {
        /// `ready` or `disabled`.
        state: &'static str,
        /// The CAP.TO timeout.
        timeout: Duration,
        /// The last CSTS value.
        csts: u32,
    },
    /// CSTS.CFS: the controller reports a fatal error.
    #[error("controller fatal status (CSTS {csts:#x})")]
    Fatal {
        /// The CSTS value.
        csts: u32,
    },
    /// Registers read all ones: the device is gone or its memory space is off.
    #[error("device does not respond (register {register} reads all ones)")]
    Gone {
        /// Which register.
        register: &'static str,
    },
    /// The controller cannot be driven the way this driver drives it.
    #[error("unsupported controller: {0}")]
    Unsupported(String),
    /// The device returned a malformed structure or a completion for no command.
    #[error("device protocol error: {0}")]
    Protocol(String),
    /// IDENTIFY data that does not parse.
    #[error("IDENTIFY data does not parse")]
    Identify(#[from] nvme_spec::Error),
    /// The namespace has no such blocks.
    #[error("LBA range {lba}+{count} is past the end of namespace {nsid} ({capacity} blocks)")]
    OutOfRange {
        /// Namespace.
        nsid: u32,
        /// First block requested.
        lba: u64,
        /// Blocks requested.
        count: u64,
        /// Blocks in the namespace.
        capacity: u64,
    },
    /// A transfer of zero blocks (NVMe cannot express one).
    #[error("zero-length transfer: NVMe commands move at least one block")]
    ZeroLength,
    /// A buffer that cannot be described with PRPs or does not hold whole blocks.
    #[error("unaligned buffer: {0}")]
    Unaligned(String),
    /// A buffer too small for the transfer.
    #[error("buffer of {len} bytes cannot hold {need} bytes at offset {offset}")]
    BufferTooSmall {
        /// Buffer length.
        len: usize,
        /// Offset of the transfer in the buffer.
        offset: usize,
        /// Bytes the transfer moves.
        need: usize,
    },
    /// One command cannot move this much.
    #[error("transfer of {bytes} bytes exceeds the {max}-byte limit of one command")]
    TooLarge {
        /// Bytes requested.
        bytes: usize,
        /// The controller's (and PRP list's) limit.
        max: usize,
    },
    /// No I/O queue to use: the controller was opened with none, or every one is taken as a
    /// handle.
    #[error("no I/O queues (none created, or all taken as handles)")]
    NoIoQueues,
    /// The controller was shut down: its queue handles can do nothing more.
    #[error("the controller is shut down")]
    Closed,
    /// A queue handle given to a controller it does not belong to.
    #[error("I/O queue {qid} belongs to another controller")]
    ForeignQueue {
        /// The handle's queue ID.
        qid: u16,
    },
    /// No active namespace.
    #[error("the controller has no active namespace")]
    NoNamespace,
}

/// The driver's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The driver's error type.

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kit (config, region, interrupt or DMA access) failed.
    #[error(transparent)]
    Kit(#[from] pcibox_kit::Error),
    /// The device is not an 82574L.
    #[error("{name} is not an Intel 82574L (e1000e): vendor {vendor:04x}, device {device:04x}")]
    NotE1000e {
        /// The kit's name for the device.
        name: String,
        /// PCI vendor ID found.
        vendor: u16,
        /// PCI device ID found.
        device: u16,
    },
    /// The device did not do something in time.
    #[error("{what}: no answer after {ms} ms")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long.
        ms: u64,
    },
    /// The link is down (cable unplugged, or QEMU's `set_link … off`).
    #[error("link is down (waited {ms} ms for it)")]
    LinkDown {
        /// How long the driver waited for the link.
        ms: u64,
    },
    /// Neither RAL0/RAH0 nor the EEPROM gave a usable station address.
    #[error("no valid MAC address in RAL0/RAH0 or the EEPROM")]
    NoMac,
    /// A frame is empty or larger than a transmit buffer.
    #[error("frame of {len} bytes: must be 1..={max} bytes")]
    FrameSize {
        /// Frame length given.
        len: usize,
        /// Largest frame a buffer holds.
        max: usize,
    },
    /// A ring length the hardware cannot take.
    #[error("ring of {0} descriptors: must be a multiple of 8 from 8 to 4096")]
    RingLength(u32),
    /// The requested interrupt mode is not available.
    #[error("{0}")]
    IrqMode(String),
    /// A spec-level encoding failed.
    #[error(transparent)]
    Spec(#[from] e1000_spec::Error),
    /// A network-stack operation failed (DHCP, ping).
    #[error("{0}")]
    Net(String),
    /// A network-stack or host operation failed with an error of its own.
    #[error("{what} failed")]
    NetOp {
        /// The operation, e.g. `ICMP send`.
        what: String,
        /// The stack's (or the OS's) error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The driver's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A failed network-stack or host operation, keeping its error as the
    /// `source()`.
    pub(crate) fn net_op(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::NetOp {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

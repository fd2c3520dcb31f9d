//! What can go wrong reading (or writing) sysfs. Each error names the
//! function or file; the OS error, if any, is only its `source()`.

use pci::Address;
use std::path::PathBuf;

/// A sysfs failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such PCI function in the tree.
    #[error("{addr}: no such PCI device")]
    NoDevice {
        /// The function.
        addr: Address,
    },
    /// Reading or writing a file of a function failed.
    #[error("{addr}: {op} {} failed", path.display())]
    Io {
        /// The function.
        addr: Address,
        /// The operation: `read`, `readlink`, `write`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An attribute that should be a hex number is not.
    #[error("{}: {text:?} is not hex", path.display())]
    NotHex {
        /// The file.
        path: PathBuf,
        /// What it holds (trimmed).
        text: String,
    },
    /// A directory of the tree cannot be listed.
    #[error("cannot list {}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! One module per subcommand.

pub mod claim;
pub mod completions;
pub mod lspci;
pub mod net;
pub mod nvme;
pub mod release;
pub mod serve_device;
pub mod xenstored;

/// The error type subcommands return to `main`.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

//! One module per subcommand.

pub mod claim;
pub mod completions;
pub mod lspci;
pub mod net;
pub mod nvme;
pub mod release;
pub mod serve_device;
pub mod xenstored;

use std::fmt;

/// The error type subcommands return to `main`.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A step of a subcommand that failed: its message names the step (a device,
/// a file, an operation) and the error that made it fail is its `source()`,
/// so `main` prints each cause once and callers can still reach its type.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Failed {
    what: String,
    #[source]
    source: Error,
}

/// `.context(what)` on a result: wraps its error in [`Failed`].
pub trait Context<T> {
    /// `what` is formatted only if the result is an error.
    fn context(self, what: impl fmt::Display) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|e| {
            Box::new(Failed {
                what: what.to_string(),
                source: e.into(),
            }) as Error
        })
    }
}

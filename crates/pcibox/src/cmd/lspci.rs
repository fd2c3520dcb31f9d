//! `pcibox lspci`: a pciutils-compatible device listing.

use std::process::ExitCode;

/// Arguments of `pcibox lspci`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the listing.
pub fn run(_args: Args) -> Result<ExitCode, super::Error> {
    Err("lspci is not implemented yet".into())
}

//! `pcibox release BDF`: give a claimed device back to its previous driver.

use pcibox_vfio::{Bdf, Claims};
use std::process::ExitCode;

/// Arguments of `pcibox release`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device, e.g. 0000:00:04.0.
    pub bdf: Bdf,
}

/// Releases the device.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    let bdf = args.bdf;
    let r = Claims::default().release(bdf)?;
    println!(
        "{bdf}: released to {}",
        r.driver.as_deref().unwrap_or("no driver")
    );
    Ok(ExitCode::SUCCESS)
}

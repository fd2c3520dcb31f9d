//! `pcibox claim BDF`: bind a device to vfio-pci, remembering its driver.

use pcibox_vfio::{Bdf, Claimed, Claims};
use std::process::ExitCode;

/// Arguments of `pcibox claim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device, e.g. 0000:00:04.0.
    pub bdf: Bdf,
}

/// Claims the device.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    let bdf = args.bdf;
    match Claims::default().claim(bdf)? {
        Claimed::Already => println!("{bdf}: already bound to vfio-pci"),
        Claimed::Bound { previous } => println!(
            "{bdf}: bound to vfio-pci (was {})",
            previous.as_deref().unwrap_or("unbound")
        ),
    }
    Ok(ExitCode::SUCCESS)
}

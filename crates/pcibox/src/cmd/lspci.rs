//! `pcibox lspci`: a pciutils-compatible device listing.
//!
//! Devices come from sysfs (default) or from a dump in `lspci -x…` format
//! (`-F FILE`); names from the system's pci.ids. The output follows
//! pciutils' `lspci` byte for byte for `-n`, `-nn`, `-x`, `-xxx`, `-xxxx`,
//! `-D`, `-s` and (header, region and capability lines) `-v`. Unlike
//! lspci, a `-s` that matches nothing, an unreadable or garbage dump is an
//! error.

mod filter;
mod sysfs;

use filter::SlotFilter;
use pci::ids::{IdDb, NameMode, Names};
use pci::lspci::{render, Device, Options, OsInfo};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `pcibox lspci`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verbose: -v shows regions and capabilities (as lspci).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// Numeric IDs: -n numbers only, -nn names and numbers.
    #[arg(short = 'n', action = clap::ArgAction::Count)]
    numeric: u8,
    /// Hex dump of config space: -x 64 bytes, -xxx 256, -xxxx 4096.
    #[arg(short = 'x', action = clap::ArgAction::Count)]
    hex: u8,
    /// Show only devices in [[domain:]bus:][slot][.func].
    #[arg(short = 's', value_name = "[[DOMAIN:]BUS:][SLOT][.FUNC]")]
    slot: Option<String>,
    /// Always show the PCI domain.
    #[arg(short = 'D')]
    domains: bool,
    /// Show kernel drivers.
    #[arg(short = 'k')]
    kernel: bool,
    /// Read devices from a dump in `lspci -x…` format instead of sysfs.
    #[arg(short = 'F', value_name = "FILE")]
    file: Option<PathBuf>,
    /// pci.ids to use (default /usr/share/misc/pci.ids, else
    /// /usr/share/hwdata/pci.ids).
    #[arg(short = 'i', value_name = "FILE")]
    ids: Option<PathBuf>,
    /// Print the parsed config spaces as JSON (pcibox's own format).
    #[arg(long)]
    json: bool,
}

/// Failures of `pcibox lspci`.
#[derive(Debug, thiserror::Error)]
pub enum LspciError {
    /// The dump could not be read.
    #[error("cannot read dump {path}")]
    DumpRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The dump is not in `lspci -x` format.
    #[error("{path} is not an lspci -x dump")]
    DumpFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: pci::dump::DumpError,
    },
    /// The dump holds no device at all.
    #[error("{0} is not an lspci -x dump: no device in it")]
    DumpEmpty(PathBuf),
    /// The pci.ids file could not be parsed.
    #[error("{path}")]
    Ids {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: pci::ids::IdsError,
    },
    /// The pci.ids file exists but could not be read.
    #[error("cannot read {path}")]
    IdsRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `-s` does not parse.
    #[error("-s {spec}: {reason}")]
    BadSlot {
        /// The argument.
        spec: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `-s` matches no device.
    #[error("-s {0}: no such device")]
    NoMatch(String),
    /// sysfs could not be listed.
    #[error("cannot list {path}")]
    Sysfs {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Some devices could not be shown (each was reported on stderr).
    #[error("{0} device(s) could not be read")]
    Partial(usize),
    /// JSON encoding failed.
    #[error("cannot encode JSON")]
    Json(#[from] serde_json::Error),
    /// Writing the listing failed.
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
}

/// Where sysfs lists PCI functions.
const SYSFS_DEVICES: &str = "/sys/bus/pci/devices";

/// The default pci.ids locations, in order.
const IDS_PATHS: [&str; 2] = ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"];

/// Runs the listing.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    Ok(list(&args)?)
}

fn list(args: &Args) -> Result<ExitCode, LspciError> {
    let filter = match &args.slot {
        Some(spec) => Some(
            SlotFilter::parse(spec).map_err(|reason| LspciError::BadSlot {
                spec: spec.clone(),
                reason,
            })?,
        ),
        None => None,
    };
    let (mut devices, failed) = match &args.file {
        Some(path) => (load_dump(path)?, 0),
        None => sysfs::scan(Path::new(SYSFS_DEVICES))?,
    };
    let any_domain = devices.iter().any(|d| d.addr.domain != 0);
    if let Some(f) = &filter {
        devices.retain(|d| f.matches(&d.addr));
        if devices.is_empty() && failed == 0 {
            return Err(LspciError::NoMatch(args.slot.clone().unwrap_or_default()));
        }
    }
    devices.sort_by_key(|d| d.addr);

    let ids_text = if args.numeric != 1 || args.verbose > 0 || args.json {
        read_ids(args.ids.as_deref())?
    } else {
        None
    };
    let db = match (&ids_text, &args.ids) {
        (Some((path, text)), _) => Some(IdDb::parse(text).map_err(|source| LspciError::Ids {
            path: path.clone(),
            source,
        })?),
        _ => None,
    };
    let mode = match args.numeric {
        0 => NameMode::Names,
        1 => NameMode::Numeric,
        _ => NameMode::Both,
    };
    let names = Names::new(db, mode);

    match write_listing(args, &devices, &names, any_domain) {
        // A reader that went away (`| head`) is not an error.
        Err(LspciError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(ExitCode::SUCCESS)
        }
        r => r?,
    }
    if failed > 0 {
        return Err(LspciError::Partial(failed));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the listing (or the JSON view) of `devices` to stdout.
fn write_listing(
    args: &Args,
    devices: &[Device],
    names: &Names<'_>,
    any_domain: bool,
) -> Result<(), LspciError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        let views: Vec<_> = devices
            .iter()
            .map(|d| pci::lspci::json::View::new(d, names))
            .collect();
        serde_json::to_writer_pretty(&mut out, &views)?;
        writeln!(out).map_err(LspciError::Output)?;
    } else {
        let opts = Options {
            verbose: args.verbose,
            hex: args.hex,
            domains: args.domains || any_domain,
            kernel: args.kernel,
        };
        for d in devices {
            out.write_all(render(d, &opts, names).as_bytes())
                .map_err(LspciError::Output)?;
        }
    }
    out.flush().map_err(LspciError::Output)
}

/// Reads the pci.ids text: `-i FILE`, else the first default that exists.
/// A missing file is not an error (names fall back to numbers, as lspci).
fn read_ids(explicit: Option<&Path>) -> Result<Option<(PathBuf, String)>, LspciError> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => IDS_PATHS.iter().map(PathBuf::from).collect(),
    };
    for path in candidates {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                return Ok(Some((path, text)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LspciError::IdsRead { path, source }),
        }
    }
    Ok(None)
}

/// Reads a dump; devices with fewer than 64 bytes are an error.
fn load_dump(path: &Path) -> Result<Vec<Device>, LspciError> {
    let bytes = std::fs::read(path).map_err(|source| LspciError::DumpRead {
        path: path.to_path_buf(),
        source,
    })?;
    let parsed = pci::dump::parse(&bytes).map_err(|source| LspciError::DumpFormat {
        path: path.to_path_buf(),
        source,
    })?;
    if parsed.is_empty() {
        return Err(LspciError::DumpEmpty(path.to_path_buf()));
    }
    parsed
        .into_iter()
        .map(|d| {
            let len = d.config.len();
            Device::new(d.addr, d.config, OsInfo::default()).map_err(|_| LspciError::DumpFormat {
                path: path.to_path_buf(),
                source: pci::dump::DumpError::ShortDevice {
                    addr: d.addr.to_string(),
                    len,
                },
            })
        })
        .collect()
}

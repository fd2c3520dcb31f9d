//! `pcibox lspci`: a pciutils-compatible device listing.
//!
//! Devices come from sysfs (default, or the tree `-O sysfs.path=` names)
//! or from a dump in `lspci -x…` format (`-F FILE`); names from the
//! system's pci.ids. The output follows pciutils' `lspci` byte for byte
//! (`-n`, `-nn`, `-x…`, `-D`, `-s`, `-d`, `-v…`, `-k`, `-m`, `-mm`, `-t`,
//! `-P`, `-b`); `--json` is pcibox's own. Unlike lspci, a filter that
//! matches nothing, an unreadable or garbage dump is an error, and so is
//! any lspci flag pcibox does not implement.

mod filter;
mod sysfs;

use filter::Filter;
use pci_lspci::ids::{IdDb, NameMode, Names};
use pci_lspci::json::{JsonOptions, View};
use pci_lspci::tree::Topology;
use pci_lspci::{render, Device, Options, OsInfo};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `pcibox lspci`: lspci's own flags (combined as lspci
/// allows, e.g. `-vmm`, `-tv`, `-nnk`); those of lspci's that pcibox does
/// not implement are refused with a message naming them.
#[derive(Debug, clap::Args)]
#[command(after_help = "lspci's -M, -q/-Q, -p, -A, -H and -G are not supported and are refused.")]
pub struct Args {
    /// Verbose: -v shows regions and capabilities, -vv and -vvv their
    /// details.
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
    /// Show only devices with these IDs; an x in CLASS matches any digit.
    #[arg(short = 'd', value_name = "[VENDOR]:[DEVICE][:CLASS[:PROGIF]]")]
    id: Option<String>,
    /// Always show the PCI domain.
    #[arg(short = 'D')]
    domains: bool,
    /// Show kernel drivers.
    #[arg(short = 'k')]
    kernel: bool,
    /// Machine-readable output: -mm the current format, -m the old one.
    #[arg(short = 'm', action = clap::ArgAction::Count)]
    machine: u8,
    /// Show the bus tree (-tv with names).
    #[arg(short = 't', action = clap::ArgAction::Count,
          conflicts_with_all = ["machine", "hex", "kernel", "bus_centric", "path", "json"])]
    tree: u8,
    /// Show the bridge path before the slot (-PP with bus numbers).
    #[arg(short = 'P', action = clap::ArgAction::Count)]
    path: u8,
    /// Bus-centric view: IRQs and addresses as the card has them, not as
    /// the kernel assigned them.
    #[arg(short = 'b')]
    bus_centric: bool,
    /// Read devices from a dump in `lspci -x…` format instead of sysfs.
    #[arg(short = 'F', value_name = "FILE")]
    file: Option<PathBuf>,
    /// pci.ids to use (default /usr/share/misc/pci.ids, else
    /// /usr/share/hwdata/pci.ids).
    #[arg(short = 'i', value_name = "FILE")]
    ids: Option<PathBuf>,
    /// Access parameter; only sysfs.path=DIR (another sysfs tree than
    /// /sys/bus/pci) is supported.
    #[arg(short = 'O', value_name = "PARAM=VALUE", conflicts_with = "file")]
    option: Vec<String>,
    /// Print the devices as JSON (pcibox's own format,
    /// docs/lspci.schema.json); honours -v, -x…, -s, -d, -D and -k.
    #[arg(long, conflicts_with_all = ["machine", "numeric", "path", "bus_centric"])]
    json: bool,
    /// lspci's bus mapping mode (not supported).
    #[arg(short = 'M', action = clap::ArgAction::Count, hide = true)]
    map_mode: u8,
    /// lspci's DNS queries for unknown IDs (not supported).
    #[arg(short = 'q', action = clap::ArgAction::Count, hide = true)]
    query_dns: u8,
    /// lspci's DNS queries for all IDs (not supported).
    #[arg(short = 'Q', hide = true)]
    query_all: bool,
    /// lspci's modules.pcimap (not supported).
    #[arg(short = 'p', hide = true)]
    pcimap: Option<String>,
    /// libpci's access method (not supported).
    #[arg(short = 'A', hide = true)]
    method: Option<String>,
    /// libpci's direct hardware access (not supported).
    #[arg(short = 'H', hide = true)]
    hardware: Option<String>,
    /// libpci's debugging (not supported).
    #[arg(short = 'G', action = clap::ArgAction::Count, hide = true)]
    debug: u8,
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
        source: pci_lspci::dump::DumpError,
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
        source: pci_lspci::ids::IdsError,
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
    /// `-s` or `-d` does not parse.
    #[error("-{flag} {spec}: {reason}")]
    BadFilter {
        /// `s` or `d`.
        flag: char,
        /// The argument.
        spec: String,
        /// What is wrong (pciutils' words).
        reason: &'static str,
    },
    /// The filters match no device.
    #[error("{0}: no such device")]
    NoMatch(String),
    /// An lspci flag pcibox does not implement.
    #[error("{0} is not supported by pcibox lspci")]
    Unsupported(String),
    /// A flag combination lspci accepts but shows nothing of.
    #[error("{0}")]
    Pointless(&'static str),
    /// sysfs could not be listed.
    #[error(transparent)]
    Sysfs(#[from] pcibox_sysfs::Error),
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

/// The default pci.ids locations, in order.
const IDS_PATHS: [&str; 2] = ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"];

/// Runs the listing.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    Ok(list(&args)?)
}

/// Refuses the lspci flags pcibox does not implement, naming them.
fn check_supported(args: &Args) -> Result<(), LspciError> {
    let refuse = |what: &str| Err(LspciError::Unsupported(what.to_string()));
    if args.map_mode > 0 {
        return refuse("-M (bus mapping mode: probing every slot with raw config cycles)");
    }
    if args.query_dns > 0 || args.query_all {
        return refuse("-q/-Q (looking up IDs over DNS)");
    }
    if args.pcimap.is_some() {
        return refuse("-p (modules.pcimap: pcibox shows no kernel modules)");
    }
    if args.method.is_some() {
        return refuse("-A (pcibox reads sysfs, or a dump with -F)");
    }
    if args.hardware.is_some() {
        return refuse("-H (direct hardware access)");
    }
    if args.debug > 0 {
        return refuse("-G (libpci debugging)");
    }
    if let Some(o) = args.option.iter().find(|o| !o.starts_with("sysfs.path=")) {
        return refuse(&format!("-O {o} (pcibox takes only sysfs.path=DIR)"));
    }
    if args.machine > 0 && args.verbose == 0 && args.kernel {
        return Err(LspciError::Pointless(
            "-k with -m shows drivers only with -v (as lspci, which ignores it otherwise)",
        ));
    }
    Ok(())
}

/// The `-s` and `-d` filters, if any was given.
fn parse_filter(args: &Args) -> Result<Option<Filter>, LspciError> {
    let mut f = Filter::default();
    let bad = |flag, spec: &str, reason| LspciError::BadFilter {
        flag,
        spec: spec.to_string(),
        reason,
    };
    if let Some(spec) = &args.slot {
        f.parse_slot(spec).map_err(|r| bad('s', spec, r))?;
    }
    if let Some(spec) = &args.id {
        f.parse_id(spec).map_err(|r| bad('d', spec, r))?;
    }
    Ok((args.slot.is_some() || args.id.is_some()).then_some(f))
}

fn list(args: &Args) -> Result<ExitCode, LspciError> {
    check_supported(args)?;
    let filter = parse_filter(args)?;
    let (mut devices, failed) = match &args.file {
        Some(path) => (load_dump(path)?, 0),
        None => {
            let root = args
                .option
                .iter()
                .rev()
                .find_map(|o| o.strip_prefix("sysfs.path="))
                .unwrap_or(pcibox_sysfs::DEFAULT_ROOT);
            sysfs::scan(&pcibox_sysfs::Sysfs::new(root))?
        }
    };
    if args.bus_centric {
        // The card's view: the interrupt line and BAR registers.
        for d in &mut devices {
            d.os.irq = None;
            d.os.resources = None;
        }
    }
    let any_domain = devices.iter().any(|d| d.addr.domain != 0);
    devices.sort_by_key(|d| d.addr);
    let topology = (args.tree > 0 || args.path > 0).then(|| Topology::build(&devices));
    if let (Some(t), true) = (&topology, args.path > 0) {
        for i in 0..devices.len() {
            devices[i].bridge_path = t.bridge_path(&devices, i);
        }
    }
    let shown: Vec<bool> = devices
        .iter()
        .map(|d| filter.as_ref().is_none_or(|f| f.matches(d)))
        .collect();
    if filter.is_some() && !shown.contains(&true) && failed == 0 {
        let mut what = Vec::new();
        if let Some(s) = &args.slot {
            what.push(format!("-s {s}"));
        }
        if let Some(d) = &args.id {
            what.push(format!("-d {d}"));
        }
        return Err(LspciError::NoMatch(what.join(" ")));
    }

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

    let listing = Listing {
        devices: &devices,
        shown: &shown,
        filtered: filter.is_some(),
        topology: topology.as_ref(),
        names: &names,
        any_domain,
    };
    match listing.write(args) {
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

/// What to print: the sorted devices, which of them the filters select,
/// and the topology when `-t` or `-P` needs it.
struct Listing<'a, 'n> {
    devices: &'a [Device],
    shown: &'a [bool],
    filtered: bool,
    topology: Option<&'a Topology>,
    names: &'a Names<'n>,
    any_domain: bool,
}

impl Listing<'_, '_> {
    /// Prints the listing, the tree or the JSON view to stdout.
    fn write(&self, args: &Args) -> Result<(), LspciError> {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let selected = self
            .devices
            .iter()
            .zip(self.shown)
            .filter_map(|(d, &s)| s.then_some(d));
        if args.json {
            let opts = JsonOptions {
                verbose: args.verbose,
                hex: args.hex,
            };
            let views: Vec<View> = selected.map(|d| View::new(d, self.names, &opts)).collect();
            serde_json::to_writer_pretty(&mut out, &views)?;
            writeln!(out).map_err(LspciError::Output)?;
        } else if let (Some(t), true) = (self.topology, args.tree > 0) {
            let shown = |i: usize| self.shown[i];
            let filter: Option<&dyn Fn(usize) -> bool> = self.filtered.then_some(&shown);
            let names = (args.verbose > 0).then_some(self.names);
            out.write_all(t.forest(self.devices, filter, names).as_bytes())
                .map_err(LspciError::Output)?;
        } else {
            let opts = Options {
                verbose: args.verbose,
                hex: args.hex,
                domains: args.domains || self.any_domain,
                domains_requested: args.domains,
                kernel: args.kernel,
                machine: args.machine,
                path: args.path,
            };
            for d in selected {
                out.write_all(render(d, &opts, self.names).as_bytes())
                    .map_err(LspciError::Output)?;
            }
        }
        out.flush().map_err(LspciError::Output)
    }
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
    let parsed = pci_lspci::dump::parse(&bytes).map_err(|source| LspciError::DumpFormat {
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
                source: pci_lspci::dump::DumpError::ShortDevice {
                    addr: d.addr.to_string(),
                    len,
                },
            })
        })
        .collect()
}

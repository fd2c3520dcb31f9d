//! `pcibox nvme --device DEVICE …`: the user-space NVMe driver from the command line.
//!
//! `identify`, `partitions`, `read`, `write`, `verify`, `bench`; `--json` for scripts. DEVICE
//! is parsed by `crate::device` (`vfio:BDF`, `vfio-user:SOCKET`) and must be an NVMe
//! controller. Arguments are checked before the device is opened (opening resets the
//! controller); `write` and `verify`, which overwrite the disk, live in `write.rs`.

mod bench;
mod write;

use super::Context;
use crate::device::{DeviceSpec, Kind};
use partition_table::{read_table, sfdisk, sgdisk, Table};
use pcibox_nvme::{Controller, Options};
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `pcibox nvme`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The controller: vfio:BDF or vfio-user:SOCKET.
    #[arg(long)]
    pub device: DeviceSpec,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Poll completion queues instead of using MSI-X interrupts.
    #[arg(long, global = true)]
    pub polled: bool,
    /// I/O queue pairs to create.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub queues: u16,
    /// Entries per I/O queue.
    #[arg(long, global = true, default_value_t = 64, value_parser = clap::value_parser!(u16).range(2..))]
    pub queue_entries: u16,
    /// Per-command timeout in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000)]
    pub timeout_ms: u64,
    #[command(subcommand)]
    pub command: Sub,
}

/// `pcibox nvme` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Model, serial, firmware, version, limits and the namespace's geometry.
    Identify,
    /// The partition table (GPT or MBR), printed like `sfdisk --dump`.
    Partitions {
        /// Device name used in the dump (the host tools print the image path).
        #[arg(long, default_value = "nvme0n1")]
        name: String,
        /// Print like `sgdisk -p` instead (GPT only; without its alignment line).
        #[arg(long)]
        sgdisk: bool,
    },
    /// Read COUNT blocks at LBA: a hex dump, or the raw bytes to --out FILE.
    Read {
        #[command(flatten)]
        blocks: Blocks,
        /// Write the raw data to FILE instead of a hex dump.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Do not check the range against the namespace: let the device judge it.
        #[arg(long)]
        unchecked: bool,
    },
    /// OVERWRITE COUNT blocks at LBA with the pattern of SEED or the contents of FILE.
    ///
    /// What the blocks held is lost. Asks first when stdin is a terminal; otherwise needs
    /// --yes.
    Write(write::WriteArgs),
    /// OVERWRITE COUNT blocks at LBA with a pseudo-random pattern, read them back and compare.
    ///
    /// Not a read-only check: what the blocks held is lost. Asks first when stdin is a
    /// terminal; otherwise needs --yes.
    Verify(write::VerifyArgs),
    /// 4 KiB random-read IOPS at each queue depth, completions per interrupt, and a baseline
    /// (reads only).
    Bench(bench::Args),
}

/// The block range of `read`, `write` and `verify`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Blocks {
    /// First block (logical block address, in the namespace's block size).
    pub lba: u64,
    /// Number of blocks (at least 1).
    pub count: u64,
}

/// The smallest block size a namespace may have: bounds that need the real one are checked
/// against it before the device is opened, and exactly after.
const MIN_BLOCK: u64 = 512;

impl Blocks {
    /// Checks the range before the device is opened: not empty, not past the 64-bit LBA space,
    /// at most `max_bytes` even at the smallest block size.
    pub fn check(&self, verb: &str, max_bytes: u64) -> Result<(), super::Error> {
        if self.count == 0 {
            return Err(format!("{verb}: COUNT is 0 (a zero-length transfer)").into());
        }
        if self.lba.checked_add(self.count).is_none() {
            return Err(
                format!("{verb}: LBA {} + COUNT {} overflows", self.lba, self.count).into(),
            );
        }
        if self.count.saturating_mul(MIN_BLOCK) > max_bytes {
            return Err(too_much(verb, max_bytes));
        }
        Ok(())
    }

    /// The range's length in bytes at block size `bs`, if at most `max_bytes`.
    pub fn bytes(&self, verb: &str, bs: u64, max_bytes: u64) -> Result<usize, super::Error> {
        self.count
            .checked_mul(bs)
            .filter(|&l| l <= max_bytes)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| too_much(verb, max_bytes))
    }
}

fn too_much(verb: &str, max_bytes: u64) -> super::Error {
    format!("{verb}: at most {} MiB at a time", max_bytes >> 20).into()
}

/// The most `read` and `write` move in one go.
const MAX_READ_WRITE: u64 = 1 << 30;

fn open(args: &Args, io_queues: u16) -> Result<Controller, super::Error> {
    let device = args.device.open_as(Kind::Nvme)?;
    let opts = Options {
        io_queues,
        queue_entries: args.queue_entries,
        polled: args.polled,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    Controller::new(device, &opts).context(&args.device)
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode, super::Error> {
    match &args.command {
        Sub::Identify => identify(&args),
        Sub::Partitions { name, sgdisk } => partitions(&args, name, *sgdisk),
        Sub::Read {
            blocks,
            out,
            unchecked,
        } => read(&args, *blocks, out.as_deref(), *unchecked),
        Sub::Write(w) => write::write(&args, w),
        Sub::Verify(v) => write::verify(&args, v),
        Sub::Bench(b) => bench::run(&args, b),
    }
}

fn identify(args: &Args) -> Result<ExitCode, super::Error> {
    let ctrl = open(args, 0)?;
    let id = ctrl.identify();
    let ns = ctrl.namespace();
    if args.json {
        let v = json!({
            "device": args.device.to_string(),
            "controller": id,
            "version": ctrl.version().to_string(),
            "cap": format!("{:#018x}", ctrl.cap().0),
            "max_transfer": ctrl.max_transfer(),
            "namespace": ns.map(|n| json!({
                "nsid": n.nsid,
                "blocks": n.info.nsze,
                "block_size": n.info.block_size(),
                "bytes": n.info.capacity_bytes(),
            })),
        });
        println!("{v:#}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("model:        {}", id.model);
    println!("serial:       {}", id.serial);
    println!("firmware:     {}", id.firmware);
    println!("vendor:       {:04x} (subsystem {:04x})", id.vid, id.ssvid);
    println!("version:      {}", ctrl.version());
    println!("subnqn:       {}", id.subnqn);
    println!("max transfer: {} KiB", ctrl.max_transfer() / 1024);
    println!("max queue:    {} entries", ctrl.cap().max_queue_entries());
    println!("namespaces:   {}", id.nn);
    match ns {
        Some(n) => println!(
            "namespace {}:  {} blocks of {} bytes ({} MiB)",
            n.nsid,
            n.info.nsze,
            n.info.block_size(),
            n.info.capacity_bytes() >> 20
        ),
        None => println!("namespace:    none active"),
    }
    Ok(ExitCode::SUCCESS)
}

fn partitions(args: &Args, name: &str, as_sgdisk: bool) -> Result<ExitCode, super::Error> {
    let mut ctrl = open(args, 1)?;
    let table = read_table(&mut ctrl)?;
    if args.json {
        println!("{:#}", serde_json::to_value(&table)?);
    } else if as_sgdisk {
        match &table {
            Table::Gpt(g) => print!("{}", sgdisk::print(g, name)),
            Table::Mbr(_) => return Err("--sgdisk: the disk has an MBR, not a GPT".into()),
        }
    } else {
        print!("{}", sfdisk::dump(&table, name));
    }
    for warning in table.warnings() {
        eprintln!("pcibox: warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

fn read(
    args: &Args,
    blocks: Blocks,
    out: Option<&std::path::Path>,
    unchecked: bool,
) -> Result<ExitCode, super::Error> {
    blocks.check("read", MAX_READ_WRITE)?;
    let Blocks { lba, count } = blocks;
    let mut ctrl = open(args, 1)?;
    ctrl.set_bounds_check(!unchecked);
    let bs = ctrl.block_size()? as u64;
    let mut data = vec![0u8; blocks.bytes("read", bs, MAX_READ_WRITE)?];
    ctrl.read(lba, &mut data)?;
    if let Some(path) = out {
        std::fs::write(path, &data).context(format!("cannot write {}", path.display()))?;
    }
    if args.json {
        let v = json!({
            "lba": lba, "blocks": count, "bytes": data.len(),
            "crc32": format!("{:08x}", partition_table::crc32::crc32(&data)),
        });
        println!("{v}");
    } else if out.is_none() {
        hexdump(lba * bs, &data)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn hexdump(base: u64, data: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, row) in data.chunks(16).enumerate() {
        write!(out, "{:08x}:", base + 16 * i as u64)?;
        for b in row {
            write!(out, " {b:02x}")?;
        }
        let text: String = row
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(out, "  {text}")?;
    }
    out.flush()
}

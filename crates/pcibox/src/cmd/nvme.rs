//! `pcibox nvme --device DEVICE …`: the user-space NVMe driver from the command line.
//!
//! `identify`, `partitions`, `read`, `write`, `verify`, `bench`; `--json` for scripts. DEVICE
//! is parsed by `crate::device` (`vfio:BDF`, `vfio-user:SOCKET`).

mod bench;

use super::Context;
use crate::device::DeviceSpec;
use partition_table::{read_table, sfdisk, sgdisk, Table};
use pcibox_nvme::{pattern, Controller, OpKind, Options, RunStats, Transfer};
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
    #[arg(long, global = true, default_value_t = 1)]
    pub queues: u16,
    /// Entries per I/O queue.
    #[arg(long, global = true, default_value_t = 64)]
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
    /// Read COUNT blocks at LBA.
    Read {
        lba: u64,
        count: u64,
        /// Write the raw data to FILE instead of a hex dump.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Do not check the range against the namespace: let the device judge it.
        #[arg(long)]
        unchecked: bool,
    },
    /// Write COUNT blocks at LBA: the pattern of SEED, or the contents of FILE.
    Write {
        lba: u64,
        count: u64,
        /// Pattern seed (see `verify`).
        #[arg(long, conflicts_with = "file")]
        seed: Option<u64>,
        /// Data to write (exactly COUNT blocks).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Write a pseudo-random pattern over COUNT blocks at LBA, read it back and compare.
    Verify {
        lba: u64,
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Commands in flight (spread over --queues).
        #[arg(long, default_value_t = 1)]
        qd: usize,
        /// Blocks per command (default: as many as one command may move).
        #[arg(long)]
        blocks_per_cmd: Option<u32>,
        /// Byte offset of the data in the DMA buffer (PRP1 needs it dword aligned).
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// 4 KiB random-read IOPS at each queue depth, completions per interrupt, and a baseline.
    Bench(bench::Args),
}

fn open(args: &Args, io_queues: u16) -> Result<Controller, super::Error> {
    let device = args.device.open()?;
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
            lba,
            count,
            out,
            unchecked,
        } => read(&args, *lba, *count, out.as_deref(), *unchecked),
        Sub::Write {
            lba,
            count,
            seed,
            file,
        } => write(&args, *lba, *count, *seed, file.as_deref()),
        Sub::Verify {
            lba,
            count,
            seed,
            qd,
            blocks_per_cmd,
            offset,
        } => verify(&args, *lba, *count, *seed, *qd, *blocks_per_cmd, *offset),
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
    lba: u64,
    count: u64,
    out: Option<&std::path::Path>,
    unchecked: bool,
) -> Result<ExitCode, super::Error> {
    let mut ctrl = open(args, 1)?;
    ctrl.set_bounds_check(!unchecked);
    let bs = ctrl.block_size()? as u64;
    let len = count
        .checked_mul(bs)
        .filter(|&l| l <= 1 << 30)
        .ok_or("read: at most 1 GiB at a time")?;
    let mut data = vec![0u8; len as usize];
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

fn write(
    args: &Args,
    lba: u64,
    count: u64,
    seed: Option<u64>,
    file: Option<&std::path::Path>,
) -> Result<ExitCode, super::Error> {
    let mut ctrl = open(args, 1)?;
    let bs = ctrl.block_size()? as u64;
    let len = count
        .checked_mul(bs)
        .filter(|&l| l <= 1 << 30)
        .ok_or("write: at most 1 GiB at a time")? as usize;
    let data = match (seed, file) {
        (_, Some(path)) => {
            let d = std::fs::read(path).context(format!("cannot read {}", path.display()))?;
            if d.len() != len {
                return Err(format!(
                    "{}: {} bytes, COUNT blocks are {len}",
                    path.display(),
                    d.len()
                )
                .into());
            }
            d
        }
        (Some(seed), None) => {
            let mut d = vec![0u8; len];
            pattern::fill(seed, lba, bs as usize, &mut d);
            d
        }
        (None, None) => return Err("write: give --seed SEED or --file FILE".into()),
    };
    ctrl.write(lba, &data)?;
    ctrl.flush()?;
    if args.json {
        println!("{}", json!({"lba": lba, "blocks": count, "bytes": len}));
    } else {
        println!("wrote {count} blocks at LBA {lba}");
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn verify(
    args: &Args,
    lba: u64,
    count: u64,
    seed: u64,
    qd: usize,
    blocks_per_cmd: Option<u32>,
    offset: usize,
) -> Result<ExitCode, super::Error> {
    let mut ctrl = open(args, args.queues)?;
    let bs = ctrl.block_size()? as usize;
    let len = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(bs))
        .filter(|&l| l <= 256 << 20)
        .ok_or("verify: at most 256 MiB at a time")?;
    let per_cmd = blocks_per_cmd.unwrap_or(u32::MAX);
    let buf = ctrl.alloc_buffer((offset + len).max(1))?;
    let mut expect = vec![0u8; len];
    pattern::fill(seed, lba, bs, &mut expect);
    buf.write(
        offset.min(buf.len()),
        &expect[..len.min(buf.len().saturating_sub(offset))],
    )?;
    let w = ctrl.transfer_dma(
        Transfer::new(OpKind::Write, lba, count)
            .offset(offset)
            .blocks_per_cmd(per_cmd)
            .depth(qd),
        &buf,
    )?;
    ctrl.flush()?;
    buf.zero();
    let r = ctrl.transfer_dma(
        Transfer::new(OpKind::Read, lba, count)
            .offset(offset)
            .blocks_per_cmd(per_cmd)
            .depth(qd),
        &buf,
    )?;
    let mut got = vec![0u8; len];
    buf.read(offset, &mut got)?;
    if let Some(i) = pattern::first_mismatch(seed, lba, bs, &got) {
        return Err(format!(
            "verify: block {} (LBA {}) differs from the pattern written",
            i,
            lba + i
        )
        .into());
    }
    let stats = ctrl.stats();
    if args.json {
        let v = json!({
            "lba": lba, "blocks": count, "bytes": len, "seed": seed, "qd": qd,
            "queues": ctrl.io_queues(), "interrupts": ctrl.uses_interrupts(),
            "write": run_json(&w), "read": run_json(&r),
            "out_of_order": stats.out_of_order,
        });
        println!("{v:#}");
    } else {
        println!(
            "verified {count} blocks at LBA {lba}: {} write + {} read commands, max {} in flight on {} queue(s), {} completions out of order",
            w.completions, r.completions, w.max_in_flight.max(r.max_in_flight), ctrl.io_queues(), stats.out_of_order
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_json(r: &RunStats) -> serde_json::Value {
    json!({
        "commands": r.completions, "interrupts": r.interrupts, "max_in_flight": r.max_in_flight,
        "bytes": r.bytes, "seconds": r.elapsed.as_secs_f64(),
    })
}

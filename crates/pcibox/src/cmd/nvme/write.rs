//! `pcibox nvme write` and `verify`: the two subcommands that overwrite the disk. Both check
//! their arguments, then ask (or need `--yes`), and only then open the device.

use super::{open, Args, Blocks, MAX_READ_WRITE};
use crate::cmd::Context;
use crate::confirm::{self, Yes};
use pcibox_nvme::{pattern, OpKind, RunStats, Transfer};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `pcibox nvme write`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("data").required(true).args(["seed", "file"]))]
pub struct WriteArgs {
    #[command(flatten)]
    blocks: Blocks,
    /// Write the pattern of this seed (the one `verify --seed` writes).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the contents of FILE (exactly COUNT blocks).
    #[arg(long)]
    file: Option<PathBuf>,
    #[command(flatten)]
    yes: Yes,
}

/// Arguments of `pcibox nvme verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    blocks: Blocks,
    /// Pattern seed: the same seed and LBA always give the same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Commands in flight (spread over --queues).
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    qd: usize,
    /// Blocks per command (default: as many as one command may move).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    blocks_per_cmd: Option<u32>,
    /// Byte offset of the data in the DMA buffer (PRP1 needs it dword aligned).
    #[arg(long, default_value_t = 0)]
    offset: usize,
    #[command(flatten)]
    yes: Yes,
}

/// The most `verify` moves in one go (its buffer holds it all).
const MAX_VERIFY: u64 = 256 << 20;

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?}: expected a number of at least 1")),
    }
}

/// Asks before overwriting `blocks` of the device.
fn confirm(args: &Args, verb: &str, blocks: Blocks, yes: Yes) -> Result<(), crate::cmd::Error> {
    let what = format!(
        "nvme {verb} would overwrite {} block(s) at LBA {} of {}",
        blocks.count, blocks.lba, args.device
    );
    Ok(confirm::destructive(&what, yes)?)
}

/// What `write` writes.
enum Source<'a> {
    Seed(u64),
    File(&'a Path, Vec<u8>),
}

/// `pcibox nvme write`.
pub fn write(args: &Args, w: &WriteArgs) -> Result<ExitCode, crate::cmd::Error> {
    w.blocks.check("write", MAX_READ_WRITE)?;
    let source = match (&w.file, w.seed) {
        (Some(path), _) => {
            let data = std::fs::read(path).context(format!("cannot read {}", path.display()))?;
            Source::File(path, data)
        }
        (None, Some(seed)) => Source::Seed(seed),
        // clap's "data" group requires one of the two.
        (None, None) => return Err("write: give --seed SEED or --file FILE".into()),
    };
    confirm(args, "write", w.blocks, w.yes)?;
    let Blocks { lba, count } = w.blocks;
    let mut ctrl = open(args, 1)?;
    let bs = ctrl.block_size()? as u64;
    let len = w.blocks.bytes("write", bs, MAX_READ_WRITE)?;
    let data = match source {
        Source::File(path, d) if d.len() != len => {
            return Err(format!(
                "{}: {} bytes, COUNT blocks are {len}",
                path.display(),
                d.len()
            )
            .into())
        }
        Source::File(_, d) => d,
        Source::Seed(seed) => {
            let mut d = vec![0u8; len];
            pattern::fill(seed, lba, bs as usize, &mut d);
            d
        }
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

/// `pcibox nvme verify`.
pub fn verify(args: &Args, v: &VerifyArgs) -> Result<ExitCode, crate::cmd::Error> {
    v.blocks.check("verify", MAX_VERIFY)?;
    if !v.offset.is_multiple_of(4) {
        return Err(format!(
            "verify: --offset {} is unaligned: PRP1 needs a dword-aligned address",
            v.offset
        )
        .into());
    }
    confirm(args, "verify", v.blocks, v.yes)?;
    let Blocks { lba, count } = v.blocks;
    let (seed, qd, offset) = (v.seed, v.qd, v.offset);
    let mut ctrl = open(args, args.queues)?;
    let bs = ctrl.block_size()? as usize;
    let len = v.blocks.bytes("verify", bs as u64, MAX_VERIFY)?;
    let per_cmd = v.blocks_per_cmd.unwrap_or(u32::MAX);
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

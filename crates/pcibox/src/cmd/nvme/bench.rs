//! `pcibox nvme bench`: 4 KiB random reads at each queue depth, reported as IOPS, completions
//! per interrupt, and the QD1 latency as a ratio to a unix-socket round trip measured in the
//! same run (the project's baseline; absolute numbers under TCG mean little). `--threads N`
//! runs N threads, each on a queue handle of its own at that depth.

use super::open;
use pcibox_kit::DmaSlice;
use pcibox_nvme::{IoQueue, Op, OpKind, RunStats};
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `pcibox nvme bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per queue depth.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Queue depths to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    qd: Vec<usize>,
    /// Blocks of the namespace the random reads fall in (default: all).
    #[arg(long)]
    span: Option<u64>,
    /// Threads, each submitting on an I/O queue of its own at the given queue depth (at most
    /// --queues). 1: one thread spreads the depth over all queues.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
}

/// Random 4 KiB reads in `span` 4 KiB units, `per_io` blocks each, into `buf` slots of `qd`,
/// until `until`.
fn random_reads(
    buf: &DmaSlice,
    seed: u64,
    qd: usize,
    span: u64,
    per_io: u64,
    until: Instant,
) -> impl Iterator<Item = Op<'_>> {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0usize..).map_while(move |i| {
        if i % 16 == 0 && Instant::now() >= until {
            return None;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        Some(Op {
            kind: OpKind::Read,
            lba: (rng % span) * per_io,
            blocks: per_io as u32,
            buf,
            offset: (i % qd) * 4096,
        })
    })
}

/// One thread per queue handle, each at depth `qd` for `seconds`: what they did together.
fn threaded(
    queues: &mut [IoQueue],
    qd: usize,
    seconds: f64,
    span: u64,
    per_io: u64,
) -> Result<RunStats, crate::cmd::Error> {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let results: Vec<std::thread::Result<pcibox_nvme::Result<RunStats>>> =
        std::thread::scope(|s| {
            let workers: Vec<_> = queues
                .iter_mut()
                .map(|q| {
                    s.spawn(move || {
                        let buf = q.alloc_buffer(qd * 4096)?;
                        let seed = u64::from(q.qid()) << 32 ^ qd as u64;
                        q.run(random_reads(&buf, seed, qd, span, per_io, until), qd)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join()).collect()
        });
    let mut all = RunStats::default();
    for r in results {
        let r = r.map_err(|_| "bench: a worker thread panicked")??;
        all.completions += r.completions;
        all.interrupts += r.interrupts;
        all.max_in_flight += r.max_in_flight;
        all.bytes += r.bytes;
        all.elapsed = all.elapsed.max(r.elapsed);
    }
    Ok(all)
}

/// Runs the benchmark.
pub fn run(args: &super::Args, b: &Args) -> Result<ExitCode, crate::cmd::Error> {
    if b.threads > args.queues {
        return Err(format!(
            "bench: --threads {} needs as many queues (--queues {})",
            b.threads, args.queues
        )
        .into());
    }
    let mut ctrl = open(args, args.queues)?;
    let bs = ctrl.block_size()? as u64;
    let per_io = (4096 / bs).max(1);
    let span = b.span.unwrap_or(ctrl.capacity()?).min(ctrl.capacity()?) / per_io;
    if span == 0 {
        return Err("bench: namespace smaller than 4 KiB".into());
    }
    let max_qd = b.qd.iter().copied().max().unwrap_or(1).max(1);
    let buf = ctrl.alloc_buffer(max_qd * 4096)?;
    let queues = ctrl.io_queues();
    let mut handles = Vec::new();
    if b.threads > 1 {
        for _ in 0..b.threads {
            handles.push(ctrl.take_io_queue()?);
        }
    }
    let baseline_us = unix_round_trip_us()?;
    let mut rows = Vec::new();
    for &qd in &b.qd {
        let qd = qd.max(1);
        let s = if handles.is_empty() {
            let until = Instant::now() + Duration::from_secs_f64(b.seconds);
            ctrl.run(random_reads(&buf, qd as u64, qd, span, per_io, until), qd)?
        } else {
            threaded(&mut handles, qd, b.seconds, span, per_io)?
        };
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let iops = s.completions as f64 / secs;
        let per_irq = if s.interrupts > 0 {
            Some(s.completions as f64 / s.interrupts as f64)
        } else {
            None
        };
        rows.push(json!({
            "qd": qd, "threads": b.threads, "ios": s.completions, "seconds": secs, "iops": iops,
            "us_per_io": 1e6 / iops.max(1e-9), "interrupts": s.interrupts,
            "completions_per_interrupt": per_irq, "max_in_flight": s.max_in_flight,
            "us_per_io_over_unix_rtt": (1e6 / iops.max(1e-9)) / baseline_us,
        }));
    }
    if args.json {
        let v = json!({
            "device": args.device.to_string(), "queues": queues, "threads": b.threads,
            "interrupts": ctrl.uses_interrupts(), "block_size": bs,
            "baseline_unix_rtt_us": baseline_us, "results": rows,
        });
        println!("{v:#}");
    } else {
        println!(
            "4 KiB random read, {queues} queue(s), {} thread(s), {}; baseline unix-socket round trip {baseline_us:.1} µs",
            b.threads,
            if ctrl.uses_interrupts() { "MSI-X" } else { "polled" }
        );
        for r in &rows {
            println!(
                "QD{:<3} {:>9.0} IOPS  {:>8.1} µs/IO ({:.1}× unix RTT)  {} IOs  completions/interrupt {}",
                r["qd"],
                r["iops"].as_f64().unwrap_or(0.0),
                r["us_per_io"].as_f64().unwrap_or(0.0),
                r["us_per_io_over_unix_rtt"].as_f64().unwrap_or(0.0),
                r["ios"],
                r["completions_per_interrupt"]
                    .as_f64()
                    .map_or("n/a (polled)".to_string(), |v| format!("{v:.2}")),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Median of a few batches of 16-byte round trips between two threads over a unix socket pair.
fn unix_round_trip_us() -> Result<f64, crate::cmd::Error> {
    let (mut a, mut b) = UnixStream::pair()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut m = [0u8; 16];
        loop {
            if b.read_exact(&mut m).is_err() {
                return Ok(());
            }
            b.write_all(&m)?;
        }
    });
    let mut m = [0u8; 16];
    let mut samples = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..200 {
            a.write_all(&m)?;
            a.read_exact(&mut m)?;
        }
        samples.push(t.elapsed().as_secs_f64() * 1e6 / 200.0);
    }
    drop(a);
    let _ = echo.join();
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

//! The transmit/receive batch benchmark: frames go out through the transmit
//! ring and come straight back through MAC loopback (RCTL.LBM) into the
//! receive ring, in batches of 1..64, through the frame interface (each
//! frame filled in place with `tx_queue`, one `tx_kick` per batch, frames
//! lent by `rx`). Reported next to baselines measured in
//! the same run (a unix-socket round trip and memcpy) so numbers from a slow
//! or busy machine (or TCG) can still be compared as ratios.

use crate::error::{Error, Result};
use crate::nic::{E1000e, Wake};
use serde::Serialize;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// EtherType for the benchmark frames (IEEE local experimental).
const ETHERTYPE: [u8; 2] = [0x88, 0xB5];

/// One batch size's result.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Frames per transmit call.
    pub batch: usize,
    /// Frames sent and received back.
    pub frames: u64,
    /// Wall time.
    pub seconds: f64,
    /// Frames per second (each sent and received once).
    pub frames_per_sec: f64,
    /// Time per frame divided by one unix-socket round trip.
    pub frame_cost_vs_unix_rtt: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Interrupt delivery used while waiting for frames to come back.
    pub irq_mode: String,
    /// Frame length in bytes.
    pub frame_len: usize,
    /// Baseline: 16-byte unix-socket round trip between two threads, µs.
    pub unix_rtt_us: f64,
    /// Baseline: memcpy of frame-sized buffers, GB/s.
    pub memcpy_gbps: f64,
    /// One entry per batch size.
    pub points: Vec<Point>,
}

/// Runs the benchmark: `frames` frames of `frame_len` bytes per batch size.
/// The driver must have been opened with `Config::loopback`.
pub fn run(nic: &mut E1000e, batches: &[usize], frames: u64, frame_len: usize) -> Result<Report> {
    let frame_len = frame_len.clamp(60, nic.max_frame());
    let unix_rtt_us = unix_rtt_us()?;
    let memcpy_gbps = memcpy_gbps(frame_len);
    let mut frame = vec![0u8; frame_len];
    frame[0..6].copy_from_slice(&nic.mac().0);
    frame[6..12].copy_from_slice(&nic.mac().0);
    frame[12..14].copy_from_slice(&ETHERTYPE);
    let mut points = Vec::new();
    for &batch in batches {
        let batch = batch.max(1);
        // Drain anything left over from the previous point.
        while nic.rx(|_| ())?.is_some() {}
        let start = Instant::now();
        let (mut sent, mut got) = (0u64, 0u64);
        while got < frames {
            if sent < frames && sent - got < batch as u64 {
                // Fill up to a batch in place, then one doorbell.
                let want = (frames - sent).min(batch as u64);
                let mut queued = 0;
                while queued < want
                    && nic
                        .tx_queue(frame_len, |b| b.copy_from_slice(&frame))?
                        .is_some()
                {
                    queued += 1;
                }
                nic.tx_kick()?;
                sent += queued;
            }
            let mut taken = 0;
            while let Some(ours) = nic.rx(|f| f.len() >= 14 && f[12..14] == ETHERTYPE)? {
                taken += 1;
                got += u64::from(ours);
            }
            if taken == 0
                && nic.wait(Duration::from_secs(2))? == Wake::Timeout
                && !nic.rx_ready()?
            {
                return Err(Error::Timeout {
                    what: "loopback frames to come back",
                    ms: 2000,
                });
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let per_frame_us = seconds * 1e6 / frames as f64;
        points.push(Point {
            batch,
            frames,
            seconds,
            frames_per_sec: frames as f64 / seconds,
            frame_cost_vs_unix_rtt: per_frame_us / unix_rtt_us,
        });
    }
    Ok(Report {
        irq_mode: nic.irq_mode().to_string(),
        frame_len,
        unix_rtt_us,
        memcpy_gbps,
        points,
    })
}

fn unix_rtt_us() -> Result<f64> {
    let io = |e: std::io::Error| Error::net_op("baseline unix socket", e);
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().map_err(io)?;
    const N: u32 = 2000;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 16];
        for _ in 0..N {
            b.read_exact(&mut buf)?;
            b.write_all(&buf)?;
        }
        Ok(())
    });
    let mut buf = [7u8; 16];
    let start = Instant::now();
    for _ in 0..N {
        a.write_all(&buf).map_err(io)?;
        a.read_exact(&mut buf).map_err(io)?;
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(N);
    match echo.join() {
        Ok(r) => r.map_err(io)?,
        Err(_) => return Err(Error::Net("baseline echo thread panicked".into())),
    }
    Ok(us)
}

fn memcpy_gbps(len: usize) -> f64 {
    let src = vec![0x5Au8; len];
    let mut dst = vec![0u8; len];
    let n = 200_000u32;
    let start = Instant::now();
    for _ in 0..n {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    let secs = start.elapsed().as_secs_f64();
    (len as f64 * f64::from(n)) / secs / 1e9
}

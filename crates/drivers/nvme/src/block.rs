//! The block API: byte buffers at LBA ranges (through a DMA bounce buffer, split into commands
//! of at most the controller's transfer limit), block size, capacity, flush; and
//! `partition_table::BlockSource` so partition tables are read straight off the namespace. The
//! same calls work on a [`Controller`] (over the queues it holds) and on an [`IoQueue`] handle
//! (over its one queue).

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::io::{Op, OpKind, RunStats};
use crate::ioqueue::{IoQueue, Shared};
use pcibox_kit::{DmaBuffer, DmaSlice};

/// Size of the bounce buffer the byte-buffer calls go through.
const BOUNCE: usize = 2 << 20;

/// A block transfer for [`Controller::transfer_dma`].
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Read, write or flush.
    pub kind: OpKind,
    /// First block.
    pub lba: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// Byte offset of the data in the buffer.
    pub offset: usize,
    /// Most blocks per command (further capped by the controller's transfer limit).
    pub blocks_per_cmd: u32,
    /// Most commands in flight.
    pub depth: usize,
}

impl Transfer {
    /// `blocks` blocks at `lba`, from buffer offset 0, commands as large as allowed, one in flight.
    pub fn new(kind: OpKind, lba: u64, blocks: u64) -> Transfer {
        Transfer {
            kind,
            lba,
            blocks,
            offset: 0,
            blocks_per_cmd: u32::MAX,
            depth: 1,
        }
    }
    /// Sets the buffer offset.
    pub fn offset(self, offset: usize) -> Transfer {
        Transfer { offset, ..self }
    }
    /// Sets the most blocks per command.
    pub fn blocks_per_cmd(self, blocks_per_cmd: u32) -> Transfer {
        Transfer {
            blocks_per_cmd,
            ..self
        }
    }
    /// Sets the most commands in flight.
    pub fn depth(self, depth: usize) -> Transfer {
        Transfer { depth, ..self }
    }
}

/// What the block API needs from whatever runs the commands.
trait Engine {
    fn shared(&self) -> &Shared;
    fn bounds_check(&self) -> bool;
    fn bounce_slot(&mut self) -> &mut Option<DmaBuffer>;
    fn run_ops<'a>(
        &mut self,
        ops: impl IntoIterator<Item = Op<'a>>,
        depth: usize,
    ) -> Result<RunStats>;
}

fn transfer_dma(e: &mut impl Engine, t: Transfer, buf: &DmaSlice) -> Result<RunStats> {
    if t.blocks == 0 {
        return Err(Error::ZeroLength);
    }
    let bs = e.shared().geometry()?.block_size as usize;
    let limit = (e.shared().max_transfer / bs).clamp(1, 65536) as u32;
    let per_cmd = t.blocks_per_cmd.clamp(1, limit) as u64;
    let n = t.blocks.div_ceil(per_cmd);
    let ops = (0..n).map(move |i| {
        let first = i * per_cmd;
        Op {
            kind: t.kind,
            lba: t.lba.wrapping_add(first),
            blocks: (t.blocks - first).min(per_cmd) as u32,
            buf,
            offset: t.offset + first as usize * bs,
        }
    });
    e.run_ops(ops, t.depth)
}

/// Runs `f` with the engine's bounce buffer (allocated on first use) and puts it back.
fn with_bounce<E: Engine, R>(
    e: &mut E,
    f: impl FnOnce(&mut E, &DmaBuffer) -> Result<R>,
) -> Result<R> {
    let bounce = match e.bounce_slot().take() {
        Some(b) => b,
        None => e.shared().device.alloc_dma(BOUNCE)?,
    };
    let r = f(e, &bounce);
    *e.bounce_slot() = Some(bounce);
    r
}

fn flush(e: &mut impl Engine) -> Result<()> {
    with_bounce(e, |e, bounce| {
        let op = Op {
            kind: OpKind::Flush,
            lba: 0,
            blocks: 0,
            buf: bounce,
            offset: 0,
        };
        e.run_ops([op], 1).map(|_| ())
    })
}

/// Moves `len` bytes in bounce-buffer-sized pieces; `copy` fills the bounce buffer before a
/// write, or empties it after a read.
fn bounced(
    e: &mut impl Engine,
    kind: OpKind,
    lba: u64,
    len: usize,
    mut copy: impl FnMut(&DmaBuffer, usize, usize) -> pcibox_kit::Result<()>,
) -> Result<()> {
    let ns = e.shared().geometry()?;
    let bs = ns.block_size as usize;
    if len == 0 {
        return Err(Error::ZeroLength);
    }
    if len % bs != 0 {
        return Err(Error::Unaligned(format!(
            "{len} bytes is not a whole number of {bs}-byte blocks"
        )));
    }
    let blocks = (len / bs) as u64;
    if e.bounds_check() && lba.checked_add(blocks).is_none_or(|end| end > ns.capacity) {
        return Err(Error::OutOfRange {
            nsid: ns.nsid,
            lba,
            count: blocks,
            capacity: ns.capacity,
        });
    }
    with_bounce(e, |e, bounce| {
        let chunk = (bounce.len() / bs) * bs;
        let mut done = 0;
        while done < len {
            let n = chunk.min(len - done);
            let at = lba + (done / bs) as u64;
            if kind == OpKind::Write {
                copy(bounce, done, n)?;
            }
            transfer_dma(e, Transfer::new(kind, at, (n / bs) as u64).depth(4), bounce)?;
            if kind == OpKind::Read {
                copy(bounce, done, n)?;
            }
            done += n;
        }
        Ok(())
    })
}

/// The block API as inherent methods of `$t` (the controller and the queue handle), over its
/// `shared`, `bounds_check` and `bounce` fields and its `run`.
macro_rules! block_api {
    ($t:ty) => {
        impl Engine for $t {
            fn shared(&self) -> &Shared {
                &self.shared
            }
            fn bounds_check(&self) -> bool {
                self.bounds_check
            }
            fn bounce_slot(&mut self) -> &mut Option<DmaBuffer> {
                &mut self.bounce
            }
            fn run_ops<'a>(
                &mut self,
                ops: impl IntoIterator<Item = Op<'a>>,
                depth: usize,
            ) -> Result<RunStats> {
                self.run(ops, depth)
            }
        }

        impl $t {
            /// Logical block size of the namespace in bytes.
            pub fn block_size(&self) -> Result<u32> {
                Ok(self.shared.geometry()?.block_size)
            }

            /// Capacity of the namespace in blocks.
            pub fn capacity(&self) -> Result<u64> {
                Ok(self.shared.geometry()?.capacity)
            }

            /// A DMA buffer of `len` bytes for the `*_dma` calls.
            pub fn alloc_buffer(&self, len: usize) -> Result<DmaBuffer> {
                Ok(self.shared.device.alloc_dma(len)?)
            }

            /// Runs `t` over `buf`: splits it into commands of at most `t.blocks_per_cmd`
            /// blocks (and the transfer limit) and keeps up to `t.depth` of them in flight.
            pub fn transfer_dma(&mut self, t: Transfer, buf: &DmaSlice) -> Result<RunStats> {
                transfer_dma(self, t, buf)
            }

            /// Reads `buf.len() / block_size` blocks at `lba` (`buf` must hold whole blocks).
            pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<()> {
                bounced(self, OpKind::Read, lba, buf.len(), |b, done, len| {
                    b.read(0, &mut buf[done..done + len])
                })
            }

            /// Writes `data` (whole blocks) at `lba`.
            pub fn write(&mut self, lba: u64, data: &[u8]) -> Result<()> {
                bounced(self, OpKind::Write, lba, data.len(), |b, done, len| {
                    b.write(0, &data[done..done + len])
                })
            }

            /// FLUSH: commits the volatile write cache to media.
            pub fn flush(&mut self) -> Result<()> {
                flush(self)
            }
        }

        impl partition_table::BlockSource for $t {
            fn block_size(&self) -> u32 {
                <$t>::block_size(self).unwrap_or(512)
            }
            fn num_blocks(&self) -> u64 {
                self.capacity().unwrap_or(0)
            }
            fn read_blocks(
                &mut self,
                lba: u64,
                buf: &mut [u8],
            ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
                Ok(self.read(lba, buf)?)
            }
        }
    };
}

block_api!(Controller);
block_api!(IoQueue);

//! The decode/write pipeline between the fetch and the disk: each worker checks a fetched
//! chunk's compressed sha256 and decompresses it ([`decode`]); one writer writes the chunks in
//! sequence order, reads each back and asks a syncer thread for a sync at checkpoints
//! ([`write_in_order`]). `download`, in the parent module, starts them.

use super::budget::{Held, Limits};
use super::fetch::stored;
use super::spool;
use super::{disk_error, verify_error};
use crate::error::{self, Result};
use crate::install::page::PageBuf;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use update_metadata::ChunkIndex;

/// How much of a written chunk is read back at a time: a piece this size is still in the CPU's
/// cache when it is compared, where a whole chunk read back at once is not (docs/benchmarks.md,
/// "Reading back in pieces": 5 % less CPU time for a full install).
pub(super) const READ_BACK_PIECE: usize = 128 << 10;

/// A compressed chunk on its way to a worker.
pub(super) struct Fetched {
    pub(super) seq: usize,
    pub(super) chunk: usize,
    /// Its compressed bytes, or `None` once they are only in the spool.
    pub(super) bytes: Option<Bytes>,
    pub(super) held: Held,
}

/// Where fetched chunks go, and what holds them back.
pub(super) struct Pipe<'a> {
    pub(super) limits: &'a Limits,
    pub(super) index: &'a ChunkIndex,
    /// The partition (for the spool).
    pub(super) partition: &'a PartitionFile,
    /// To the workers.
    pub(super) tx: &'a tokio::sync::mpsc::Sender<Fetched>,
    /// How many chunks are read back; gone once the writer stops.
    pub(super) written: &'a tokio::sync::watch::Receiver<usize>,
    /// Chunk `seq` is handed on only once chunk `seq - window` is read back: this bounds the
    /// chunks between the fetch and the read-back in memory, whatever the budget.
    pub(super) window: usize,
    /// Spooled chunks past the window, by sequence number: their bytes are only in the
    /// partition until the window reaches them.
    pub(super) waiting: Mutex<BTreeMap<usize, Fetched>>,
}

impl Pipe<'_> {
    fn stopped() -> error::Error {
        error::Error::Worker {
            action: "write the chunks",
            reason: "the writer stopped".to_string(),
        }
    }

    /// Spools a chunk that has arrived whole (when it fits in its place), then hands it on to
    /// the workers: at once within the window; past it, a spooled chunk waits in the partition
    /// and one that could not be spooled waits in memory (and the body with it: the server
    /// waits too). The spool is not checked here: the workers check every chunk before they
    /// decompress it, and the restart's scan checks a spooled chunk the same way.
    pub(super) async fn hand_on(
        &self,
        (seq, chunk, mut held): (usize, usize, Held),
        bytes: Bytes,
        abort: &tokio_util::sync::CancellationToken,
    ) -> Result<()> {
        let spooled = spool::fits(self.index, chunk);
        if spooled {
            let at = self.partition.at(self.index, chunk);
            spool::write(&self.partition.file, at, self.index, chunk, &bytes)
                .map_err(|e| self.partition.io_error("spool a chunk in", e))?;
            held.spooled();
        }
        let mut fetched = Fetched {
            seq,
            chunk,
            bytes: Some(bytes),
            held,
        };
        {
            let mut waiting = self
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Read under the lock, as `forward` does: a chunk put aside here is seen there.
            let written = *self.written.borrow();
            if fetched.seq >= written + self.window && spooled {
                fetched.bytes = None;
                waiting.insert(fetched.seq, fetched);
                return Ok(());
            }
        }
        let mut written = self.written.clone();
        tokio::select! {
            biased;
            () = abort.cancelled() => return error::CancelledSnafu.fail(),
            open = written.wait_for(|&w| fetched.seq < w + self.window) => {
                open.map_err(|_| Self::stopped())?;
            }
        }
        self.tx.send(fetched).await.map_err(|_| Self::stopped())
    }

    /// Hands on the spooled chunks as the window reaches them, until `done`; then all that are
    /// left, at once (no more will arrive, and the writer needs every one before a gap).
    pub(super) async fn forward(&self, done: &tokio_util::sync::CancellationToken) {
        let mut written = self.written.clone();
        loop {
            let finished = done.is_cancelled();
            let ready: Vec<Fetched> = {
                let mut waiting = self
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let w = *written.borrow_and_update();
                if finished {
                    std::mem::take(&mut *waiting).into_values().collect()
                } else {
                    let later = waiting.split_off(&(w + self.window));
                    std::mem::replace(&mut *waiting, later)
                        .into_values()
                        .collect()
                }
            };
            for fetched in ready {
                if self.tx.send(fetched).await.is_err() {
                    return;
                }
            }
            if finished {
                return;
            }
            tokio::select! {
                changed = written.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = done.cancelled() => {}
            }
        }
    }

    /// Drops the spooled chunks still waiting (the install failed; they stay in the partition).
    pub(super) fn forget(&self) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// A decompressed chunk on its way to the writer.
pub(super) struct Decoded {
    seq: usize,
    chunk: usize,
    data: Vec<u8>,
    held: Held,
}

/// Chunk-sized buffers, reused: a fresh one costs its page faults and its zeroing.
pub(super) struct Buffers {
    free: Mutex<Vec<Vec<u8>>>,
    len: usize,
}

impl Buffers {
    pub(super) fn new(len: usize) -> Buffers {
        Buffers {
            free: Mutex::new(Vec::new()),
            len,
        }
    }

    fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| vec![0u8; self.len])
    }

    fn give(&self, buf: Vec<u8>) {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(buf);
    }
}

/// Where the workers read a spooled chunk's bytes: the partition, and a chunk-sized buffer per
/// worker.
pub(super) struct SpoolReader {
    pub(super) partition: PartitionFile,
    pub(super) buf: Vec<u8>,
}

/// Chunk `chunk` of `target`'s chunk file is refused, for `reason`.
fn bad_chunk(index: &ChunkIndex, target: &str, chunk: usize, reason: String) -> error::Error {
    let (offset, length, _) = stored(index, chunk);
    error::Error::BadChunk {
        target: target.to_string(),
        chunk,
        start: offset,
        end: offset + length,
        reason,
    }
}

/// Checks chunk `chunk`'s compressed bytes against the sha256 in the index, then decompresses
/// them into `out`, which must be exactly the chunk's length. The download's workers and the
/// scan of a spool both go through here.
pub(super) fn unpack(
    index: &ChunkIndex,
    target: &str,
    chunk: usize,
    compressed: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let sha = stored(index, chunk).2;
    let bad = |reason| bad_chunk(index, target, chunk, reason);
    let actual: [u8; 32] = Sha256::digest(compressed).into();
    if actual != sha {
        return Err(bad(format!(
            "its sha256 is {}, but the index says {}",
            hex::encode(actual),
            hex::encode(sha)
        )));
    }
    let len = out.len();
    match lz4_flex::block::decompress_into(compressed, out) {
        Ok(n) if n == len => Ok(()),
        Ok(n) => Err(bad(format!("it decompresses to {n} bytes, not {len}"))),
        Err(e) => Err(bad(format!("it is not an lz4 block: {e}"))),
    }
}

/// Checks a fetched chunk's compressed bytes against the index and decompresses them ([`unpack`]),
/// reading them from the spool first if they are only there.
pub(super) fn decode(
    index: &ChunkIndex,
    target: &str,
    buffers: &Buffers,
    spooled: &mut SpoolReader,
    fetched: Fetched,
) -> Result<Decoded> {
    let range = index.range(fetched.chunk);
    let bytes: &[u8] = match &fetched.bytes {
        Some(bytes) => bytes,
        None => {
            let at = spooled.partition.at(index, fetched.chunk);
            let file = &spooled.partition.file;
            spool::read(file, at, index, fetched.chunk, &mut spooled.buf).map_err(|e| {
                let reason = format!("it cannot be read from the spool: {e}");
                bad_chunk(index, target, fetched.chunk, reason)
            })?
        }
    };
    let mut data = buffers.take();
    data.resize((range.end - range.start) as usize, 0);
    if let Err(e) = unpack(index, target, fetched.chunk, bytes, &mut data) {
        buffers.give(data);
        return Err(e);
    }
    Ok(Decoded {
        seq: fetched.seq,
        chunk: fetched.chunk,
        data,
        held: fetched.held,
    })
}

/// Writes the decoded chunks in sequence order; returns how many. Each chunk is read back
/// right after its write and compared with the bytes written (which were checked against the
/// index before they were decompressed). Every `checkpoint` bytes it asks a syncer thread for
/// a sync (and its power-cut point) and carries on writing.
pub(super) fn write_in_order(
    partition: &PartitionFile,
    index: &ChunkIndex,
    buffers: &Buffers,
    rx: std::sync::mpsc::Receiver<Result<Decoded>>,
    checkpoint: u64,
    written: &tokio::sync::watch::Sender<usize>,
) -> Result<u64> {
    let (sync_tx, sync_rx) = std::sync::mpsc::channel::<()>();
    let syncer = {
        let file = partition.file.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            for () in sync_rx {
                file.sync_data()?;
                powercut::point("updog.chunks-checkpoint");
            }
            Ok(())
        })
    };
    let mut pending: BTreeMap<usize, Decoded> = BTreeMap::new();
    let (mut next, mut since_sync) = (0usize, 0u64);
    let mut back = PageBuf::new(READ_BACK_PIECE);
    let wrote = (|| -> Result<()> {
        for decoded in rx {
            let decoded = decoded?;
            pending.insert(decoded.seq, decoded);
            while let Some(d) = pending.remove(&next) {
                partition.write_checked(index, d.chunk, &d.data, &mut back)?;
                // Written: a killed install finds it in the partition.
                drop(d.held);
                since_sync += d.data.len() as u64;
                buffers.give(d.data);
                next += 1;
                written.send_replace(next);
                if since_sync >= checkpoint {
                    let _ = sync_tx.send(());
                    since_sync = 0;
                }
            }
        }
        Ok(())
    })();
    drop(sync_tx);
    let synced = syncer.join().map_err(|_| error::Error::Worker {
        action: "sync the chunks",
        reason: "the syncer panicked".to_string(),
    })?;
    wrote?;
    synced.map_err(|e| partition.io_error("sync", e))?;
    Ok(next as u64)
}

/// The inactive partition being written: the disk's file and path, where the partition starts
/// on it, and its label (for messages).
#[derive(Debug, Clone)]
pub(super) struct PartitionFile {
    pub(super) file: Arc<File>,
    pub(super) disk: PathBuf,
    pub(super) start: u64,
    pub(super) label: String,
}

impl PartitionFile {
    /// Where chunk `chunk` starts on the disk.
    pub(super) fn at(&self, index: &ChunkIndex, chunk: usize) -> u64 {
        self.start + index.range(chunk).start
    }

    /// An I/O error of `action` (a verb that takes the partition's label) on this partition.
    pub(super) fn io_error(&self, action: &str, source: std::io::Error) -> error::Error {
        disk_error(&self.disk, &format!("{action} {}", self.label), source)
    }

    /// Writes chunk `chunk`'s bytes (already checked) in its place, reads them back
    /// [`READ_BACK_PIECE`] bytes at a time into `back` (at least that long, or as long as the
    /// chunk) and compares: every chunk written, downloaded, copied or zeroed, goes through here.
    pub(super) fn write_checked(
        &self,
        index: &ChunkIndex,
        chunk: usize,
        bytes: &[u8],
        back: &mut [u8],
    ) -> Result<()> {
        let at = self.at(index, chunk);
        self.file
            .write_all_at(bytes, at)
            .map_err(|e| self.io_error("write", e))?;
        let piece = READ_BACK_PIECE.min(back.len());
        for (k, written) in bytes.chunks(piece).enumerate() {
            let offset = k * piece;
            let back = &mut back[..written.len()];
            self.file
                .read_exact_at(back, at + offset as u64)
                .map_err(|e| self.io_error("read back", e))?;
            same(back, written, offset)
                .map_err(|reason| verify_error(&self.label, format!("chunk {chunk} {reason}")))?;
        }
        Ok(())
    }
}

/// Whether the bytes read back are the bytes written (`offset` bytes into the chunk); names the
/// first that differs.
fn same(back: &[u8], written: &[u8], offset: usize) -> std::result::Result<(), String> {
    if back == written {
        return Ok(());
    }
    let at = back
        .iter()
        .zip(written)
        .position(|(a, b)| a != b)
        .unwrap_or(back.len().min(written.len()));
    Err(format!(
        "read back differs from what was written at byte {}",
        offset + at
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_read_back_that_differs_names_the_byte_in_the_chunk() {
        let written = [7u8; 16];
        let mut back = written;
        assert_eq!(super::same(&back, &written, 4096), Ok(()));
        back[5] = 0;
        assert_eq!(
            super::same(&back, &written, 4096),
            Err("read back differs from what was written at byte 4101".to_string())
        );
    }
}

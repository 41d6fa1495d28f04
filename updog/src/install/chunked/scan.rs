//! The scan of the inactive partition, which is the resume journal: each chunk already in
//! place is kept, one found in the running set is copied (written at once, read back and
//! checked), an all-zero one is left to [`zero`], which writes it while the download runs, and
//! what is left is to be downloaded.

use super::pipeline::{PartitionFile, READ_BACK_PIECE, unpack};
use super::spool;
use crate::error::{self, Result};
use crate::install::page::PageBuf;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use update_metadata::ChunkIndex;
use update_metadata::chunks::ChunkData;
use verity::HashTree;

/// The first look at a chunk.
const QUICK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    InPlace,
    /// Its compressed bytes were in its place (a killed install's spool): decompressed there.
    Unspooled,
    Copied,
    /// All zeros, not in place: [`zero`] writes it.
    Zeroed,
    Download,
}

/// Checks chunk bytes against the tree or the index.
struct Checker<'a> {
    index: &'a ChunkIndex,
    tree: Option<&'a HashTree>,
}

impl Checker<'_> {
    /// Bytes of chunk `i` that the tree covers.
    fn covered(&self, i: usize) -> u64 {
        let range = self.index.range(i);
        match self.tree {
            Some(tree) => tree
                .params()
                .data_size()
                .clamp(range.start, range.end)
                .saturating_sub(range.start),
            None => 0,
        }
    }

    /// Whether the first bytes of a chunk may be chunk `i` (false: they cannot).
    fn maybe(&self, i: usize, first: &[u8]) -> bool {
        if self.index.chunks()[i].data == ChunkData::Zero {
            return first.iter().all(|&b| b == 0);
        }
        match self.tree {
            Some(tree) if self.covered(i) >= first.len() as u64 => {
                let block = self.index.range(i).start / u64::from(tree.params().data_block_size());
                tree.check_blocks(block, first).is_ok()
            }
            _ => true,
        }
    }

    /// Checks the whole of chunk `i`.
    fn check(&self, i: usize, bytes: &[u8]) -> std::result::Result<(), String> {
        let chunk = &self.index.chunks()[i];
        let covered = self.covered(i) as usize;
        if let Some(tree) = self.tree.filter(|_| covered > 0) {
            let block = self.index.range(i).start / u64::from(tree.params().data_block_size());
            tree.check_blocks(block, &bytes[..covered])
                .map_err(|e| format!("does not match HASH: {e}"))?;
            if covered == bytes.len() {
                return Ok(());
            }
        }
        if chunk.data == ChunkData::Zero {
            return match bytes.iter().position(|&b| b != 0) {
                None => Ok(()),
                Some(at) => Err(format!("byte {at} is not zero")),
            };
        }
        let actual: [u8; 32] = Sha256::digest(bytes).into();
        if &actual == chunk.sha256.as_bytes() {
            Ok(())
        } else {
            Err(format!(
                "sha256 {}, but the index says {}",
                hex::encode(actual),
                chunk.sha256
            ))
        }
    }
}

/// Runs `work` on each item on every core, each thread with its own buffer of `buf_len` bytes.
fn parallel(
    items: &[usize],
    work: impl Fn(usize, &mut [u8]) -> Result<()> + Sync,
    buf_len: usize,
) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 8)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let mut buf = PageBuf::new(buf_len);
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = items.get(n) else {
                            return Ok(());
                        };
                        work(i, &mut buf)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(error::Error::Worker {
                        action: "check chunks",
                        reason: "a thread panicked".to_string(),
                    })
                })
            })
            .collect()
    });
    results.into_iter().collect()
}

/// Decides each chunk's action; writes copies at once, each read back and checked.
pub(super) fn scan(
    partition: &PartitionFile,
    index: &ChunkIndex,
    tree: Option<&HashTree>,
    active: Option<(u64, u64)>,
    active_index: Option<&ChunkIndex>,
) -> Result<Vec<Action>> {
    // What a previous run wrote may still be in the page cache only (a killed process): it is
    // read as it will be on disk, because the final sync flushes every dirty page of the disk,
    // whichever run wrote it. After a power cut, only what reached the disk is read.
    let checker = Checker { index, tree };
    // The running release's chunks by content, for copies from any offset.
    let by_hash: HashMap<[u8; 32], std::ops::Range<u64>> = active_index
        .map(|ai| {
            ai.chunks()
                .iter()
                .enumerate()
                .filter(|(_, c)| c.data != ChunkData::Zero)
                .map(|(j, c)| (*c.sha256.as_bytes(), ai.range(j)))
                .collect()
        })
        .unwrap_or_default();
    let actions: Vec<Mutex<Action>> = (0..index.chunks().len())
        .map(|_| Mutex::new(Action::Download))
        .collect();
    let all: Vec<usize> = (0..index.chunks().len()).collect();
    let (file, label) = (&*partition.file, partition.label.as_str());
    let io = |action: &str, e: std::io::Error| partition.io_error(action, e);
    // Reads `len` bytes at `at` and checks them as chunk `i`, looking at the first 4 KiB first.
    let matches = |i: usize, at: u64, buf: &mut [u8]| -> Result<bool> {
        let quick = buf.len().min(QUICK);
        file.read_exact_at(&mut buf[..quick], at)
            .map_err(|e| io("read", e))?;
        if !checker.maybe(i, &buf[..quick]) {
            return Ok(false);
        }
        if buf.len() > quick {
            file.read_exact_at(&mut buf[quick..], at + quick as u64)
                .map_err(|e| io("read", e))?;
        }
        Ok(checker.check(i, buf).is_ok())
    };
    parallel(
        &all,
        |i, buf| {
            let range = index.range(i);
            let len = (range.end - range.start) as usize;
            let (buf, back) = buf.split_at_mut(buf.len() / 2);
            let buf = &mut buf[..len];
            let at = partition.at(index, i);
            let action = if matches(i, at, buf)? {
                Action::InPlace
            } else if spool::holds(index, i, buf) {
                // A killed install's spool: checked against the index before it is
                // decompressed, like a download. Anything else there is downloaded again.
                let compressed =
                    spool::read(file, at, index, i, back).map_err(|e| io("read", e))?;
                if unpack(index, label, i, compressed, buf).is_ok() {
                    partition.write_checked(index, i, buf, back)?;
                    Action::Unspooled
                } else {
                    Action::Download
                }
            } else if index.chunks()[i].data == ChunkData::Zero {
                Action::Zeroed
            } else {
                let mut candidates = Vec::new();
                if let Some((active_start, active_size)) = active {
                    if range.end <= active_size {
                        candidates.push(active_start + range.start);
                    }
                    if let Some(r) = by_hash.get(index.chunks()[i].sha256.as_bytes()) {
                        if r.end - r.start == len as u64
                            && r.start != range.start
                            && r.end <= active_size
                        {
                            candidates.push(active_start + r.start);
                        }
                    }
                }
                let mut copied = false;
                for from in candidates {
                    if matches(i, from, buf)? {
                        partition.write_checked(index, i, buf, back)?;
                        copied = true;
                        break;
                    }
                }
                if copied {
                    Action::Copied
                } else {
                    Action::Download
                }
            };
            *actions[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = action;
            Ok(())
        },
        2 * index.chunk_size() as usize,
    )?;
    Ok(actions
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .collect())
}

/// Writes zeros over each of `chunks` (all-zero chunks of the index), reads each back and checks
/// that it is zero.
pub(super) fn zero(partition: &PartitionFile, index: &ChunkIndex, chunks: &[usize]) -> Result<()> {
    let zeros = vec![0u8; index.chunk_size() as usize];
    let mut back = PageBuf::new(READ_BACK_PIECE);
    for &i in chunks {
        let range = index.range(i);
        let len = (range.end - range.start) as usize;
        partition.write_checked(index, i, &zeros[..len], &mut back)?;
    }
    Ok(())
}

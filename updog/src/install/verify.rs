//! Verifying a written set on disk, by reading it back: BOOT and HASH against the sha256 of the
//! bytes written (which came from targets whose hashes tough checked), BOOT's `verity.params`
//! from the BOOT partition, HASH's tree against their root hash, and ROOT block by block against
//! that tree.
//!
//! BOOT and HASH are written and checked first; ROOT, once synced, is read back from the
//! partition and checked on as many threads as there are cores (up to [`READ_BACK_THREADS`]),
//! each reading and hashing its own share of the blocks.

use crate::error::{self, Result};
use crate::install::page::PageBuf;
use crate::install::stream::Written;
use image_builder::ImageRegion;
use sha2::{Digest, Sha256};
use signpost::{PartitionInfo, SetPartitions};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use verity::HashTree;

/// Most threads reading ROOT back (each reads and hashes its own share of the blocks).
const READ_BACK_THREADS: usize = 4;
/// Size of each read-back read.
const READ_BACK_CHUNK: usize = 1 << 20;

fn open(disk: &Path, part: &PartitionInfo) -> Result<File> {
    File::open(disk).map_err(|e| fail(part, format!("cannot open '{}': {e}", disk.display())))
}

fn fail(part: &PartitionInfo, reason: String) -> error::Error {
    error::Error::Verify {
        partition: part.label.clone(),
        reason,
    }
}

/// Reads BOOT and HASH back from `disk` and checks them against what was written; meanwhile
/// reads `verity.params` from BOOT and the tree from HASH, checked up to the params' root hash:
/// the tree ROOT must match.
pub(crate) fn verify_boot_and_hash(
    disk: &Path,
    parts: &SetPartitions,
    boot: &Written,
    hash: &Written,
) -> Result<HashTree> {
    // BOOT and HASH must be the bytes published; each is read and hashed on a thread of its own
    // (here, if no thread can be started) while the tree is read here. The first error in that
    // order is the one reported.
    std::thread::scope(|scope| {
        let sums = [(&parts.boot, boot), (&parts.hash, hash)].map(|(part, w)| {
            let thread = std::thread::Builder::new()
                .spawn_scoped(scope, move || check_sha256(disk, part, w))
                .ok();
            (part, w, thread)
        });
        let tree = read_tree(disk, parts, hash);
        for (part, w, thread) in sums {
            match thread {
                Some(thread) => thread
                    .join()
                    .map_err(|_| fail(part, "the thread reading it back panicked".to_string()))??,
                None => check_sha256(disk, part, w)?,
            }
        }
        tree
    })
}

/// Checks that `part` holds the `w.len` bytes written, by their sha256.
fn check_sha256(disk: &Path, part: &PartitionInfo, w: &Written) -> Result<()> {
    let Some(expected) = w.sha256 else {
        return Ok(());
    };
    let actual = hash_prefix(open(disk, part)?, part.byte_range().start, w.len)
        .map_err(|e| fail(part, format!("cannot read it back: {e}")))?;
    if actual != expected {
        return Err(fail(
            part,
            format!(
                "the {} bytes read back have sha256 {}, but {} were written",
                w.len,
                hex::encode(actual),
                hex::encode(expected)
            ),
        ));
    }
    Ok(())
}

/// Reads `verity.params` from BOOT and the tree from HASH, checked up to the params' root hash.
fn read_tree(disk: &Path, parts: &SetPartitions, hash: &Written) -> Result<HashTree> {
    let part = &parts.boot;
    let params = image_builder::read_boot_params(ImageRegion::new(
        open(disk, part)?,
        part.byte_range().start,
        part.size_bytes(),
    ))
    .map_err(|e| fail(part, format!("cannot read verity.params: {e}")))?;
    if params.hash_image_size() > hash.len {
        return Err(fail(
            &parts.hash,
            format!(
                "verity.params needs a {}-byte hash image but the HASH image has {}",
                params.hash_image_size(),
                hash.len
            ),
        ));
    }
    let part = &parts.hash;
    let region = verity::Region::new(open(disk, part)?, part.byte_range().start, hash.len)
        .map_err(|e| fail(part, format!("cannot read it back: {e}")))?;
    HashTree::read(&params, region)
        .map_err(|e| fail(&parts.root, format!("ROOT does not match HASH: {e}")))
}

/// Reads ROOT back from `disk` (after it was synced) and checks every block the tree covers.
pub(crate) fn verify_root(
    disk: &Path,
    part: &PartitionInfo,
    tree: &HashTree,
    root: &Written,
) -> Result<()> {
    let params = tree.params();
    if params.data_size() > root.len {
        return Err(fail(
            part,
            format!(
                "verity.params covers {} bytes but the ROOT image has {}",
                params.data_size(),
                root.len
            ),
        ));
    }
    let block_size = u64::from(params.data_block_size());
    let blocks = params.data_blocks();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, READ_BACK_THREADS) as u64;
    // Whole chunks per thread, so that every read but the last is a full chunk.
    let chunk_blocks = (READ_BACK_CHUNK as u64 / block_size).max(1);
    let share = blocks.div_ceil(threads).div_ceil(chunk_blocks) * chunk_blocks;
    let file = open(disk, part)?;
    let start = part.byte_range().start;
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (first, end) = ((i * share).min(blocks), ((i + 1) * share).min(blocks));
                let file = &file;
                scope.spawn(move || -> Result<()> {
                    let mut buf = PageBuf::new((chunk_blocks * block_size) as usize);
                    let mut block = first;
                    while block < end {
                        let count = (end - block).min(chunk_blocks);
                        let bytes = &mut buf[..(count * block_size) as usize];
                        file.read_exact_at(bytes, start + block * block_size)
                            .map_err(|e| {
                                fail(part, format!("cannot read block {block} back: {e}"))
                            })?;
                        tree.check_blocks(block, bytes).map_err(|e| {
                            fail(part, format!("ROOT does not match HASH on disk: {e}"))
                        })?;
                        block += count;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(fail(part, "a read-back thread panicked".to_string())))
            })
            .collect()
    });
    // The first failing share names the lowest bad block.
    results.into_iter().collect()
}

fn hash_prefix(file: File, start: u64, len: u64) -> std::io::Result<[u8; 32]> {
    let mut region = verity::Region::new(file, start, len)?;
    let mut hasher = Sha256::new();
    let mut buf = PageBuf::new(1 << 20);
    let mut left = len;
    while left > 0 {
        let n = region.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the partition ended early",
            ));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.finalize().into())
}

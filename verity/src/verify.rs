//! Checking data against a hash tree: every hash block up to the root hash, then every data block.

use crate::build::{CHUNK_SIZE, read_full};
use crate::error::{self, Result};
use crate::geometry::{Geometry, salted_hash};
use crate::params::VerityParams;
use crate::superblock::{SUPERBLOCK_SIZE, Superblock};
use crate::types::DIGEST_SIZE;
use sha2::{Digest, Sha256};
use snafu::{ResultExt, ensure};
use std::io::{Read, Seek, SeekFrom};

/// Checks the first `params.data_blocks()` blocks read from `data` against the tree in
/// `hash_image` (whose position 0 is the start of the hash image; wrap a partition in
/// [`Region`](crate::Region)).
///
/// The tree is checked first, top level down from the root hash; then the data is streamed in
/// 1 MiB reads, each block against its hash in level 0. The error names the first bad hash
/// block or data block. Memory: the tree (1/128 of the data) plus the read buffer. Bytes before
/// the tree (the superblock) are not covered by the root hash and are not read here; see
/// [`read_superblock`].
pub fn verify<D: Read, H: Read + Seek>(
    params: &VerityParams,
    mut data: D,
    mut hash_image: H,
) -> Result<()> {
    let salted = Sha256::new_with_prefix(params.salt().as_bytes());
    let geometry = Geometry::new(params.data_blocks(), params.hash_block_size());
    let hash_block = params.hash_block_size() as usize;

    // The whole tree, as stored (top level first).
    let tree_len = geometry.tree_blocks() as usize * hash_block;
    let mut tree = vec![0u8; tree_len];
    let offset = params.hash_offset();
    hash_image
        .seek(SeekFrom::Start(offset))
        .and_then(|_| hash_image.read_exact(&mut tree))
        .context(error::ReadHashSnafu { offset })?;
    let block_of = |level: usize, index: u64| -> &[u8] {
        let start = (geometry.level_start[level] + index) as usize * hash_block;
        &tree[start..start + hash_block]
    };
    let levels = geometry.levels();
    let mismatch = |level: usize, index: u64| error::HashBlockMismatchSnafu {
        hash_block: params.hash_start_block() + geometry.level_start[level] + index,
        level,
        index,
        levels,
    };

    if levels > 0 {
        let top = salted_hash(&salted, block_of(levels - 1, 0));
        ensure!(
            &top == params.root_hash().as_bytes(),
            mismatch(levels - 1, 0)
        );
        for level in (0..levels - 1).rev() {
            for index in 0..geometry.level_blocks[level] {
                let digest = salted_hash(&salted, block_of(level, index));
                let parent = block_of(level + 1, index / (hash_block / DIGEST_SIZE) as u64);
                let at = (index as usize % (hash_block / DIGEST_SIZE)) * DIGEST_SIZE;
                ensure!(
                    digest == parent[at..at + DIGEST_SIZE],
                    mismatch(level, index)
                );
            }
        }
    }

    let block_size = params.data_block_size() as usize;
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut block = 0u64;
    while block < params.data_blocks() {
        let wanted = ((params.data_blocks() - block) as usize * block_size).min(CHUNK_SIZE);
        let filled =
            read_full(&mut data, &mut buf[..wanted]).context(error::ReadDataSnafu { block })?;
        ensure!(
            filled == wanted,
            error::DataTooShortSnafu {
                blocks_read: block + (filled / block_size) as u64,
                expected: params.data_blocks(),
            }
        );
        for chunk in buf[..filled].chunks(block_size) {
            let digest = salted_hash(&salted, chunk);
            let expected: &[u8] = if levels == 0 {
                params.root_hash().as_bytes()
            } else {
                let per_block = (hash_block / DIGEST_SIZE) as u64;
                let at = (block % per_block) as usize * DIGEST_SIZE;
                &block_of(0, block / per_block)[at..at + DIGEST_SIZE]
            };
            if digest != expected {
                if levels == 0 {
                    return error::SingleBlockMismatchSnafu.fail();
                }
                return error::DataBlockMismatchSnafu {
                    block,
                    block_size: params.data_block_size(),
                }
                .fail();
            }
            block += 1;
        }
    }
    Ok(())
}

/// Reads the superblock at the start of `hash_image` and checks that it agrees with `params`.
pub fn read_superblock<H: Read + Seek>(
    params: &VerityParams,
    mut hash_image: H,
) -> Result<Superblock> {
    let mut bytes = [0u8; SUPERBLOCK_SIZE];
    hash_image
        .seek(SeekFrom::Start(0))
        .and_then(|_| hash_image.read_exact(&mut bytes))
        .context(error::ReadHashSnafu { offset: 0u64 })?;
    let sb = Superblock::parse(&bytes)?;
    ensure!(
        sb.matches(params),
        error::BadSuperblockSnafu {
            reason: format!("it does not match the parameters: {sb:?}"),
        }
    );
    Ok(sb)
}

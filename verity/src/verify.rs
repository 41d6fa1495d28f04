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
    hash_image: H,
) -> Result<()> {
    let tree = HashTree::read(params, hash_image)?;
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
        tree.check_blocks(block, &buf[..filled])?;
        block += (filled / block_size) as u64;
    }
    Ok(())
}

/// A hash tree read from a hash image and checked, top level down, against the root hash of
/// its parameters: what a writer needs to check data blocks one run at a time as they stream
/// past (before writing them, or as they are read back), instead of in one pass with
/// [`verify`].
///
/// ```
/// use verity::{HashTree, TreeOptions, build_tree};
///
/// let data = vec![0x5au8; 3 * 4096];
/// let mut hash_image = Vec::new();
/// let params = build_tree(&data[..], &mut hash_image, &TreeOptions::new("a1b2".parse()?))?;
/// let tree = HashTree::read(&params, std::io::Cursor::new(&hash_image))?;
/// tree.check_blocks(1, &data[4096..])?;
/// let err = tree.check_blocks(2, &[0u8; 4096]).unwrap_err();
/// assert!(err.to_string().contains("data block 2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct HashTree {
    params: VerityParams,
    geometry: Geometry,
    salted: Sha256,
    /// The whole tree, as stored (top level first).
    tree: Vec<u8>,
}

impl HashTree {
    /// Reads the tree that `params` describe from `hash_image` (position 0 is the start of the
    /// hash image) and checks every hash block up to the root hash. Memory: the tree, 1/128 of
    /// the data with 4 KiB blocks.
    pub fn read<H: Read + Seek>(params: &VerityParams, mut hash_image: H) -> Result<HashTree> {
        let geometry = Geometry::new(params.data_blocks(), params.hash_block_size());
        let hash_block = params.hash_block_size() as usize;
        let mut tree = vec![0u8; geometry.tree_blocks() as usize * hash_block];
        let offset = params.hash_offset();
        hash_image
            .seek(SeekFrom::Start(offset))
            .and_then(|_| hash_image.read_exact(&mut tree))
            .context(error::ReadHashSnafu { offset })?;
        let tree = HashTree {
            params: params.clone(),
            geometry,
            salted: Sha256::new_with_prefix(params.salt().as_bytes()),
            tree,
        };
        tree.check_tree()?;
        Ok(tree)
    }

    /// The parameters the tree was read with.
    pub fn params(&self) -> &VerityParams {
        &self.params
    }

    fn block_of(&self, level: usize, index: u64) -> &[u8] {
        let hash_block = self.params.hash_block_size() as usize;
        let start = (self.geometry.level_start[level] + index) as usize * hash_block;
        &self.tree[start..start + hash_block]
    }

    fn check_tree(&self) -> Result<()> {
        let geometry = &self.geometry;
        let levels = geometry.levels();
        if levels == 0 {
            return Ok(());
        }
        let per_block = self.params.hash_block_size() as usize / DIGEST_SIZE;
        let mismatch = |level: usize, index: u64| error::HashBlockMismatchSnafu {
            hash_block: self.params.hash_start_block() + geometry.level_start[level] + index,
            level,
            index,
            levels,
        };
        let top = salted_hash(&self.salted, self.block_of(levels - 1, 0));
        ensure!(
            &top == self.params.root_hash().as_bytes(),
            mismatch(levels - 1, 0)
        );
        for level in (0..levels - 1).rev() {
            for index in 0..geometry.level_blocks[level] {
                let digest = salted_hash(&self.salted, self.block_of(level, index));
                let parent = self.block_of(level + 1, index / per_block as u64);
                let at = (index as usize % per_block) * DIGEST_SIZE;
                ensure!(
                    digest == parent[at..at + DIGEST_SIZE],
                    mismatch(level, index)
                );
            }
        }
        Ok(())
    }

    /// Checks the data blocks `first_block`, `first_block + 1`, ... held in `data` against
    /// their hashes in level 0 (or the root hash, for a one-block tree). `data` holds whole data
    /// blocks; blocks past the end of the tree (`params().data_blocks()`) are not covered by it
    /// and are refused. The error names the first bad block.
    pub fn check_blocks(&self, first_block: u64, data: &[u8]) -> Result<()> {
        let block_size = self.params.data_block_size();
        let whole = data.len() % block_size as usize == 0;
        let end = first_block.checked_add((data.len() / block_size as usize) as u64);
        ensure!(
            whole && end.is_some_and(|end| end <= self.params.data_blocks()),
            error::DataOutOfTreeSnafu {
                first_block,
                len: data.len() as u64,
                data_blocks: self.params.data_blocks(),
            }
        );
        let levels = self.geometry.levels();
        let per_block = (self.params.hash_block_size() as usize / DIGEST_SIZE) as u64;
        for (block, chunk) in (first_block..).zip(data.chunks(block_size as usize)) {
            let digest = salted_hash(&self.salted, chunk);
            let expected: &[u8] = if levels == 0 {
                self.params.root_hash().as_bytes()
            } else {
                let at = (block % per_block) as usize * DIGEST_SIZE;
                &self.block_of(0, block / per_block)[at..at + DIGEST_SIZE]
            };
            if digest != expected {
                if levels == 0 {
                    return error::SingleBlockMismatchSnafu.fail();
                }
                return error::DataBlockMismatchSnafu { block, block_size }.fail();
            }
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{TreeOptions, build_tree};
    use std::io::Cursor;

    fn tree_of(data: &[u8]) -> (VerityParams, Vec<u8>) {
        let mut hash_image = Vec::new();
        let options = TreeOptions::new("00ff".parse().unwrap());
        let params = build_tree(data, &mut hash_image, &options).unwrap();
        (params, hash_image)
    }

    #[test]
    fn a_hash_tree_checks_runs_of_blocks_anywhere_in_the_data() {
        let data: Vec<u8> = (0..300 * 4096).map(|i| (i / 4096 % 251) as u8).collect();
        let (params, hash_image) = tree_of(&data);
        let tree = HashTree::read(&params, Cursor::new(&hash_image)).unwrap();
        tree.check_blocks(0, &data).unwrap();
        tree.check_blocks(257, &data[257 * 4096..260 * 4096])
            .unwrap();
        let err = tree
            .check_blocks(258, &data[257 * 4096..260 * 4096])
            .unwrap_err();
        assert!(err.to_string().contains("data block 258"), "{err}");
        // Past the end of the tree, or not whole blocks: refused, not ignored.
        let err = tree.check_blocks(299, &data[..2 * 4096]).unwrap_err();
        assert!(err.to_string().contains("300 blocks"), "{err}");
        assert!(tree.check_blocks(0, &data[..100]).is_err());
    }

    #[test]
    fn a_hash_tree_that_does_not_lead_to_the_root_hash_is_refused() {
        let data = vec![9u8; 300 * 4096];
        let (params, mut hash_image) = tree_of(&data);
        let last = hash_image.len() - 1;
        hash_image[last - 4096] ^= 1;
        let err = HashTree::read(&params, Cursor::new(&hash_image)).unwrap_err();
        assert!(err.to_string().contains("hash block"), "{err}");
    }
}

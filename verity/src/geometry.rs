//! Where each level of a hash tree lies, computed exactly as the kernel and veritysetup do.

use crate::types::DIGEST_SIZE;
use sha2::{Digest, Sha256};

/// The shape of a tree over `data_blocks` blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Hash blocks in each level, level 0 (hashes of data blocks) first. Empty for one data block:
    /// then the root hash is the hash of that block, as the kernel expects.
    pub(crate) level_blocks: Vec<u64>,
    /// First hash block of each level, counted from the start of the tree. The top level is
    /// stored first, level 0 last.
    pub(crate) level_start: Vec<u64>,
}

impl Geometry {
    pub(crate) fn new(data_blocks: u64, hash_block_size: u32) -> Self {
        let per_block = u64::from(hash_block_size) / DIGEST_SIZE as u64;
        let mut level_blocks = Vec::new();
        let mut count = data_blocks;
        // One level more while the level below needs more than one hash (the kernel's rule:
        // levels = smallest L with per_block^L >= data_blocks).
        while count > 1 {
            count = count.div_ceil(per_block);
            level_blocks.push(count);
        }
        let mut level_start = vec![0; level_blocks.len()];
        let mut next = 0;
        for level in (0..level_blocks.len()).rev() {
            level_start[level] = next;
            next += level_blocks[level];
        }
        Geometry {
            level_blocks,
            level_start,
        }
    }

    pub(crate) fn levels(&self) -> usize {
        self.level_blocks.len()
    }

    /// Hash blocks of the whole tree.
    pub(crate) fn tree_blocks(&self) -> u64 {
        self.level_blocks.iter().sum()
    }
}

/// sha256(salt || block), with the salt already fed to `salted`.
pub(crate) fn salted_hash(salted: &Sha256, block: &[u8]) -> [u8; DIGEST_SIZE] {
    salted.clone().chain_update(block).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_counts_match_the_kernel_rule() {
        assert_eq!(Geometry::new(1, 4096).level_blocks, Vec::<u64>::new());
        assert_eq!(Geometry::new(2, 4096).level_blocks, vec![1]);
        assert_eq!(Geometry::new(128, 4096).level_blocks, vec![1]);
        assert_eq!(Geometry::new(129, 4096).level_blocks, vec![2, 1]);
        assert_eq!(Geometry::new(128 * 128, 4096).level_blocks, vec![128, 1]);
        assert_eq!(
            Geometry::new(128 * 128 + 1, 4096).level_blocks,
            vec![129, 2, 1]
        );
    }

    #[test]
    fn top_level_is_stored_first() {
        let g = Geometry::new(129 * 128, 4096);
        assert_eq!(g.level_blocks, vec![129, 2, 1]);
        assert_eq!(g.level_start, vec![3, 1, 0]);
        assert_eq!(g.tree_blocks(), 132);
    }
}

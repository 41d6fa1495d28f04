//! Building a hash tree while streaming the data once.

use crate::error::{self, Result};
use crate::geometry::{Geometry, salted_hash};
use crate::params::VerityParams;
use crate::superblock::{SUPERBLOCK_SIZE, Superblock};
use crate::types::{DEFAULT_BLOCK_SIZE, DIGEST_SIZE, RootHash, Salt, check_block_size};
use sha2::{Digest, Sha256};
use snafu::{ResultExt, ensure};
use std::io::{ErrorKind, Read, Write};
use uuid::Uuid;

/// Bytes read from the data at a time.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;

/// How to build a tree.
#[derive(Debug, Clone)]
pub struct TreeOptions {
    /// The salt (veritysetup uses 32 random bytes; builds that must be reproducible derive it).
    pub salt: Salt,
    /// The UUID written to the superblock (nil when `None`).
    pub uuid: Option<Uuid>,
    /// Whether to write a veritysetup superblock in the first hash block (as `veritysetup
    /// format` does by default), so the tree starts at hash block 1.
    pub superblock: bool,
    /// Data block size in bytes (default 4096).
    pub data_block_size: u32,
    /// Hash block size in bytes (default 4096).
    pub hash_block_size: u32,
}

impl TreeOptions {
    /// Options with the given salt, a superblock, no UUID and 4 KiB blocks.
    pub fn new(salt: Salt) -> Self {
        TreeOptions {
            salt,
            uuid: None,
            superblock: true,
            data_block_size: DEFAULT_BLOCK_SIZE,
            hash_block_size: DEFAULT_BLOCK_SIZE,
        }
    }
}

/// Reads `data` to its end, and writes to `hash_image` the superblock (if asked) and the hash
/// tree, top level first, each level zero-padded to whole hash blocks: the bytes `veritysetup
/// format` writes.
///
/// The data must be a whole number of data blocks. Memory: the tree is held until the end,
/// because its top is written first; that is 1/128 of the data with 4 KiB blocks (8 MiB per
/// GiB), plus a 1 MiB read buffer.
pub fn build_tree<R: Read, W: Write>(
    mut data: R,
    mut hash_image: W,
    options: &TreeOptions,
) -> Result<VerityParams> {
    check_block_size("data_block_size", options.data_block_size)?;
    check_block_size("hash_block_size", options.hash_block_size)?;
    let salted = Sha256::new_with_prefix(options.salt.as_bytes());
    let block_size = options.data_block_size as usize;

    // Level 0: the hash of each data block, in order.
    let mut level0 = Vec::new();
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut data_blocks = 0u64;
    loop {
        let filled =
            read_full(&mut data, &mut buf).context(error::ReadDataSnafu { block: data_blocks })?;
        for block in buf[..filled].chunks(block_size) {
            ensure!(
                block.len() == block_size,
                error::DataNotAlignedSnafu {
                    len: data_blocks * block_size as u64 + block.len() as u64,
                    block_size: options.data_block_size,
                }
            );
            level0.extend_from_slice(&salted_hash(&salted, block));
            data_blocks += 1;
        }
        if filled < buf.len() {
            break;
        }
    }
    ensure!(data_blocks > 0, error::DataEmptySnafu);

    let geometry = Geometry::new(data_blocks, options.hash_block_size);
    let hash_block = options.hash_block_size as usize;
    let mut levels = vec![level0];
    while levels.len() < geometry.levels() {
        let above = hash_level(&salted, &levels[levels.len() - 1], hash_block);
        levels.push(above);
    }
    let root: [u8; DIGEST_SIZE] = if geometry.levels() == 0 {
        // One data block: the root hash is its hash, and the tree is empty.
        let mut root = [0u8; DIGEST_SIZE];
        root.copy_from_slice(&levels[0]);
        levels.clear();
        root
    } else {
        // The top level is one hash block.
        let mut top = levels[levels.len() - 1].clone();
        top.resize(hash_block, 0);
        salted_hash(&salted, &top)
    };

    let hash_offset = if options.superblock {
        u64::from(options.hash_block_size)
    } else {
        0
    };
    let params = VerityParams::new(
        RootHash::new(root),
        options.salt.clone(),
        data_blocks,
        options.data_block_size,
        options.hash_block_size,
        hash_offset,
        options.uuid,
    )?;

    if options.superblock {
        let sb = Superblock::from_params(&params).to_bytes();
        hash_image.write_all(&sb).context(error::WriteHashSnafu)?;
        write_zeros(&mut hash_image, hash_block - SUPERBLOCK_SIZE)?;
    }
    for level in levels.iter().rev() {
        hash_image.write_all(level).context(error::WriteHashSnafu)?;
        let tail = level.len() % hash_block;
        if tail != 0 {
            write_zeros(&mut hash_image, hash_block - tail)?;
        }
    }
    hash_image.flush().context(error::WriteHashSnafu)?;
    Ok(params)
}

/// The level above `below`: the hash of each of its hash blocks, the last one zero-padded.
fn hash_level(salted: &Sha256, below: &[u8], hash_block: usize) -> Vec<u8> {
    let mut above = Vec::with_capacity(below.len().div_ceil(hash_block) * DIGEST_SIZE);
    let mut padded = vec![0u8; hash_block];
    for block in below.chunks(hash_block) {
        if block.len() == hash_block {
            above.extend_from_slice(&salted_hash(salted, block));
        } else {
            padded.fill(0);
            padded[..block.len()].copy_from_slice(block);
            above.extend_from_slice(&salted_hash(salted, &padded));
        }
    }
    above
}

fn write_zeros<W: Write>(out: &mut W, len: usize) -> Result<()> {
    out.write_all(&vec![0u8; len])
        .context(error::WriteHashSnafu)
}

/// Fills `buf` from `reader` until it is full or the reader ends; returns the bytes read
/// (fewer than `buf.len()` only at the end of the input).
pub fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn salt() -> Salt {
        Salt::new(vec![0x11; 32]).unwrap()
    }

    #[test]
    fn one_block_has_an_empty_tree_and_the_block_hash_as_root() {
        let data = vec![7u8; 4096];
        let mut hash = Vec::new();
        let mut options = TreeOptions::new(salt());
        options.superblock = false;
        let params = build_tree(&data[..], &mut hash, &options).unwrap();
        assert!(hash.is_empty());
        let expected: [u8; 32] = Sha256::new()
            .chain_update([0x11; 32])
            .chain_update(&data)
            .finalize()
            .into();
        assert_eq!(params.root_hash().as_bytes(), &expected);
    }

    #[test]
    fn two_blocks_make_one_padded_hash_block() {
        let data = vec![1u8; 8192];
        let mut hash = Vec::new();
        let params = build_tree(&data[..], &mut hash, &TreeOptions::new(salt())).unwrap();
        assert_eq!(hash.len(), 2 * 4096);
        assert_eq!(&hash[..8], b"verity\0\0");
        assert!(hash[64 + 4096..].iter().all(|&b| b == 0));
        assert_eq!(params.hash_image_size(), hash.len() as u64);
        assert_eq!(params.hash_start_block(), 1);
    }

    #[test]
    fn rejects_partial_blocks_and_empty_data() {
        let options = TreeOptions::new(salt());
        let err = build_tree(&[0u8; 5000][..], Vec::new(), &options).unwrap_err();
        assert!(err.to_string().contains("5000 bytes"), "{err}");
        let err = build_tree(&[0u8; 0][..], Vec::new(), &options).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}

//! The 512-byte superblock that `veritysetup format` writes at the start of a hash image.
//!
//! Layout (little-endian, as cryptsetup's `struct verity_sb`):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | signature `verity\0\0` |
//! | 8 | 4 | superblock version, 1 |
//! | 12 | 4 | hash type (format version), 1 |
//! | 16 | 16 | uuid (binary) |
//! | 32 | 32 | algorithm name, NUL-padded: `sha256` |
//! | 64 | 4 | data block size |
//! | 68 | 4 | hash block size |
//! | 72 | 8 | data blocks |
//! | 80 | 2 | salt size |
//! | 82 | 6 | padding |
//! | 88 | 256 | salt, zero-padded |
//! | 344 | 168 | padding |
//!
//! The kernel never reads it; the tree starts at the next hash block (`hash_start_block=1`).

use crate::error::{self, Result};
use crate::params::VerityParams;
use crate::types::{HashAlgorithm, MAX_SALT_SIZE, Salt};
use snafu::ensure;
use uuid::Uuid;

/// Bytes of the superblock (the rest of its hash block is zero).
pub const SUPERBLOCK_SIZE: usize = 512;

const SIGNATURE: &[u8; 8] = b"verity\0\0";

/// The fields of a veritysetup superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// The UUID of the hash device (all zero when none was given).
    pub uuid: Uuid,
    /// The hash algorithm.
    pub hash_algorithm: HashAlgorithm,
    /// Data block size in bytes.
    pub data_block_size: u32,
    /// Hash block size in bytes.
    pub hash_block_size: u32,
    /// Number of data blocks.
    pub data_blocks: u64,
    /// The salt.
    pub salt: Salt,
}

impl Superblock {
    /// The superblock describing `params` (with a nil UUID where the params carry none).
    pub fn from_params(params: &VerityParams) -> Self {
        Superblock {
            uuid: params.uuid().unwrap_or_else(Uuid::nil),
            hash_algorithm: params.hash_algorithm(),
            data_block_size: params.data_block_size(),
            hash_block_size: params.hash_block_size(),
            data_blocks: params.data_blocks(),
            salt: params.salt().clone(),
        }
    }

    /// The 512 bytes on disk.
    pub fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        b[0..8].copy_from_slice(SIGNATURE);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&1u32.to_le_bytes());
        b[16..32].copy_from_slice(self.uuid.as_bytes());
        let name = self.hash_algorithm.name().as_bytes();
        b[32..32 + name.len()].copy_from_slice(name);
        b[64..68].copy_from_slice(&self.data_block_size.to_le_bytes());
        b[68..72].copy_from_slice(&self.hash_block_size.to_le_bytes());
        b[72..80].copy_from_slice(&self.data_blocks.to_le_bytes());
        let salt = self.salt.as_bytes();
        // Salt::new caps the length at 256, so it fits in u16 and in the field.
        b[80..82].copy_from_slice(&(salt.len() as u16).to_le_bytes());
        b[88..88 + salt.len()].copy_from_slice(salt);
        b
    }

    /// Parses the 512 bytes on disk.
    pub fn parse(b: &[u8; SUPERBLOCK_SIZE]) -> Result<Self> {
        let bad = |reason: String| error::BadSuperblockSnafu { reason };
        ensure!(&b[0..8] == SIGNATURE, bad("no 'verity' signature".into()));
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        ensure!(
            u32_at(8) == 1,
            bad(format!("superblock version {} is not 1", u32_at(8)))
        );
        ensure!(
            u32_at(12) == 1,
            bad(format!("hash type {} is not 1", u32_at(12)))
        );
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[16..32]);
        let name_len = b[32..64].iter().position(|&c| c == 0).unwrap_or(32);
        let name = String::from_utf8_lossy(&b[32..32 + name_len]);
        let hash_algorithm = name.parse()?;
        let mut blocks = [0u8; 8];
        blocks.copy_from_slice(&b[72..80]);
        let salt_size = usize::from(u16::from_le_bytes([b[80], b[81]]));
        ensure!(
            salt_size <= MAX_SALT_SIZE,
            bad(format!("salt size {salt_size} is over {MAX_SALT_SIZE}"))
        );
        Ok(Superblock {
            uuid: Uuid::from_bytes(uuid),
            hash_algorithm,
            data_block_size: u32_at(64),
            hash_block_size: u32_at(68),
            data_blocks: u64::from_le_bytes(blocks),
            salt: Salt::new(b[88..88 + salt_size].to_vec())?,
        })
    }

    /// Whether the superblock agrees with `params` (the UUID only where the params carry one).
    pub fn matches(&self, params: &VerityParams) -> bool {
        self.hash_algorithm == params.hash_algorithm()
            && self.data_block_size == params.data_block_size()
            && self.hash_block_size == params.hash_block_size()
            && self.data_blocks == params.data_blocks()
            && &self.salt == params.salt()
            && params.uuid().is_none_or(|uuid| uuid == self.uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_a_bad_signature() {
        let sb = Superblock {
            uuid: Uuid::from_bytes([7; 16]),
            hash_algorithm: HashAlgorithm::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 12345,
            salt: Salt::new(vec![0x5a; 32]).unwrap(),
        };
        let mut bytes = sb.to_bytes();
        assert_eq!(&bytes[32..39], b"sha256\0");
        assert_eq!(Superblock::parse(&bytes).unwrap(), sb);
        bytes[0] = b'V';
        let err = Superblock::parse(&bytes).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");
    }
}

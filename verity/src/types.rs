//! Small validated values: the salt, the root hash, the hash algorithm and block sizes.

use crate::error::{self, Result};
use snafu::ensure;
use std::fmt;
use std::str::FromStr;

/// Size in bytes of a sha256 digest.
pub const DIGEST_SIZE: usize = 32;

/// The default data and hash block size (4 KiB), the only one Bottlerocket and this project use.
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;

/// Longest salt the veritysetup superblock can carry, in bytes.
pub const MAX_SALT_SIZE: usize = 256;

/// The hash algorithm of a tree. Only sha256 is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256, the algorithm dm-verity images use almost everywhere.
    #[default]
    Sha256,
}

impl HashAlgorithm {
    /// The name the kernel, veritysetup and `verity.params` use.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = error::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sha256" => Ok(HashAlgorithm::Sha256),
            other => error::InvalidParamSnafu {
                key: "hash_algorithm",
                reason: format!("'{other}' is not supported (only sha256)"),
            }
            .fail(),
        }
    }
}

/// The salt prepended to every block before hashing (format version 1). At most 256 bytes; may
/// be empty (written `-`, as veritysetup and the kernel table do).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Salt(Vec<u8>);

impl Salt {
    /// Validates a salt of at most [`MAX_SALT_SIZE`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        ensure!(
            bytes.len() <= MAX_SALT_SIZE,
            error::InvalidParamSnafu {
                key: "salt",
                reason: format!("{} bytes is longer than {MAX_SALT_SIZE}", bytes.len()),
            }
        );
        Ok(Salt(bytes))
    }

    /// The salt's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Salt {
    /// Lower-case hex, or `-` for an empty salt.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&hex::encode(&self.0))
        }
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt({self})")
    }
}

impl FromStr for Salt {
    type Err = error::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s == "-" {
            return Ok(Salt(Vec::new()));
        }
        let bytes = hex::decode(s).map_err(|e| error::Error::BadValue {
            key: "salt",
            value: s.to_string(),
            reason: e.to_string(),
        })?;
        Salt::new(bytes)
    }
}

/// A sha256 digest: the root hash of a tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RootHash([u8; DIGEST_SIZE]);

impl RootHash {
    /// Wraps a digest.
    pub fn new(bytes: [u8; DIGEST_SIZE]) -> Self {
        RootHash(bytes)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; DIGEST_SIZE] {
        &self.0
    }
}

impl fmt::Display for RootHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RootHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootHash({self})")
    }
}

impl FromStr for RootHash {
    type Err = error::Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut bytes = [0; DIGEST_SIZE];
        hex::decode_to_slice(s, &mut bytes).map_err(|e| error::Error::BadValue {
            key: "root_hash",
            value: s.to_string(),
            reason: format!("{e} (expected {} hex digits)", DIGEST_SIZE * 2),
        })?;
        Ok(RootHash(bytes))
    }
}

/// Checks a data or hash block size: a power of two from 512 bytes to 64 KiB.
pub(crate) fn check_block_size(key: &'static str, size: u32) -> Result<()> {
    ensure!(
        size.is_power_of_two() && (512..=65536).contains(&size),
        error::InvalidParamSnafu {
            key,
            reason: format!("{size} is not a power of two from 512 to 65536"),
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salt_round_trips_hex_and_dash() {
        let salt: Salt = "00ff10".parse().unwrap();
        assert_eq!(salt.as_bytes(), &[0, 0xff, 0x10]);
        assert_eq!(salt.to_string(), "00ff10");
        let empty: Salt = "-".parse().unwrap();
        assert_eq!(empty.to_string(), "-");
        assert!("0g".parse::<Salt>().is_err());
        assert!("abc".parse::<Salt>().is_err());
        assert!(Salt::new(vec![0; 257]).is_err());
    }

    #[test]
    fn root_hash_needs_64_hex_digits() {
        let hex = "ab".repeat(32);
        assert_eq!(hex.parse::<RootHash>().unwrap().to_string(), hex);
        let err = "ab".repeat(31).parse::<RootHash>().unwrap_err().to_string();
        assert!(err.contains("root_hash"), "{err}");
    }

    #[test]
    fn block_sizes_are_powers_of_two_in_range() {
        assert!(check_block_size("data_block_size", 4096).is_ok());
        assert!(check_block_size("data_block_size", 512).is_ok());
        assert!(check_block_size("data_block_size", 256).is_err());
        assert!(check_block_size("data_block_size", 4097).is_err());
    }
}

//! [`VerityParams`] and their text form, `verity.params`, which a BOOT image carries.

use crate::error::{self, Result};
use crate::types::{HashAlgorithm, RootHash, Salt, check_block_size};
use snafu::{OptionExt, ensure};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Everything needed to check data against a hash tree, or to set up a dm-verity device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityParams {
    root_hash: RootHash,
    salt: Salt,
    data_blocks: u64,
    data_block_size: u32,
    hash_block_size: u32,
    hash_algorithm: HashAlgorithm,
    hash_offset: u64,
    uuid: Option<Uuid>,
}

impl VerityParams {
    /// Validated parameters for format version 1 with sha256.
    ///
    /// `hash_offset` is the byte offset of the tree in the hash image (the size of the superblock's
    /// block when there is one): it must be a multiple of `hash_block_size`.
    pub fn new(
        root_hash: RootHash,
        salt: Salt,
        data_blocks: u64,
        data_block_size: u32,
        hash_block_size: u32,
        hash_offset: u64,
        uuid: Option<Uuid>,
    ) -> Result<Self> {
        check_block_size("data_block_size", data_block_size)?;
        check_block_size("hash_block_size", hash_block_size)?;
        ensure!(
            data_blocks > 0,
            error::InvalidParamSnafu {
                key: "data_blocks",
                reason: "must be at least 1",
            }
        );
        ensure!(
            hash_offset % u64::from(hash_block_size) == 0,
            error::InvalidParamSnafu {
                key: "hash_offset",
                reason: format!("{hash_offset} is not a multiple of {hash_block_size}"),
            }
        );
        Ok(VerityParams {
            root_hash,
            salt,
            data_blocks,
            data_block_size,
            hash_block_size,
            hash_algorithm: HashAlgorithm::Sha256,
            hash_offset,
            uuid,
        })
    }

    /// The root hash: the hash of the top hash block (or of the only data block).
    pub fn root_hash(&self) -> &RootHash {
        &self.root_hash
    }

    /// The salt.
    pub fn salt(&self) -> &Salt {
        &self.salt
    }

    /// Number of data blocks the tree covers.
    pub fn data_blocks(&self) -> u64 {
        self.data_blocks
    }

    /// Data block size in bytes.
    pub fn data_block_size(&self) -> u32 {
        self.data_block_size
    }

    /// Hash block size in bytes.
    pub fn hash_block_size(&self) -> u32 {
        self.hash_block_size
    }

    /// The hash algorithm.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash_algorithm
    }

    /// Byte offset of the tree in the hash image: 0 without a superblock, one hash block with.
    pub fn hash_offset(&self) -> u64 {
        self.hash_offset
    }

    /// The tree's offset in hash blocks: the `hash_start` argument of the dm table.
    pub fn hash_start_block(&self) -> u64 {
        self.hash_offset / u64::from(self.hash_block_size)
    }

    /// The UUID in the superblock, where known.
    pub fn uuid(&self) -> Option<Uuid> {
        self.uuid
    }

    /// Bytes of data the tree covers.
    pub fn data_size(&self) -> u64 {
        self.data_blocks * u64::from(self.data_block_size)
    }

    /// Bytes of the hash image: the superblock's block (if any) and the tree.
    pub fn hash_image_size(&self) -> u64 {
        let tree = crate::geometry::Geometry::new(self.data_blocks, self.hash_block_size);
        self.hash_offset + tree.tree_blocks() * u64::from(self.hash_block_size)
    }

    /// The device-mapper table line for `dmsetup create NAME --readonly --table ...`:
    /// `0 <sectors> verity 1 <data_dev> <hash_dev> <dbs> <hbs> <data_blocks> <hash_start> sha256 <root> <salt>`.
    pub fn dm_table(&self, data_dev: &str, hash_dev: &str) -> String {
        format!(
            "0 {} verity 1 {data_dev} {hash_dev} {} {} {} {} {} {} {}",
            self.data_size() / 512,
            self.data_block_size,
            self.hash_block_size,
            self.data_blocks,
            self.hash_start_block(),
            self.hash_algorithm,
            self.root_hash,
            self.salt,
        )
    }
}

/// The keys of `verity.params`, in the order they are written.
const KEYS: [&str; 9] = [
    "version",
    "hash_algorithm",
    "data_block_size",
    "hash_block_size",
    "data_blocks",
    "hash_start_block",
    "salt",
    "root_hash",
    "uuid",
];

impl fmt::Display for VerityParams {
    /// The `verity.params` text: one `key=value` per line, in a fixed order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "version=1")?;
        writeln!(f, "hash_algorithm={}", self.hash_algorithm)?;
        writeln!(f, "data_block_size={}", self.data_block_size)?;
        writeln!(f, "hash_block_size={}", self.hash_block_size)?;
        writeln!(f, "data_blocks={}", self.data_blocks)?;
        writeln!(f, "hash_start_block={}", self.hash_start_block())?;
        writeln!(f, "salt={}", self.salt)?;
        writeln!(f, "root_hash={}", self.root_hash)?;
        if let Some(uuid) = self.uuid {
            writeln!(f, "uuid={}", uuid.hyphenated())?;
        }
        Ok(())
    }
}

impl FromStr for VerityParams {
    type Err = error::Error;

    /// Parses `verity.params`: blank lines and `#` comments are skipped; known keys must appear
    /// at most once and all but `uuid` must appear; unknown keys are ignored, so that a later
    /// writer may add keys that this reader does not need.
    fn from_str(text: &str) -> Result<Self> {
        let mut values: [Option<&str>; KEYS.len()] = [None; KEYS.len()];
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').context(error::ParamsLineSnafu {
                line: index + 1,
                reason: format!("'{line}' is not key=value"),
            })?;
            let key = key.trim();
            if let Some(slot) = KEYS.iter().position(|k| *k == key) {
                ensure!(
                    values[slot].is_none(),
                    error::DuplicateKeySnafu {
                        key: KEYS[slot],
                        line: index + 1
                    }
                );
                values[slot] = Some(value.trim());
            }
        }
        let get = |key: &'static str| -> Result<&str> {
            let slot = KEYS.iter().position(|k| *k == key).unwrap_or(0);
            values[slot].context(error::MissingKeySnafu { key })
        };
        let version = get("version")?;
        ensure!(
            version == "1",
            error::BadValueSnafu {
                key: "version",
                value: version,
                reason: "only hash format version 1 is supported",
            }
        );
        get("hash_algorithm")?.parse::<HashAlgorithm>()?;
        let data_block_size = number::<u32>("data_block_size", get("data_block_size")?)?;
        let hash_block_size = number::<u32>("hash_block_size", get("hash_block_size")?)?;
        let data_blocks = number::<u64>("data_blocks", get("data_blocks")?)?;
        let hash_start = number::<u64>("hash_start_block", get("hash_start_block")?)?;
        let salt = get("salt")?.parse::<Salt>()?;
        let root_hash = get("root_hash")?.parse::<RootHash>()?;
        let uuid = match values[KEYS.len() - 1] {
            None => None,
            Some(text) => Some(Uuid::parse_str(text).map_err(|e| error::Error::BadValue {
                key: "uuid",
                value: text.to_string(),
                reason: e.to_string(),
            })?),
        };
        let hash_offset =
            hash_start
                .checked_mul(u64::from(hash_block_size))
                .context(error::BadValueSnafu {
                    key: "hash_start_block",
                    value: hash_start.to_string(),
                    reason: "too large",
                })?;
        VerityParams::new(
            root_hash,
            salt,
            data_blocks,
            data_block_size,
            hash_block_size,
            hash_offset,
            uuid,
        )
    }
}

fn number<T: FromStr<Err = std::num::ParseIntError>>(key: &'static str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|e: std::num::ParseIntError| error::Error::BadValue {
            key,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> VerityParams {
        VerityParams::new(
            RootHash::new([0xab; 32]),
            "0011".parse().unwrap(),
            300,
            4096,
            4096,
            4096,
            None,
        )
        .unwrap()
    }

    #[test]
    fn text_round_trips() {
        let params = example();
        let text = params.to_string();
        assert!(text.contains("hash_start_block=1\n"), "{text}");
        assert_eq!(text.parse::<VerityParams>().unwrap(), params);
    }

    #[test]
    fn uuid_round_trips() {
        let uuid = Uuid::parse_str("0e7c1e4c-63ad-4d4a-9a51-2f3b7e8d9f10").unwrap();
        let params = VerityParams::new(
            RootHash::new([1; 32]),
            Salt::default(),
            1,
            4096,
            4096,
            0,
            Some(uuid),
        )
        .unwrap();
        let text = params.to_string();
        assert!(text.contains("salt=-\n"));
        assert_eq!(text.parse::<VerityParams>().unwrap(), params);
    }

    #[test]
    fn unknown_keys_comments_and_blank_lines_are_skipped() {
        let text = format!("# made by hand\n\n{}future_key=whatever\n", example());
        assert_eq!(text.parse::<VerityParams>().unwrap(), example());
    }

    fn parse_err(text: &str) -> String {
        text.parse::<VerityParams>().unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key() {
        let good = example().to_string();
        let missing = good.replace("data_blocks=300\n", "");
        assert!(parse_err(&missing).contains("'data_blocks' is missing"));
        let dup = format!("{good}salt=00\n");
        assert!(parse_err(&dup).contains("'salt' appears twice"));
        let bad_hex = good.replace("salt=0011", "salt=00zz");
        assert!(parse_err(&bad_hex).contains("'salt'"));
        let bad_num = good.replace("data_blocks=300", "data_blocks=3x0");
        assert!(parse_err(&bad_num).contains("'data_blocks' value '3x0'"));
        let bad_alg = good.replace("sha256", "sha1");
        assert!(parse_err(&bad_alg).contains("'hash_algorithm'"));
        let bad_version = good.replace("version=1", "version=0");
        assert!(parse_err(&bad_version).contains("'version'"));
        let bad_size = good.replace("data_block_size=4096", "data_block_size=4000");
        assert!(parse_err(&bad_size).contains("'data_block_size'"));
        assert!(parse_err("garbage\n").contains("line 1"));
        for err in [missing, dup, bad_hex, bad_num] {
            assert!(!parse_err(&err).contains('\n'));
        }
    }

    #[test]
    fn dm_table_line() {
        assert_eq!(
            example().dm_table("/dev/sda3", "/dev/sda4"),
            format!(
                "0 2400 verity 1 /dev/sda3 /dev/sda4 4096 4096 300 1 sha256 {} 0011",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn hash_image_size_counts_superblock_and_levels() {
        // 300 blocks: level 0 has 3 blocks, level 1 has 1.
        assert_eq!(example().hash_image_size(), 5 * 4096);
    }
}

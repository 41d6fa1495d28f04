//! dm-verity hash trees, format version 1, byte for byte as the kernel and `veritysetup` use them.
//!
//! A release's HASH image is the hash tree of its ROOT image: sha256 over 4 KiB data blocks with
//! a salt prepended (`sha256(salt || block)`), then over 4 KiB blocks of those hashes, level by
//! level, until one block remains; the root hash is the hash of that block. Levels are stored
//! top first, each zero-padded to whole blocks, after an optional veritysetup superblock (then
//! the tree starts at hash block 1). [`build_tree`] writes such an image while streaming the data
//! once; [`verify`] checks data against one (after writing partitions, and at emulated boot);
//! [`VerityParams`] are what BOOT carries, as the text file `verity.params`, and give the
//! device-mapper table line ([`VerityParams::dm_table`]).
//!
//! ```
//! use verity::{Region, Salt, TreeOptions, VerityParams, build_tree, verify};
//!
//! let data = vec![0x5au8; 3 * 4096];
//! let mut hash_image = Vec::new();
//! let salt: Salt = "a1b2c3".parse()?;
//! let params = build_tree(&data[..], &mut hash_image, &TreeOptions::new(salt))?;
//!
//! // What BOOT carries, read back.
//! let text = params.to_string();
//! let params: VerityParams = text.parse()?;
//! verify(&params, &data[..], std::io::Cursor::new(&hash_image))?;
//!
//! // A flipped byte is found, and named.
//! let mut bad = data.clone();
//! bad[4096 + 7] ^= 1;
//! let err = verify(&params, &bad[..], std::io::Cursor::new(&hash_image)).unwrap_err();
//! assert!(err.to_string().contains("data block 1"));
//! # let _ = Region::new(std::io::Cursor::new(data), 0, 4096)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # `verity.params`
//!
//! One `key=value` per line; blank lines and lines starting with `#` are skipped:
//!
//! ```text
//! version=1
//! hash_algorithm=sha256
//! data_block_size=4096
//! hash_block_size=4096
//! data_blocks=2560
//! hash_start_block=1
//! salt=5c3a...(hex, or - for none)
//! root_hash=9f86...(64 hex digits)
//! uuid=0e7c1e4c-63ad-4d4a-9a51-2f3b7e8d9f10
//! ```
//!
//! All keys but `uuid` are required; each known key at most once. Unknown keys are ignored,
//! so that a later writer can add keys an older reader does not need. See the crate README.
//!
//! # Testing
//!
//! `cargo nextest run -p verity` runs unit tests, property tests (build then verify, then a
//! flipped byte anywhere in data or tree is named) and the cross-checks with `veritysetup`
//! (cryptsetup-bin), which are skipped with a message when it is missing, and fail under
//! `CI=true`.
#![deny(missing_docs)]

mod build;
mod error;
mod geometry;
mod params;
mod region;
mod superblock;
mod types;
mod verify;

pub use build::{TreeOptions, build_tree, read_full};
pub use error::{Error, Result};
pub use params::VerityParams;
pub use region::Region;
pub use superblock::{SUPERBLOCK_SIZE, Superblock};
pub use types::{DEFAULT_BLOCK_SIZE, DIGEST_SIZE, HashAlgorithm, MAX_SALT_SIZE, RootHash, Salt};
pub use uuid::Uuid;
pub use verify::{HashTree, read_superblock, verify};

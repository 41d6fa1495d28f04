//! The error type of the verity crate.

use snafu::Snafu;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong building, verifying or parsing dm-verity data.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// Reading the data (the filesystem image or partition) failed.
    #[snafu(display("Failed to read data block {block}: {source}"))]
    ReadData {
        /// The data block being read.
        block: u64,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The data is not a whole number of data blocks.
    #[snafu(display(
        "Failed to build hash tree for data of {len} bytes: not a multiple of the {block_size}-byte data block size"
    ))]
    DataNotAligned {
        /// Bytes of data read.
        len: u64,
        /// The data block size.
        block_size: u32,
    },

    /// The data is empty.
    #[snafu(display("Failed to build hash tree: the data is empty"))]
    DataEmpty,

    /// The data ended before `data_blocks` blocks were read.
    #[snafu(display(
        "Failed to verify data: it ends after {blocks_read} of {expected} data blocks"
    ))]
    DataTooShort {
        /// Whole blocks read before the end.
        blocks_read: u64,
        /// Blocks the parameters call for.
        expected: u64,
    },

    /// A run of data given to [`HashTree::check_blocks`](crate::HashTree::check_blocks) is not
    /// whole blocks within the tree.
    #[snafu(display(
        "Failed to verify data: {len} bytes from data block {first_block} are not whole blocks within the {data_blocks} blocks the tree covers"
    ))]
    DataOutOfTree {
        /// The first block of the run.
        first_block: u64,
        /// Bytes in the run.
        len: u64,
        /// Blocks the tree covers.
        data_blocks: u64,
    },

    /// Writing the hash image failed.
    #[snafu(display("Failed to write hash image: {source}"))]
    WriteHash {
        /// The I/O error.
        source: std::io::Error,
    },

    /// Reading the hash image failed.
    #[snafu(display("Failed to read hash image at byte {offset}: {source}"))]
    ReadHash {
        /// Byte offset in the hash image.
        offset: u64,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A data block does not match its hash in level 0 of the tree.
    #[snafu(display(
        "Failed to verify data block {block} (byte {}): it does not match its hash in the tree",
        block * u64::from(*block_size)
    ))]
    DataBlockMismatch {
        /// Index of the first bad data block.
        block: u64,
        /// The data block size, to name the byte offset.
        block_size: u32,
    },

    /// A hash block does not match its hash in the level above (or the root hash).
    #[snafu(display(
        "Failed to verify hash block {hash_block} (tree level {level}, index {index}): it does not match {}",
        if *level + 1 == *levels { "the root hash".to_string() } else { format!("its hash in level {}", level + 1) }
    ))]
    HashBlockMismatch {
        /// Absolute index of the hash block in the hash image (counting the superblock's block).
        hash_block: u64,
        /// Tree level (0 = hashes of data blocks).
        level: usize,
        /// Index of the block within its level.
        index: u64,
        /// Number of levels of the tree.
        levels: usize,
    },

    /// A one-block data image whose hash does not match the root hash.
    #[snafu(display("Failed to verify data block 0: it does not match the root hash"))]
    SingleBlockMismatch,

    /// A value given for the parameters or options is not supported.
    #[snafu(display("Failed to accept verity parameter '{key}': {reason}"))]
    InvalidParam {
        /// The parameter's name.
        key: &'static str,
        /// Why it is not accepted.
        reason: String,
    },

    /// A line of a `verity.params` file is malformed.
    #[snafu(display("Failed to parse verity.params line {line}: {reason}"))]
    ParamsLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A known key appears twice in a `verity.params` file.
    #[snafu(display("Failed to parse verity.params: key '{key}' appears twice (line {line})"))]
    DuplicateKey {
        /// The key.
        key: &'static str,
        /// Line of the second occurrence.
        line: usize,
    },

    /// A required key is missing from a `verity.params` file.
    #[snafu(display("Failed to parse verity.params: required key '{key}' is missing"))]
    MissingKey {
        /// The key.
        key: &'static str,
    },

    /// A value in a `verity.params` file cannot be parsed.
    #[snafu(display("Failed to parse verity.params key '{key}' value '{value}': {reason}"))]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The superblock of a hash image is missing or malformed.
    #[snafu(display("Failed to read verity superblock: {reason}"))]
    BadSuperblock {
        /// What is wrong with it.
        reason: String,
    },
}

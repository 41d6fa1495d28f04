//! The crate's error type. Messages read `Failed to <verb> '<subject>': <source>` and carry the
//! disk, partition or path the operator needs; a refused transition reads
//! `Cannot <action> on '<disk>': <state>`.

use snafu::Snafu;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in signpost.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// The disk (file or block device) could not be opened.
    #[snafu(display("Failed to open disk '{}': {source}", path.display()))]
    OpenDisk {
        /// The disk's path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// A disk image file could not be created or sized.
    #[snafu(display("Failed to create disk image '{}': {source}", path.display()))]
    CreateImage {
        /// The image's path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// `create-disk` was pointed at something that already exists.
    #[snafu(display(
        "Failed to create disk image '{}': it already exists (pass --force to overwrite its partition table)",
        path.display()
    ))]
    ImageExists {
        /// The image's path.
        path: PathBuf,
    },

    /// Reading the partition table failed at the I/O level.
    #[snafu(display("Failed to read the GPT on '{disk}': {source}"))]
    ReadTable {
        /// The disk's name.
        disk: String,
        /// The I/O error.
        source: io::Error,
    },

    /// Neither copy of the GPT carries a GPT signature.
    #[snafu(display(
        "Failed to read the GPT on '{disk}': no GPT found (no 'EFI PART' signature in the primary or backup header)"
    ))]
    NoGpt {
        /// The disk's name.
        disk: String,
    },

    /// Both copies of the GPT are damaged.
    #[snafu(display(
        "corrupt primary and backup GPT on '{disk}' (primary: {primary}; backup: {backup})"
    ))]
    CorruptTable {
        /// The disk's name.
        disk: String,
        /// Why the primary copy was refused.
        primary: String,
        /// Why the backup copy was refused.
        backup: String,
    },

    /// gptman could not encode the table.
    #[snafu(display("Failed to encode the GPT for '{disk}': {source}"))]
    EncodeTable {
        /// The disk's name.
        disk: String,
        /// gptman's error.
        source: gptman::Error,
    },

    /// Writing or syncing the partition table failed.
    #[snafu(display("Failed to write the GPT on '{disk}': {source}"))]
    WriteTable {
        /// The disk's name.
        disk: String,
        /// The I/O error.
        source: io::Error,
    },

    /// The disk does not hold two complete partition sets and a PRIVATE partition.
    #[snafu(display("Failed to find the partition sets on '{disk}': {missing}"))]
    MissingSets {
        /// The disk's name.
        disk: String,
        /// What is missing or misplaced.
        missing: String,
    },

    /// A transition's precondition does not hold; nothing was written.
    #[snafu(display("Cannot {action} on '{disk}': {reason}"))]
    Refused {
        /// What was asked, e.g. "upgrade to inactive set B".
        action: String,
        /// The disk's name.
        disk: String,
        /// The state that refused it.
        reason: String,
    },

    /// The active set could not be determined.
    #[snafu(display("Failed to find the active set on '{disk}': tried {tried}"))]
    NoActiveSet {
        /// The disk's name.
        disk: String,
        /// Every source tried and why it did not answer.
        tried: String,
    },

    /// The bootloader's choice found no bootable set.
    #[snafu(display("Failed to choose a set to boot on '{disk}': no bootable set ({states})"))]
    NoBootableSet {
        /// The disk's name.
        disk: String,
        /// Both sets' flags.
        states: String,
    },

    /// The layout does not fit the disk.
    #[snafu(display(
        "Failed to create the partition layout on '{disk}': disk too small: the layout needs {needed_mib} MiB ({needed} bytes), the disk has {given} bytes"
    ))]
    DiskTooSmall {
        /// The disk's name.
        disk: String,
        /// Bytes the layout needs.
        needed: u64,
        /// The same in MiB.
        needed_mib: u64,
        /// Bytes the disk has.
        given: u64,
    },

    /// The layout asked for is not valid (e.g. a zero-sized partition).
    #[snafu(display("Failed to create the partition layout on '{disk}': {reason}"))]
    InvalidLayout {
        /// The disk's name.
        disk: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The booted-set marker could not be written.
    #[snafu(display("Failed to write the booted-set marker '{}': {source}", path.display()))]
    WriteMarker {
        /// The marker's path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// No `--disk` was given and the disk under `/` could not be found.
    #[snafu(display("Failed to find the disk under '/': {reason}; pass --disk"))]
    FindDisk {
        /// Why discovery failed.
        reason: String,
    },

    /// Another process (updog, the update API, another signpost) holds the update lock.
    #[snafu(display(
        "Failed to take the update lock '{}': it is held by {holder}",
        path.display()
    ))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as the lock file says.
        holder: String,
    },

    /// The lock file could not be created, opened, locked or written.
    #[snafu(display("Failed to {verb} '{}': {source}", path.display()))]
    LockIo {
        /// What was being done.
        verb: &'static str,
        /// The lock file or its directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// The status could not be serialised.
    #[snafu(display("Failed to serialise the status of '{disk}': {source}"))]
    SerializeStatus {
        /// The disk's name.
        disk: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
}

impl Error {
    /// The exit code the `signpost` binary uses for this error: 4 when another process holds
    /// the update lock (as updog's), otherwise 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Locked { .. } => 4,
            _ => 1,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

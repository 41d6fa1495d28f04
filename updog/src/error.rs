//! The crate's error type. Messages are one line and read `Failed to <verb> '<subject>': <cause>`,
//! naming the file, URL, target, field or partition the operator needs.

use snafu::Snafu;
use std::path::PathBuf;

/// Everything that can go wrong in updog.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// A file could not be read, written or created.
    #[snafu(display("Failed to {verb} '{}': {source}", path.display()))]
    Io {
        /// What was being done.
        verb: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// `updog.toml` is not valid TOML.
    #[snafu(display("Failed to parse config '{}': {reason}", path.display()))]
    ConfigSyntax {
        /// The config file.
        path: PathBuf,
        /// The parser's message, on one line.
        reason: String,
    },

    /// A field of `updog.toml` is missing or has a bad value.
    #[snafu(display("Failed to read config '{}': field '{field}': {reason}", path.display()))]
    ConfigField {
        /// The config file.
        path: PathBuf,
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A state file of ours (seed, trusted state, failed versions, lock) holds garbage.
    #[snafu(display("Failed to parse '{}': {reason}", path.display()))]
    StateFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// `etc/os-release` could not be understood.
    #[snafu(display("Failed to read the running version from '{}': {source}", path.display()))]
    OsRelease {
        /// The os-release file.
        path: PathBuf,
        /// The parse error.
        #[snafu(source(from(image_builder::Error, Box::new)))]
        source: Box<image_builder::Error>,
    },

    /// Another updater holds the lock.
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

    /// The HTTP client could not be built (bad proxy settings, TLS).
    #[snafu(display("Failed to set up the HTTP client: {reason}"))]
    HttpClient {
        /// Why.
        reason: String,
    },

    /// The TUF repository could not be loaded (signatures, expiry, versions, transport).
    #[snafu(display("Failed to load the TUF repository at '{url}': {source}"))]
    LoadRepo {
        /// The metadata base URL.
        url: String,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// A loaded metadata role's version is below what this node already trusted.
    #[snafu(display(
        "Failed to accept TUF metadata from '{url}': {role} version {version} is below version {floor} that this node already trusted (rollback attack?)"
    ))]
    Rollback {
        /// The metadata base URL.
        url: String,
        /// The role.
        role: &'static str,
        /// The version offered.
        version: u64,
        /// The version already trusted.
        floor: u64,
    },

    /// A target could not be fetched or failed its length or hash check.
    #[snafu(display("Failed to fetch target '{target}': {source}"))]
    FetchTarget {
        /// The target name.
        target: String,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// A target the manifest names is not in the signed targets metadata.
    #[snafu(display(
        "Failed to find target '{target}' in the repository's signed targets metadata"
    ))]
    MissingTarget {
        /// The target name.
        target: String,
    },

    /// A target name is not valid.
    #[snafu(display("Failed to use target name '{target}': {source}"))]
    TargetName {
        /// The name.
        target: String,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// manifest.json is invalid.
    #[snafu(display("Failed to parse manifest '{target}': {source}"))]
    Manifest {
        /// The target name.
        target: String,
        /// The parse error.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// The manifest has no migration path between the versions.
    #[snafu(display("Failed to find the migrations from {from} to {to}: {source}"))]
    MigrationPath {
        /// Running version.
        from: semver::Version,
        /// New version.
        to: semver::Version,
        /// The manifest's error.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// The repository could not be cached for offline migration.
    #[snafu(display("Failed to cache the repository in '{}': {source}", path.display()))]
    Cache {
        /// The cache directory.
        path: PathBuf,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// `--image V` names a version the repository does not offer to this node.
    #[snafu(display(
        "Failed to find version {version} for {variant}/{arch} in the manifest (or it is above max_version)"
    ))]
    NoSuchVersion {
        /// The version asked for.
        version: semver::Version,
        /// The node's variant.
        variant: String,
        /// The node's architecture.
        arch: String,
    },

    /// A signpost operation failed (disk, table, refused transition).
    #[snafu(display("Failed to {action}: {source}"))]
    Disk {
        /// What was being done.
        action: String,
        /// signpost's error.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },

    /// Reading or writing the disk failed.
    #[snafu(display("Failed to {action} on '{}': {source}", disk.display()))]
    DiskIo {
        /// What was being done.
        action: String,
        /// The disk.
        disk: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// An image decompressed to more bytes than its partition holds.
    #[snafu(display(
        "Failed to write image '{target}' into partition {partition}: it decompresses to more than the partition's {capacity} bytes (refused at that byte; a decompression bomb or the wrong image)"
    ))]
    TooLarge {
        /// The target.
        target: String,
        /// The partition's label.
        partition: String,
        /// The partition's size.
        capacity: u64,
    },

    /// An image is not a valid lz4 frame.
    #[snafu(display("Failed to decompress image '{target}': {source}"))]
    Decompress {
        /// The target.
        target: String,
        /// The decoder's error.
        source: std::io::Error,
    },

    /// A written set did not verify when read back.
    #[snafu(display("Failed to verify the image written to {partition}: {reason}"))]
    Verify {
        /// The partition's label.
        partition: String,
        /// What did not match.
        reason: String,
    },

    /// A chunk fetched for an image failed its check; nothing of it was written.
    #[snafu(display(
        "Failed to verify chunk {chunk} of '{target}' (bytes {start}..{end} of the chunk file): {reason}; it was not written"
    ))]
    BadChunk {
        /// The image's target name.
        target: String,
        /// The chunk's number in the index.
        chunk: usize,
        /// Where it is in the chunk file.
        start: u64,
        /// Where it ends.
        end: u64,
        /// What did not match.
        reason: String,
    },

    /// A chunk index is not valid.
    #[snafu(display("Failed to parse chunk index '{target}': {source}"))]
    ChunkIndex {
        /// The index's target name.
        target: String,
        /// What is wrong (names the field).
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// A byte range of a chunk file could not be fetched.
    #[snafu(display("Failed to fetch bytes {start}..{end} of '{url}': {reason}"))]
    FetchRange {
        /// The URL.
        url: String,
        /// The range's start.
        start: u64,
        /// Its end.
        end: u64,
        /// Why.
        reason: String,
    },

    /// The install was cancelled (SIGTERM, Ctrl-C, or the caller's token).
    #[snafu(display(
        "Failed to finish the install: cancelled; the inactive set is left unbootable"
    ))]
    Cancelled,

    /// A blocking task panicked or was dropped.
    #[snafu(display("Failed to {action}: the worker thread stopped: {reason}"))]
    Worker {
        /// What was being done.
        action: &'static str,
        /// Why.
        reason: String,
    },

    /// The async runtime could not be started.
    #[snafu(display("Failed to start the async runtime: {source}"))]
    Runtime {
        /// The I/O error.
        source: std::io::Error,
    },

    /// The reboot command failed.
    #[snafu(display("Failed to reboot with '{command}': {reason}"))]
    Reboot {
        /// The command line.
        command: String,
        /// Why.
        reason: String,
    },

    /// JSON output could not be produced.
    #[snafu(display("Failed to serialise {what}: {source}"))]
    Serialize {
        /// What.
        what: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
}

/// `Result` with updog's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The exit code the `updog` binary uses for this error (see the README): 4 when another
    /// updater holds the lock, otherwise 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Locked { .. } => 4,
            _ => 1,
        }
    }
}

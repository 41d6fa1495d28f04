//! The crate's errors: one variant per failure site, each naming what the operator needs.

use snafu::Snafu;
use std::path::PathBuf;

/// `message` on one line, control characters escaped (a parser's message can quote the input,
/// and a JSON string in a document can hold a newline: `"op": "re\nname"`).
pub(crate) use update_metadata::error::one_line;

/// The result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading, writing or migrating a datastore.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A key name that is not valid.
    #[snafu(display("Invalid key '{key}': {reason}"))]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it is refused.
        reason: String,
    },

    /// A metadata key name that is not valid.
    #[snafu(display("Invalid metadata key '{name}': {reason}"))]
    InvalidMetadataKey {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },

    /// A file or directory could not be read.
    #[snafu(display("Failed to read '{}': {source}", path.display()))]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A file, directory or link could not be written.
    #[snafu(display("Failed to write '{}': {source}", path.display()))]
    Write {
        /// What could not be written.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A file or directory could not be removed.
    #[snafu(display("Failed to remove '{}': {source}", path.display()))]
    Remove {
        /// What could not be removed.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A file, directory or link could not be renamed.
    #[snafu(display("Failed to rename '{}' to '{}': {source}", from.display(), to.display()))]
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// Data could not be made durable.
    #[snafu(display("Failed to sync '{}': {source}", path.display()))]
    Sync {
        /// What was being synced.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A file in the datastore does not hold one JSON value.
    #[snafu(display("Failed to parse the value in '{}': {source}", path.display()))]
    ParseValue {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },

    /// A value that cannot be stored as given.
    #[snafu(display("Failed to store '{key}': {reason}"))]
    InvalidValue {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },

    /// A file name in the datastore that is not a percent-encoded key segment.
    #[snafu(display("Failed to decode the file name '{}': {reason}", path.display()))]
    InvalidFileName {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// There is no datastore where one was expected.
    #[snafu(display("Failed to find a datastore in '{}': 'current' does not exist", path.display()))]
    NoDatastore {
        /// The datastore root.
        path: PathBuf,
    },

    /// The `current -> vM -> vM.m -> vM.m.p -> vM.m.p_<random>` chain is not well formed.
    #[snafu(display("Failed to follow the version links at '{}': {reason}", path.display()))]
    BrokenChain {
        /// The link that is wrong.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// A version that cannot name a datastore directory.
    #[snafu(display("Failed to use version '{version}' for a datastore: {reason}"))]
    InvalidVersion {
        /// The version.
        version: String,
        /// Why.
        reason: String,
    },

    /// The migration state file could not be parsed or written.
    #[snafu(display("Failed to parse the migration state '{}': {source}", path.display()))]
    ParseState {
        /// The state file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },

    /// The migration state names a directory that is not there.
    #[snafu(display("Failed to use the migration state '{}': {reason}", path.display()))]
    InvalidState {
        /// The state file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// os-release has no usable `VERSION_ID`.
    #[snafu(display("Failed to read the booted version from '{}': {reason}", path.display()))]
    OsRelease {
        /// The os-release file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// A path that cannot be made into a file:// URL.
    #[snafu(display("Failed to make a file URL of '{}'", path.display()))]
    FileUrl {
        /// The path.
        path: PathBuf,
    },

    /// The cached TUF repository could not be loaded (signatures, hashes, root chain).
    #[snafu(display("Failed to load the cached repository '{}': {source}", path.display()))]
    LoadRepository {
        /// The metadata directory.
        path: PathBuf,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// A target could not be read from the cache or failed verification.
    #[snafu(display("Failed to read target '{name}' from the cache: {source}"))]
    ReadTarget {
        /// The target.
        name: String,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// A target the manifest names is not in the cached repository's targets.json.
    #[snafu(display("Failed to find target '{name}' in the cached repository"))]
    MissingTarget {
        /// The target.
        name: String,
    },

    /// A target name that tough refuses.
    #[snafu(display("Failed to use target name '{name}': {source}"))]
    TargetName {
        /// The name.
        name: String,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// manifest.json could not be parsed or has no path between the versions.
    #[snafu(display("Failed to {action}: {source}"))]
    Manifest {
        /// What was being done.
        action: String,
        /// The cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// A migration target could not be decompressed (lz4 frame).
    #[snafu(display("Failed to decompress migration '{name}': {source}"))]
    Decompress {
        /// The migration.
        name: String,
        /// The cause.
        source: std::io::Error,
    },

    /// The sealed in-memory copy of an executable migration could not be made.
    #[snafu(display("Failed to seal migration '{name}' in memory: {source}"))]
    Seal {
        /// The migration.
        name: String,
        /// The cause.
        source: std::io::Error,
    },

    /// An executable migration could not be started.
    #[snafu(display("Failed to start migration '{name}': {source}"))]
    Spawn {
        /// The migration.
        name: String,
        /// The cause.
        source: std::io::Error,
    },

    /// An executable migration exited unsuccessfully.
    #[snafu(display("Failed to run migration '{name}' {direction}: {status}: {stderr}"))]
    MigrationFailed {
        /// The migration.
        name: String,
        /// forward or backward.
        direction: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// Its stderr, on one line.
        stderr: String,
    },

    /// A declarative migration document that does not parse.
    #[snafu(display("Failed to parse declarative migration '{name}': {}", one_line(source)))]
    ParseMigration {
        /// The migration.
        name: String,
        /// The cause.
        source: serde_json::Error,
    },

    /// A declarative migration document that parses but is not valid.
    #[snafu(display("Failed to validate declarative migration '{name}': {reason}"))]
    InvalidMigration {
        /// The migration.
        name: String,
        /// Why.
        reason: String,
    },

    /// An operation of a declarative migration refused the datastore.
    #[snafu(display(
        "Failed to apply migration '{name}' {direction}, operation {index} ({op}): {reason}"
    ))]
    Operation {
        /// The migration.
        name: String,
        /// forward or backward.
        direction: String,
        /// The operation's position in the document, from 1.
        index: usize,
        /// A short description of the operation.
        op: String,
        /// Why.
        reason: String,
    },

    /// An operation of a declarative migration failed on the datastore (not a refusal: a
    /// write, a read or a key the operation builds).
    #[snafu(display(
        "Failed to apply migration '{name}' {direction}, operation {index} ({op}): {source}"
    ))]
    OperationFailed {
        /// The migration.
        name: String,
        /// forward or backward.
        direction: String,
        /// The operation's position in the document, from 1.
        index: usize,
        /// A short description of the operation.
        op: String,
        /// The cause.
        source: Box<Error>,
    },

    /// An executable migration exited 0 but left no `live/` in its target directory.
    #[snafu(display(
        "Failed to run migration '{name}' {direction}: it exited 0 but wrote no '{}' directory",
        path.display()
    ))]
    NoLiveOutput {
        /// The migration.
        name: String,
        /// forward or backward.
        direction: String,
        /// The `live/` directory it should have written.
        path: PathBuf,
    },

    /// A directory handed to an executable migration could not be made absolute (it runs in
    /// `/`).
    #[snafu(display("Failed to make '{}' absolute: {source}", path.display()))]
    AbsolutePath {
        /// The path as given.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// The async runtime for reading the cache could not be started.
    #[snafu(display("Failed to start the async runtime: {source}"))]
    Runtime {
        /// The cause.
        source: std::io::Error,
    },

    /// A crash injected by a test after a durable step.
    #[snafu(display("Failed to continue after durable step {number} ({step}): injected crash"))]
    Crashed {
        /// The step's number, from 1.
        number: usize,
        /// The step.
        step: String,
    },
}

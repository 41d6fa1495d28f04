//! The errors of repo-tools: one variant per failure site, each naming what the operator needs.

use snafu::Snafu;
use std::path::PathBuf;

/// Result alias for repo-tools.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while keeping a repository.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[snafu(display("Failed to read '{}': {source}", path.display()))]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A file or directory could not be written.
    #[snafu(display("Failed to write '{}': {source}", path.display()))]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// The repository's top directory could not be created (to lock it, before a publish that
    /// creates the repository).
    #[snafu(display("Failed to create repository '{}': {source}", path.display()))]
    CreateRepoDir {
        /// The repository's top directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// The repository's top directory could not be opened to lock it.
    #[snafu(display("Failed to open repository '{}' to lock it: {source}", path.display()))]
    OpenRepoDir {
        /// The repository's top directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// The repository's lock could not be taken (other than by waiting for its holder).
    #[snafu(display("Failed to lock repository '{}': {source}", path.display()))]
    LockRepo {
        /// The repository's top directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A variant or arch that is not a plain name (it would reach outside the repository).
    #[snafu(display(
        "Failed to use {flag} '{name}': it must be a non-empty name of ASCII letters, digits, '.', '_' and '-', not starting with '.'"
    ))]
    BadDirName {
        /// The flag it was given with.
        flag: &'static str,
        /// What was given.
        name: String,
    },

    /// A file that must not be overwritten exists.
    #[snafu(display("Refusing to overwrite '{}': it already exists", path.display()))]
    Exists {
        /// The file.
        path: PathBuf,
    },

    /// A key could not be generated.
    #[snafu(display("Failed to generate a {kind} key"))]
    GenerateKey {
        /// The key type.
        kind: String,
    },

    /// A key file could not be used.
    #[snafu(display("Failed to load key '{}': {source}", path.display()))]
    LoadKey {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A key file holds no private key tough can use.
    #[snafu(display("Failed to load key '{}': not a PEM private key (ed25519, ECDSA P-256 or RSA)", path.display()))]
    NotAKey {
        /// The key file.
        path: PathBuf,
    },

    /// A JSON document could not be parsed.
    #[snafu(display("Failed to parse '{}': {source}", path.display()))]
    ParseJson {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },

    /// A JSON document could not be serialised.
    #[snafu(display("Failed to serialise {what}: {source}"))]
    SerializeJson {
        /// What was serialised.
        what: String,
        /// The cause.
        source: serde_json::Error,
    },

    /// tough refused an operation.
    #[snafu(display("Failed to {action}: {source}"))]
    Tough {
        /// What was attempted.
        action: String,
        /// The cause.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// tough's metadata schema refused an operation.
    #[snafu(display("Failed to {action}: {source}"))]
    ToughSchema {
        /// What was attempted.
        action: String,
        /// The cause.
        #[snafu(source(from(tough::schema::Error, Box::new)))]
        source: Box<tough::schema::Error>,
    },

    /// tough refused to compute a key id.
    #[snafu(display("Failed to compute the key id of '{}': {source}", path.display()))]
    KeyId {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[snafu(source(from(tough::schema::Error, Box::new)))]
        source: Box<tough::schema::Error>,
    },

    /// A role's threshold is not met by the signatures made.
    #[snafu(display(
        "Threshold not met for role '{role}' in {which}: {valid} valid signature(s) of {threshold} required"
    ))]
    Threshold {
        /// The role.
        role: String,
        /// Which root's rules (the new root, the previous root).
        which: String,
        /// Valid signatures.
        valid: u64,
        /// Required signatures.
        threshold: u64,
    },

    /// A signing key is not listed in root for any role it was given for.
    #[snafu(display("Key '{}' (id {keyid}) is not in root.json for any role", path.display()))]
    KeyNotInRoot {
        /// The key file.
        path: PathBuf,
        /// Its key id.
        keyid: String,
    },

    /// A key given for a timestamp-only refresh that the root does not list for timestamp.
    #[snafu(display(
        "Failed to sign timestamp.json with key '{}' (id {keyid}): it is not a timestamp key of {root}",
        path.display()
    ))]
    NotTimestampKey {
        /// The key file.
        path: PathBuf,
        /// Its key id.
        keyid: String,
        /// The root that decides (`N.root.json`).
        root: String,
    },

    /// A timestamp-only refresh whose new timestamp would outlive the snapshot or targets.
    #[snafu(display(
        "Failed to refresh '{}' alone: {role} expires {role_expires}, before the new timestamp would ({expires}); run a full refresh",
        path.display()
    ))]
    RoleExpiresFirst {
        /// The timestamp file.
        path: PathBuf,
        /// The role that expires first.
        role: String,
        /// When it expires.
        role_expires: jiff::Timestamp,
        /// When the new timestamp would expire.
        expires: jiff::Timestamp,
    },

    /// A timestamp-only refresh whose version cannot rise.
    #[snafu(display(
        "Failed to raise the version of '{}': it is already {previous}, the highest there is",
        path.display()
    ))]
    TimestampVersion {
        /// The timestamp file.
        path: PathBuf,
        /// The current version.
        previous: u64,
    },

    /// A key id to remove that the root does not hold.
    #[snafu(display(
        "Failed to remove key id '{}' from '{}': the root holds no key with that id",
        keyid.escape_debug(),
        path.display()
    ))]
    NoSuchKey {
        /// The root file.
        path: PathBuf,
        /// The key id given.
        keyid: String,
    },

    /// A role named on the command line is unknown.
    #[snafu(display("Unknown role '{role}': expected root, snapshot, targets or timestamp"))]
    UnknownRole {
        /// What was given.
        role: String,
    },

    /// A threshold of zero was asked for.
    #[snafu(display("Failed to set the threshold of role '{role}': it must be at least 1"))]
    ZeroThreshold {
        /// The role.
        role: String,
    },

    /// A root cannot be used because it is unsigned or malformed.
    #[snafu(display("Root '{}' is not usable: {reason}", path.display()))]
    BadRoot {
        /// The root file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// No root metadata was found where the repository should be.
    #[snafu(display("No N.root.json in '{}': create the repository with `repo-tool publish --root ...`", path.display()))]
    NoRoot {
        /// The metadata directory.
        path: PathBuf,
    },

    /// A time or duration argument could not be parsed.
    #[snafu(display("Failed to parse time '{input}': {source}"))]
    ParseTime {
        /// The text given.
        input: String,
        /// The cause.
        source: jiff::Error,
    },

    /// A directory could not be turned into a URL.
    #[snafu(display("Failed to make a file:// URL of '{}'", path.display()))]
    FileUrl {
        /// The directory.
        path: PathBuf,
    },

    /// A URL could not be parsed.
    #[snafu(display("Failed to parse URL '{url}': {source}"))]
    ParseUrl {
        /// The URL.
        url: String,
        /// The cause.
        source: url::ParseError,
    },

    /// The manifest could not be changed or read.
    #[snafu(display("Failed to {action} manifest.json: {source}"))]
    Manifest {
        /// What was attempted.
        action: String,
        /// The cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// A release named on the command line is not in the manifest.
    #[snafu(display("Version {version} of {variant}/{arch} is not in manifest.json"))]
    NoSuchRelease {
        /// Variant.
        variant: String,
        /// Arch.
        arch: String,
        /// The version.
        version: String,
    },

    /// An input file of a release is missing.
    #[snafu(display("Failed to publish: {what} '{}' does not exist", path.display()))]
    MissingInput {
        /// What the file is.
        what: String,
        /// The file.
        path: PathBuf,
    },

    /// An image or compressed migration that is not an lz4 frame at all.
    #[snafu(display("Failed to publish: {what} '{}' is not an lz4 frame: {reason}", path.display()))]
    NotLz4 {
        /// What the file is.
        what: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// An image or compressed migration that ends inside an lz4 frame.
    #[snafu(display("Failed to publish: {what} '{}' is truncated: it ends inside an lz4 frame", path.display()))]
    TruncatedLz4 {
        /// What the file is.
        what: String,
        /// The file.
        path: PathBuf,
    },

    /// An image or compressed migration with an lz4 frame that does not decode.
    #[snafu(display("Failed to publish: {what} '{}' is a corrupt lz4 frame: {reason}", path.display()))]
    CorruptLz4 {
        /// What the file is.
        what: String,
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },

    /// A declarative migration the node's migrator would refuse (its message names the file).
    #[snafu(display("{source}"))]
    Migration {
        /// The migrator's refusal.
        source: Box<migrator::Error>,
    },

    /// The release is already in the manifest.
    #[snafu(display(
        "Version {version} of {variant}/{arch} is already in manifest.json; publish a new version"
    ))]
    ReleaseExists {
        /// Variant.
        variant: String,
        /// Arch.
        arch: String,
        /// The version.
        version: String,
    },

    /// Migrations were given for the first release, which has nothing to migrate from.
    #[snafu(display(
        "Failed to publish {version}: migrations were given but there is no earlier version to migrate from (use --migrations-from)"
    ))]
    NoMigrationBase {
        /// The version.
        version: String,
    },

    /// A chunk size outside what the chunk index allows.
    #[snafu(display(
        "Failed to chunk images: chunk size {chunk_size} is not a power of two between 4096 and 67108864"
    ))]
    BadChunkSize {
        /// The size given.
        chunk_size: u64,
    },

    /// Something that cannot happen did.
    #[snafu(display("Internal error: expected {what}"))]
    Internal {
        /// What was expected.
        what: String,
    },

    /// A target name was refused.
    #[snafu(display("Invalid target name '{name}': {source}"))]
    TargetName {
        /// The name.
        name: String,
        /// The cause.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// The async runtime could not start.
    #[snafu(display("Failed to start the async runtime: {source}"))]
    Runtime {
        /// The cause.
        source: std::io::Error,
    },

    /// validate found problems.
    #[snafu(display("Repository '{}' has {} problem(s): {}", path.display(), problems.len(), problems.join("; ")))]
    Invalid {
        /// The metadata directory or URL.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<String>,
    },

    /// check-expirations found roles expiring too soon.
    #[snafu(display("{}", expiring.join("; ")))]
    Expiring {
        /// One line per role.
        expiring: Vec<String>,
    },
}

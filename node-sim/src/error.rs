//! Errors of the node emulator.

use snafu::Snafu;
use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the emulator itself (as opposed to a boot that fails, which is an outcome).
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A file of the node could not be read or written.
    #[snafu(display("Failed to {action} '{}': {source}", path.display()))]
    Io {
        /// What was attempted.
        action: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The disk could not be used.
    #[snafu(display("Failed to {action}: {source}"))]
    Disk {
        /// What was attempted.
        action: String,
        /// The cause.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },
    /// A status file could not be parsed.
    #[snafu(display("Failed to parse '{}': {source}", path.display()))]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The health-check configuration is invalid.
    #[snafu(display("Failed to read health checks from '{origin}': {source}"))]
    HealthConfig {
        /// Where the configuration came from.
        origin: String,
        /// The cause.
        source: toml::de::Error,
    },
    /// A health check names no command.
    #[snafu(display("Health check '{name}' in '{origin}' has an empty command"))]
    EmptyCommand {
        /// The check.
        name: String,
        /// Where the configuration came from.
        origin: String,
    },
    /// Confirming the datastore failed after the set was marked.
    #[snafu(display("Failed to confirm the datastore: {source}"))]
    Confirm {
        /// The cause.
        #[snafu(source(from(migrator::Error, Box::new)))]
        source: Box<migrator::Error>,
    },
    /// The first release could not be fetched or written.
    #[snafu(display("Failed to install {version} into set A: {source}"))]
    Provision {
        /// The version.
        version: String,
        /// The cause.
        #[snafu(source(from(updog::Error, Box::new)))]
        source: Box<updog::Error>,
    },
    /// The repository has no such release.
    #[snafu(display("Version {version} of {variant}/{arch} is not in the repository"))]
    NoSuchVersion {
        /// The version.
        version: String,
        /// The variant.
        variant: String,
        /// The architecture.
        arch: String,
    },
    /// The booted image's `etc/os-release` is not valid.
    #[snafu(display("Failed to parse '{}': {source}", path.display()))]
    OsRelease {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[snafu(source(from(image_builder::Error, Box::new)))]
        source: Box<image_builder::Error>,
    },
    /// A set's BOOT holds no valid verity parameters.
    #[snafu(display("Failed to read the verity parameters of set {set}: {source}"))]
    BootParams {
        /// The set.
        set: String,
        /// The cause.
        #[snafu(source(from(image_builder::Error, Box::new)))]
        source: Box<image_builder::Error>,
    },
    /// The node booted too often without settling.
    #[snafu(display("The node did not settle after {boots} boots"))]
    Unsettled {
        /// How many boots were tried.
        boots: u32,
    },
}

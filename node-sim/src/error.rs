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
    /// An argument of `create` would make a configuration updog refuses.
    #[snafu(display("Failed to use {flag}: {reason}"))]
    Argument {
        /// The flag.
        flag: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The disk size of `create` cannot hold the partition layout.
    #[snafu(display("Failed to size the disk at {disk_mib} MiB: {reason}"))]
    DiskSize {
        /// The size asked for.
        disk_mib: u64,
        /// Why it does not do.
        reason: String,
    },
    /// `create` was pointed at a sysroot that holds a disk already.
    #[snafu(display(
        "Failed to create a node in '{}': '{}' already exists; remove '{}' to start over",
        sysroot.display(),
        disk.display(),
        sysroot.display()
    ))]
    NodeExists {
        /// The sysroot.
        sysroot: PathBuf,
        /// The disk found in it.
        disk: PathBuf,
    },
    /// `create` was given `--disk`.
    #[snafu(display(
        "Failed to create a node on '{}': create makes the disk at '<sysroot>/{}', where updog and signpost find it; leave out --disk",
        disk.display(),
        signpost::discover::NODE_DISK_IMAGE
    ))]
    CreateWithDisk {
        /// The disk given.
        disk: PathBuf,
    },
    /// A path given for the node could not be made absolute.
    #[snafu(display("Failed to make '{}' absolute: {source}", path.display()))]
    Absolute {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node booted too often without settling.
    #[snafu(display("The node did not settle after {boots} boots"))]
    Unsettled {
        /// How many boots were tried.
        boots: u32,
    },
}

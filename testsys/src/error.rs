//! Errors of the test support crate: each names what it was doing.

use snafu::Snafu;
use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while setting up a test world.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[snafu(display("Failed to {action} '{}': {source}", path.display()))]
    Io {
        /// What was attempted.
        action: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Building release images failed.
    #[snafu(display("Failed to build release {version}: {source}"))]
    Build {
        /// The version.
        version: String,
        /// The cause.
        #[snafu(source(from(image_builder::Error, Box::new)))]
        source: Box<image_builder::Error>,
    },
    /// A repository operation failed.
    #[snafu(display("Failed to {action}: {source}"))]
    Repo {
        /// What was attempted.
        action: String,
        /// The cause.
        #[snafu(source(from(repo_tools::Error, Box::new)))]
        source: Box<repo_tools::Error>,
    },
    /// A disk operation failed.
    #[snafu(display("Failed to {action}: {source}"))]
    Disk {
        /// What was attempted.
        action: String,
        /// The cause.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },
    /// An image does not fit its partition.
    #[snafu(display("Image '{}' ({size} bytes) does not fit partition {partition} ({capacity} bytes)", path.display()))]
    TooBig {
        /// The image.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The partition label.
        partition: String,
        /// The partition size.
        capacity: u64,
    },
    /// Reading a release back from the disk failed.
    #[snafu(display("Failed to read back {what} from set A: {source}"))]
    ReadBack {
        /// What was read.
        what: String,
        /// The cause.
        #[snafu(source(from(image_builder::Error, Box::new)))]
        source: Box<image_builder::Error>,
    },
    /// No served target has a name ending in the suffix asked for.
    #[snafu(display("Failed to find a served target ending in '{suffix}' in '{}'", dir.display()))]
    NoTarget {
        /// The suffix.
        suffix: String,
        /// The targets directory searched.
        dir: PathBuf,
    },
    /// The async runtime or the HTTP server failed.
    #[snafu(display("Failed to run the HTTP server: {source}"))]
    Server {
        /// The cause.
        source: std::io::Error,
    },
}

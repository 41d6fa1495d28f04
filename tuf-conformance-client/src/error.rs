//! The client's errors: one variant per failure site, each naming what it was working on.

use snafu::Snafu;
use std::path::PathBuf;

/// A failure of the client; the binary prints it on one line and exits 1.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A file or directory operation failed.
    #[snafu(display("Failed to {verb} '{}': {source}", path.display()))]
    Io {
        /// What was being done.
        verb: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// The command needs an option that was not given.
    #[snafu(display("Failed to run '{command}': {option} is required"))]
    MissingOption {
        /// The command.
        command: &'static str,
        /// The missing option.
        option: &'static str,
    },

    /// A URL on the command line does not parse.
    #[snafu(display("Failed to parse the URL '{url}': {source}"))]
    ParseUrl {
        /// The URL as given.
        url: String,
        /// The cause.
        source: url::ParseError,
    },

    /// A metadata file is not TUF metadata.
    #[snafu(display("Failed to parse '{}': {reason}", path.display()))]
    ParseMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The async runtime could not start.
    #[snafu(display("Failed to start the async runtime: {source}"))]
    Runtime {
        /// The cause.
        source: std::io::Error,
    },

    /// updog's configuration or transport could not be set up.
    #[snafu(display("Failed to set up the HTTP client: {source}"))]
    Setup {
        /// updog's error.
        #[snafu(source(from(updog::Error, Box::new)))]
        source: Box<updog::Error>,
    },

    /// The TUF refresh (updog's load through tough, then the version floor) failed.
    #[snafu(display("Failed to refresh the metadata from '{url}': {source}"))]
    Refresh {
        /// The metadata URL.
        url: String,
        /// updog's error (tough's, or the floor's).
        #[snafu(source(from(updog::Error, Box::new)))]
        source: Box<updog::Error>,
    },

    /// A target name is not a valid TUF target path.
    #[snafu(display("Failed to use the target name '{name}': {source}"))]
    TargetName {
        /// The name as given.
        name: String,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// No trusted targets metadata lists the target.
    #[snafu(display("Failed to find the target '{name}': no trusted targets metadata lists it"))]
    TargetNotFound {
        /// The target name.
        name: String,
    },

    /// tough's search would check the target against other metadata than the specification's.
    #[snafu(display(
        "Failed to download the target '{name}': the delegation that tough would trust for it is not the one the specification's search selects"
    ))]
    SearchMismatch {
        /// The target name.
        name: String,
    },

    /// Fetching or verifying a target failed (a transport error, a length or hash mismatch).
    #[snafu(display("Failed to download the target '{name}': {source}"))]
    FetchTarget {
        /// The target name.
        name: String,
        /// tough's error.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

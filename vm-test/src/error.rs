//! Errors of the machine harness.

use snafu::Snafu;
use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the harness from building or running a machine.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[snafu(display("Failed to {action} '{}': {source}", path.display()))]
    Io {
        /// What was attempted.
        action: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An external tool could not be started.
    #[snafu(display("Failed to run '{tool}': {source}"))]
    Spawn {
        /// The tool.
        tool: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An external tool failed.
    #[snafu(display("Failed to {action}: '{command}' exited with {status}: {stderr}"))]
    Tool {
        /// What was attempted.
        action: String,
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its stderr.
        stderr: String,
    },
    /// The kernel or one of its modules is missing or unusable.
    #[snafu(display("Failed to use the kernel in '{}': {reason}", dir.display()))]
    Kernel {
        /// The kernel directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A release, repository or node could not be built.
    #[snafu(display("Failed to {action}: {source}"))]
    Build {
        /// What was attempted.
        action: String,
        /// The cause.
        #[snafu(source(from(testsys::Error, Box::new)))]
        source: Box<testsys::Error>,
    },
    /// Release images could not be built.
    #[snafu(display("Failed to build release {version}: {source}"))]
    Image {
        /// The version.
        version: String,
        /// The cause.
        #[snafu(source(from(image_builder::Error, Box::new)))]
        source: Box<image_builder::Error>,
    },
    /// The disk's partition table could not be used.
    #[snafu(display("Failed to {action}: {source}"))]
    Disk {
        /// What was attempted.
        action: String,
        /// The cause.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },
    /// The factory datastore could not be written.
    #[snafu(display("Failed to seed the datastore in '{}': {source}", path.display()))]
    Datastore {
        /// The datastore.
        path: PathBuf,
        /// The cause.
        #[snafu(source(from(migrator::Error, Box::new)))]
        source: Box<migrator::Error>,
    },
    /// A file the guest wrote could not be parsed.
    #[snafu(display("Failed to parse '{}': {source}", path.display()))]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// qemu did not end in time.
    #[snafu(display("The machine did not power off within {secs} s; serial log '{}' ends: {tail}", log.display()))]
    Hung {
        /// The limit.
        secs: u64,
        /// The serial log.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
}

//! The error type of the image-builder crate.

use snafu::Snafu;
use std::path::PathBuf;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong building or reading back release images.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// A value of the release spec is not acceptable.
    #[snafu(display("Failed to accept release {field} '{value}': {reason}"))]
    InvalidSpec {
        /// The spec field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },

    /// A tool the build needs is not installed.
    #[snafu(display(
        "Failed to find tool '{tool}' on PATH or in /usr/sbin, /sbin (install e2fsprogs)"
    ))]
    MissingTool {
        /// The tool's name.
        tool: &'static str,
    },

    /// A tool could not be started.
    #[snafu(display("Failed to run '{tool}' for '{}': {source}", image.display()))]
    SpawnTool {
        /// The tool.
        tool: &'static str,
        /// The image it was building.
        image: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A tool exited with an error.
    #[snafu(display("Failed to build '{}' with {tool} ({status}): {stderr}", image.display()))]
    ToolFailed {
        /// The tool.
        tool: &'static str,
        /// The image it was building.
        image: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error, on one line.
        stderr: String,
    },

    /// A file or directory could not be read, written or created.
    #[snafu(display("Failed to {verb} '{}': {source}", path.display()))]
    Io {
        /// What was being done.
        verb: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// An entry of the root tree cannot go into the image.
    #[snafu(display("Failed to stage '{}': {reason}", path.display()))]
    Unstageable {
        /// The entry.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// An image does not fit its maximum size.
    #[snafu(display(
        "Failed to fit image {image}: {size} bytes is more than the maximum of {max} bytes"
    ))]
    TooLarge {
        /// The image (ROOT, HASH or BOOT).
        image: &'static str,
        /// Its size.
        size: u64,
        /// The maximum.
        max: u64,
    },

    /// Building or reading the verity tree failed.
    #[snafu(display("Failed to {verb} '{}': {source}", path.display()))]
    Verity {
        /// What was being done.
        verb: &'static str,
        /// The image.
        path: PathBuf,
        /// The verity error.
        source: verity::Error,
    },

    /// An image could not be opened as ext4.
    #[snafu(display("Failed to open {image} image as ext4: {source}"))]
    OpenExt4 {
        /// The image (ROOT or BOOT).
        image: &'static str,
        /// The reader's error.
        source: ext4_view::Ext4Error,
    },

    /// A file could not be read from an ext4 image.
    #[snafu(display("Failed to read '{path}' from {image} image: {source}"))]
    ReadExt4 {
        /// The image (ROOT or BOOT).
        image: &'static str,
        /// The file's path in the image.
        path: &'static str,
        /// The reader's error.
        source: ext4_view::Ext4Error,
    },

    /// A file in an image is larger than such a file can be.
    #[snafu(display("Failed to read '{path}' from {image} image: {size} bytes is over {max}"))]
    FileTooLarge {
        /// The image (ROOT or BOOT).
        image: &'static str,
        /// The file's path in the image.
        path: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },

    /// A text file in an image is not UTF-8.
    #[snafu(display("Failed to read '{path}' from {image} image: not UTF-8"))]
    NotUtf8 {
        /// The image (ROOT or BOOT).
        image: &'static str,
        /// The file's path in the image.
        path: &'static str,
    },

    /// The verity parameters in BOOT do not parse.
    #[snafu(display("Failed to parse 'verity.params' from BOOT image: {source}"))]
    BootParams {
        /// The parse error.
        source: verity::Error,
    },

    /// `etc/os-release` in ROOT does not parse, or lacks a field.
    #[snafu(display("Failed to parse 'etc/os-release' from ROOT image: {reason}"))]
    OsRelease {
        /// What is wrong.
        reason: String,
    },
}

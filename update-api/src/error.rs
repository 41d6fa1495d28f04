//! The crate's errors: one variant per failure site, each message one line.

use snafu::Snafu;
use std::path::PathBuf;

/// Everything that can go wrong in the server or the client.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[snafu(display("Failed to {verb} '{}': {source}", path.display()))]
    Io {
        /// What was being done.
        verb: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A document could not be serialised.
    #[snafu(display("Failed to serialise {what}: {source}"))]
    Serialize {
        /// What.
        what: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },

    /// `etc/os-release` could not be read or parsed.
    #[snafu(display("Failed to read the running image from '{}': {source}", path.display()))]
    OsRelease {
        /// The os-release file.
        path: PathBuf,
        /// Why.
        #[snafu(source(from(updog::Error, Box::new)))]
        source: Box<updog::Error>,
    },

    /// `etc/os-release` could not be parsed.
    #[snafu(display("Failed to parse '{}': {source}", path.display()))]
    ParseOsRelease {
        /// The os-release file.
        path: PathBuf,
        /// Why.
        #[snafu(source(from(image_builder::Error, Box::new)))]
        source: Box<image_builder::Error>,
    },

    /// The partition table could not be read.
    #[snafu(display("Failed to {action}: {source}"))]
    Disk {
        /// What was being done.
        action: String,
        /// signpost's error.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },

    /// An updog operation failed (config, refresh, install, apply, revert, reboot, the lock).
    #[snafu(display("Failed to {action}: {source}"))]
    Updog {
        /// What was being done.
        action: &'static str,
        /// updog's error.
        #[snafu(source(from(updog::Error, Box::new)))]
        source: Box<updog::Error>,
    },

    /// The API socket could not be bound or served.
    #[snafu(display("Failed to {verb} the API socket '{}': {source}", path.display()))]
    Socket {
        /// bind, serve, connect.
        verb: &'static str,
        /// The socket.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// Another server answers on the API socket.
    #[snafu(display(
        "Failed to listen on the API socket '{}': another server answers on it",
        path.display()
    ))]
    SocketInUse {
        /// The socket.
        path: PathBuf,
    },

    /// An HTTP exchange over the socket failed.
    #[snafu(display("Failed {method} request to '{uri}': {source}"))]
    Http {
        /// The method.
        method: String,
        /// The URI.
        uri: String,
        /// hyper's error.
        source: hyper::Error,
    },

    /// A request could not be built (bad method or URI).
    #[snafu(display("Failed to build the {method} request to '{uri}': {source}"))]
    BuildRequest {
        /// The method.
        method: String,
        /// The URI.
        uri: String,
        /// The http crate's error.
        source: hyper::http::Error,
    },

    /// The server answered with an error status. The text is Bottlerocket's apiclient's, which
    /// brupop parses for `Status <code>`.
    #[snafu(display(
        "Failed {method} request to '{uri}': Status {code} when {method}ing {uri}: {body}"
    ))]
    Status {
        /// The method.
        method: String,
        /// The URI.
        uri: String,
        /// The HTTP status code.
        code: u16,
        /// The response body (the server's one-line reason).
        body: String,
    },

    /// A response was not the JSON document expected.
    #[snafu(display("Failed to parse {what}: {source}"))]
    ParseResponse {
        /// What was parsed.
        what: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },

    /// The command the client waited for finished, but not successfully.
    #[snafu(display("Failed to {command}: status '{status}' ({exit_status}): {stderr}"))]
    Command {
        /// The command (`refresh`, `prepare`, ...).
        command: String,
        /// Its `cmd_status`.
        status: String,
        /// Its `exit_status`.
        exit_status: i64,
        /// Its `stderr`.
        stderr: String,
    },

    /// The client gave up waiting for a command's result.
    #[snafu(display(
        "Failed to see the result of {method} {uri}: timed out after {waited:?}, unsure of result"
    ))]
    TimedOut {
        /// The method.
        method: String,
        /// The URI.
        uri: String,
        /// How long it waited.
        waited: std::time::Duration,
    },

    /// The client could not read the status often enough while waiting.
    #[snafu(display(
        "Failed to check the update status {failures} times after {method} {uri}, unsure of result"
    ))]
    StatusCheck {
        /// The method.
        method: String,
        /// The URI.
        uri: String,
        /// How many checks failed.
        failures: u32,
    },

    /// `apiclient update cancel` found nothing to cancel.
    #[snafu(display("Failed to cancel: nothing to cancel in state {state}"))]
    NothingToCancel {
        /// The update state.
        state: String,
    },

    /// The async runtime could not be started.
    #[snafu(display("Failed to start the async runtime: {source}"))]
    Runtime {
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The exit code the binaries use for this error (see the README): 4 when the server
    /// answered 423 (a command runs or another updater holds the update lock: retry later; the
    /// code updog exits with when another updater holds the lock), 1 for every other runtime
    /// error (usage errors are clap's 2).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Status { code: 423, .. } => 4,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_has_its_own_exit_code_and_other_refusals_are_errors() {
        let status = |code| Error::Status {
            method: "POST".into(),
            uri: "/actions/prepare-update".into(),
            code,
            body: "reason".into(),
        };
        assert_eq!(status(423).exit_code(), 4);
        for code in [404, 409, 500] {
            assert_eq!(status(code).exit_code(), 1, "{code}");
        }
        let timed_out = Error::TimedOut {
            method: "POST".into(),
            uri: "/actions/prepare-update".into(),
            waited: std::time::Duration::from_secs(1),
        };
        assert_eq!(timed_out.exit_code(), 1);
    }
}

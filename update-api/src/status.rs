//! The status document of `GET /updates/status`, field for field as Bottlerocket's
//! `thar-be-updates` writes it (brupop's agent parses it with closed enums), plus optional
//! fields of ours that Bottlerocket's parsers ignore: `running_command` and `progress`.
//!
//! ```json
//! {
//!   "update_state": "Available",
//!   "available_updates": ["1.1.0", "1.0.0"],
//!   "chosen_update": {"arch": "x86_64", "version": "1.1.0", "variant": "demo"},
//!   "active_partition": {"image": {"arch": "x86_64", "version": "1.0.0", "variant": "demo"}, "next_to_boot": true},
//!   "staging_partition": null,
//!   "most_recent_command": {"cmd_type": "refresh", "cmd_status": "Success",
//!     "timestamp": "2025-01-01T00:00:00.5Z", "exit_status": 0, "stderr": ""}
//! }
//! ```
//!
//! The server keeps the document in memory and writes it to `<sysroot>/run/update-status.json`
//! atomically (a temporary file in the same directory, synced, renamed over it, the directory
//! synced), so a reader or a power cut sees the old or the new document, never a torn one.

use crate::error::{self, Result};
use semver::Version;
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::path::Path;

/// Where an update stands (Bottlerocket's four states; never extended: brupop's enum is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpdateState {
    /// Nothing to do (no refresh yet, or no update available).
    Idle,
    /// An update is chosen and can be prepared.
    Available,
    /// An update is written to the inactive set and verified (valid, not the next to boot).
    Staged,
    /// The inactive set is the next to boot.
    Ready,
}

impl std::fmt::Display for UpdateState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// An image: `{arch, version, variant}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateImage {
    /// The architecture, e.g. `x86_64`.
    pub arch: String,
    /// The version.
    pub version: Version,
    /// The variant.
    pub variant: String,
}

/// An image written to a partition set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedImage {
    /// The image.
    pub image: UpdateImage,
    /// Whether the set is the next to boot.
    pub next_to_boot: bool,
}

/// How a command ended (Bottlerocket's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandStatus {
    /// It succeeded.
    Success,
    /// It failed; `stderr` says why.
    Failed,
    /// Unknown.
    Unknown,
}

/// A command of the update state machine (Bottlerocket's `UpdateCommand`: `refresh`,
/// `prepare`, `activate`, `deactivate`). A reboot and a cancel are not commands of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateCommand {
    /// Refresh the list of updates and choose one.
    Refresh,
    /// Write the chosen update into the inactive set.
    Prepare,
    /// Make the staged set the next to boot.
    Activate,
    /// Undo activate.
    Deactivate,
}

impl UpdateCommand {
    /// Every command.
    pub const ALL: [UpdateCommand; 4] = [
        UpdateCommand::Refresh,
        UpdateCommand::Prepare,
        UpdateCommand::Activate,
        UpdateCommand::Deactivate,
    ];

    /// The name in `cmd_type`.
    pub fn name(self) -> &'static str {
        match self {
            UpdateCommand::Refresh => "refresh",
            UpdateCommand::Prepare => "prepare",
            UpdateCommand::Activate => "activate",
            UpdateCommand::Deactivate => "deactivate",
        }
    }
}

impl std::fmt::Display for UpdateCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The result of the most recent command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The command.
    pub cmd_type: UpdateCommand,
    /// How it ended.
    pub cmd_status: CommandStatus,
    /// When it ended (RFC 3339).
    pub timestamp: jiff::Timestamp,
    /// Its exit status: 0, else updog's exit code (1 error, 4 lock held). Always set.
    pub exit_status: Option<i32>,
    /// Its error output: empty on success, else one line. Always set.
    pub stderr: Option<String>,
}

/// A command that is running (our optional field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningCommand {
    /// The command.
    pub cmd_type: UpdateCommand,
    /// When it started.
    pub started: jiff::Timestamp,
}

/// The status document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// The state.
    pub update_state: UpdateState,
    /// Every version this node may take, newest first (from the last successful refresh).
    pub available_updates: Vec<Version>,
    /// The update that prepare would install.
    pub chosen_update: Option<UpdateImage>,
    /// The booted image, and whether its set boots next.
    pub active_partition: Option<StagedImage>,
    /// The image in the inactive set when it is staged or ready, and whether it boots next.
    pub staging_partition: Option<StagedImage>,
    /// The last command's result.
    pub most_recent_command: Option<CommandResult>,
    /// Ours: the command running now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_command: Option<RunningCommand>,
    /// Ours: the latest progress event of a running prepare (updog's JSON-lines event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<updog::ProgressEvent>,
}

impl UpdateStatus {
    /// A fresh status: Idle, nothing known.
    pub fn new(active: Option<StagedImage>) -> UpdateStatus {
        UpdateStatus {
            update_state: UpdateState::Idle,
            available_updates: Vec::new(),
            chosen_update: None,
            active_partition: active,
            staging_partition: None,
            most_recent_command: None,
            running_command: None,
            progress: None,
        }
    }

    /// Records the result of `cmd`: success, or the failure's exit status and message.
    pub fn record(&mut self, cmd: UpdateCommand, result: std::result::Result<(), (i32, String)>) {
        let (cmd_status, exit_status, stderr) = match result {
            Ok(()) => (CommandStatus::Success, 0, String::new()),
            Err((code, message)) => (CommandStatus::Failed, code, message),
        };
        self.most_recent_command = Some(CommandResult {
            cmd_type: cmd,
            cmd_status,
            timestamp: jiff::Timestamp::now(),
            exit_status: Some(exit_status),
            stderr: Some(stderr),
        });
    }

    /// Reads the status file; `None` when it is missing or unreadable (the caller derives a
    /// fresh one from the disk; a corrupt file is logged).
    pub fn load(path: &Path) -> Option<UpdateStatus> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("ignoring the status file '{}': {e}", path.display());
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(status) => Some(status),
            Err(e) => {
                tracing::warn!("ignoring the status file '{}': {e}", path.display());
                None
            }
        }
    }

    /// Writes the status file atomically.
    pub fn store(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).context(error::SerializeSnafu {
            what: "the update status",
        })?;
        bytes.push(b'\n');
        write_atomic(path, &bytes)
    }
}

/// Writes `bytes` to `path`: a temporary file in the same directory, synced, renamed over
/// `path`, the directory synced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    powercut::write_atomic(path, bytes, "update-api.status").context(error::IoSnafu {
        verb: "write",
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_names_are_bottlerocket_s() {
        let doc = r#"{
          "update_state": "Available",
          "available_updates": ["1.1.0", "1.0.0"],
          "chosen_update": {"arch": "x86_64", "version": "1.1.0", "variant": "demo"},
          "active_partition": {"image": {"arch": "x86_64", "version": "1.0.0", "variant": "demo"}, "next_to_boot": true},
          "staging_partition": null,
          "most_recent_command": {"cmd_type": "refresh", "cmd_status": "Success",
            "timestamp": "2025-01-01T00:00:00.5Z", "exit_status": 0, "stderr": ""}
        }"#;
        let status: UpdateStatus = serde_json::from_str(doc).unwrap();
        assert_eq!(status.update_state, UpdateState::Available);
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["most_recent_command"]["cmd_type"], "refresh");
        assert!(
            json.get("running_command").is_none(),
            "optional fields are skipped"
        );
        for cmd in UpdateCommand::ALL {
            assert_eq!(
                serde_json::to_value(cmd).unwrap(),
                serde_json::Value::from(cmd.name())
            );
        }
    }

    #[test]
    fn store_is_atomic_and_load_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/update-status.json");
        assert_eq!(UpdateStatus::load(&path), None);
        let mut status = UpdateStatus::new(None);
        status.record(UpdateCommand::Refresh, Err((1, "boom".into())));
        status.store(&path).unwrap();
        assert_eq!(UpdateStatus::load(&path), Some(status));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        std::fs::write(&path, b"{\"update_state\": ").unwrap();
        assert_eq!(UpdateStatus::load(&path), None);
    }
}

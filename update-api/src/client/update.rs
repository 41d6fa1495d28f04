//! `apiclient update check|apply|cancel`: each posts a command and then polls
//! `GET /updates/status` until `most_recent_command` shows that command with a new timestamp,
//! as Bottlerocket's apiclient does (423 while polling means "still running"; a bounded number
//! of failed checks and a bounded wait per command). A 423 on the command itself (another
//! command or updater holds the lock) is retried for up to 30 s.

use super::{request, request_unchecked, stream_lines};
use crate::error::{self, Error, Result};
use crate::status::{UpdateCommand, UpdateState, UpdateStatus};
use hyper::StatusCode;
use snafu::ResultExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use updog::{ProgressEvent, ProgressSink};

/// How long to wait for a command's result.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    /// Between two status checks.
    pub between_attempts: Duration,
    /// Checks before giving up.
    pub max_attempts: u32,
}

impl WaitPolicy {
    /// The wait for `cmd`: refresh 60 s, prepare 30 min, activate and deactivate 30 s.
    pub fn for_command(cmd: UpdateCommand) -> WaitPolicy {
        let (ms, attempts) = match cmd {
            UpdateCommand::Refresh => (100, 600),
            UpdateCommand::Prepare => (500, 3600),
            UpdateCommand::Activate | UpdateCommand::Deactivate => (100, 300),
        };
        WaitPolicy {
            between_attempts: Duration::from_millis(ms),
            max_attempts: attempts,
        }
    }
}

/// Failed status checks tolerated while waiting.
const MAX_FAILURES: u32 = 5;
/// Retries of a command refused with 423, one second apart.
const LOCKED_RETRIES: u32 = 30;

/// The action URI of a command.
pub fn action_uri(cmd: UpdateCommand) -> &'static str {
    match cmd {
        UpdateCommand::Refresh => "/actions/refresh-updates",
        UpdateCommand::Prepare => "/actions/prepare-update",
        UpdateCommand::Activate => "/actions/activate-update",
        UpdateCommand::Deactivate => "/actions/deactivate-update",
    }
}

/// Reads and parses the status.
pub async fn status(socket: &Path) -> Result<UpdateStatus> {
    let body = request(socket, "GET", "/updates/status", None).await?;
    serde_json::from_str(&body).context(error::ParseResponseSnafu {
        what: "the update status",
    })
}

fn field<'a>(json: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(json, |v, key| v.get(key))
}

fn field_string(json: &serde_json::Value, path: &[&str]) -> Option<String> {
    field(json, path).map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Posts `cmd` and waits for its result; returns the status document that shows it. When
/// `progress` is given, the server's progress stream is fed to it while waiting.
pub async fn wait_request(
    socket: &Path,
    cmd: UpdateCommand,
    policy: WaitPolicy,
    progress: Option<Arc<dyn ProgressSink>>,
) -> Result<String> {
    let uri = action_uri(cmd);
    let (code, initial) = request_unchecked(socket, "GET", "/updates/status", None).await?;
    let before = if code == StatusCode::NOT_FOUND {
        "first call".to_string()
    } else if code.is_success() {
        serde_json::from_str::<serde_json::Value>(&initial)
            .ok()
            .and_then(|v| field_string(&v, &["most_recent_command", "timestamp"]))
            .unwrap_or_else(|| "first call".to_string())
    } else {
        return error::StatusSnafu {
            method: "GET",
            uri: "/updates/status",
            code: code.as_u16(),
            body: initial,
        }
        .fail();
    };
    tracing::debug!("initial timestamp '{before}'");

    let mut retries = 0;
    loop {
        match request(socket, "POST", uri, None).await {
            Ok(_) => break,
            Err(Error::Status { code: 423, .. }) if retries < LOCKED_RETRIES => {
                retries += 1;
                tracing::info!("the update lock is held; retrying {uri} ({retries})");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }

    let watcher = progress.map(|sink| {
        let socket = socket.to_path_buf();
        tokio::spawn(async move {
            let _ = stream_lines(&socket, "/updates/progress", |line| {
                if let Ok(event) = serde_json::from_str::<ProgressEvent>(line) {
                    sink.event(&event);
                }
            })
            .await;
        })
    });
    let result = poll(socket, cmd, uri, policy, &before).await;
    if let Some(task) = watcher {
        task.abort();
    }
    result
}

async fn poll(
    socket: &Path,
    cmd: UpdateCommand,
    uri: &str,
    policy: WaitPolicy,
    before: &str,
) -> Result<String> {
    let mut failures = 0;
    let mut waited = Duration::ZERO;
    for _ in 0..policy.max_attempts {
        if failures >= MAX_FAILURES {
            return error::StatusCheckSnafu {
                method: "POST",
                uri,
                failures,
            }
            .fail();
        }
        tokio::time::sleep(policy.between_attempts).await;
        waited += policy.between_attempts;
        let (code, body) = match request_unchecked(socket, "GET", "/updates/status", None).await {
            Ok(answer) => answer,
            Err(e) => {
                failures += 1;
                tracing::warn!("cannot check the update status (failure {failures}): {e}");
                continue;
            }
        };
        if code == StatusCode::LOCKED {
            continue;
        }
        if !code.is_success() {
            failures += 1;
            tracing::warn!("status check answered {code} (failure {failures}): {body}");
            continue;
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
            failures += 1;
            continue;
        };
        let timestamp = field_string(&json, &["most_recent_command", "timestamp"]);
        let command = field_string(&json, &["most_recent_command", "cmd_type"]);
        if command.as_deref() == Some(cmd.name()) && timestamp.as_deref() != Some(before) {
            let status = field_string(&json, &["most_recent_command", "cmd_status"])
                .unwrap_or_else(|| "missing".to_string());
            if status != "Success" {
                return error::CommandSnafu {
                    command: cmd.name(),
                    status,
                    exit_status: field(&json, &["most_recent_command", "exit_status"])
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(-1),
                    stderr: field_string(&json, &["most_recent_command", "stderr"])
                        .unwrap_or_default()
                        .trim_end()
                        .to_string(),
                }
                .fail();
            }
            return Ok(body);
        }
    }
    error::TimedOutSnafu {
        method: "POST",
        uri,
        waited,
    }
    .fail()
}

/// Refreshes the list of updates; returns the status document.
pub async fn check(socket: &Path) -> Result<String> {
    wait_request(
        socket,
        UpdateCommand::Refresh,
        WaitPolicy::for_command(UpdateCommand::Refresh),
        None,
    )
    .await
}

/// Whether the status after a check calls for an update (Bottlerocket's rule: not Idle, not
/// Ready).
pub fn required(status: &UpdateStatus) -> bool {
    !matches!(status.update_state, UpdateState::Idle | UpdateState::Ready)
}

/// Prepares the chosen update (showing progress on `progress`) and activates it; returns the
/// status document.
pub async fn apply(socket: &Path, progress: Option<Arc<dyn ProgressSink>>) -> Result<String> {
    wait_request(
        socket,
        UpdateCommand::Prepare,
        WaitPolicy::for_command(UpdateCommand::Prepare),
        progress,
    )
    .await?;
    wait_request(
        socket,
        UpdateCommand::Activate,
        WaitPolicy::for_command(UpdateCommand::Activate),
        None,
    )
    .await
}

/// Cancels: stops a running prepare, deactivates an applied update (Ready → Staged, as
/// Bottlerocket's `update cancel`), or discards a staged one (→ Available). Returns the status
/// document.
pub async fn cancel(socket: &Path) -> Result<String> {
    let now = status(socket).await?;
    let running = now.running_command.as_ref().map(|r| r.cmd_type);
    if running == Some(UpdateCommand::Prepare) {
        request(socket, "POST", "/actions/cancel-update", None).await?;
        let policy = WaitPolicy::for_command(UpdateCommand::Activate);
        for _ in 0..policy.max_attempts {
            tokio::time::sleep(policy.between_attempts).await;
            let body = request(socket, "GET", "/updates/status", None).await?;
            let after: UpdateStatus =
                serde_json::from_str(&body).context(error::ParseResponseSnafu {
                    what: "the update status",
                })?;
            if after.running_command.is_none() {
                return Ok(body);
            }
        }
        return error::TimedOutSnafu {
            method: "POST",
            uri: "/actions/cancel-update",
            waited: policy.between_attempts * policy.max_attempts,
        }
        .fail();
    }
    match now.update_state {
        UpdateState::Ready => {
            wait_request(
                socket,
                UpdateCommand::Deactivate,
                WaitPolicy::for_command(UpdateCommand::Deactivate),
                None,
            )
            .await
        }
        UpdateState::Staged => {
            request(socket, "POST", "/actions/cancel-update", None).await?;
            request(socket, "GET", "/updates/status", None).await
        }
        state => error::NothingToCancelSnafu {
            state: state.to_string(),
        }
        .fail(),
    }
}

/// Asks the server to reboot the node.
pub async fn reboot(socket: &Path) -> Result<()> {
    request(socket, "POST", "/actions/reboot", None)
        .await
        .map(|_| ())
}

/// A human summary of a status document.
pub fn describe(status: &UpdateStatus) -> String {
    let mut out = format!("update state: {}\n", status.update_state);
    if let Some(active) = &status.active_partition {
        out.push_str(&format!(
            "running:      {} ({}, {}){}\n",
            active.image.version,
            active.image.variant,
            active.image.arch,
            if active.next_to_boot {
                ", boots next"
            } else {
                ""
            }
        ));
    }
    match &status.chosen_update {
        Some(chosen) => out.push_str(&format!("chosen:       {}\n", chosen.version)),
        None => out.push_str("chosen:       none\n"),
    }
    if !status.available_updates.is_empty() {
        let list: Vec<String> = status
            .available_updates
            .iter()
            .map(ToString::to_string)
            .collect();
        out.push_str(&format!("available:    {}\n", list.join(", ")));
    }
    if let Some(staging) = &status.staging_partition {
        out.push_str(&format!(
            "staged:       {}{}\n",
            staging.image.version,
            if staging.next_to_boot {
                ", boots next"
            } else {
                ""
            }
        ));
    }
    if let Some(running) = &status.running_command {
        out.push_str(&format!("running now:  {}\n", running.cmd_type));
    }
    if let Some(cmd) = &status.most_recent_command {
        out.push_str(&format!(
            "last command: {} {:?} at {}",
            cmd.cmd_type, cmd.cmd_status, cmd.timestamp
        ));
        if let Some(stderr) = cmd.stderr.as_deref().filter(|s| !s.is_empty()) {
            out.push_str(&format!(": {}", stderr.trim_end()));
        }
        out.push('\n');
    }
    out
}

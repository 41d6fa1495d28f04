//! Running the commands: take the lock, answer, work in the background with updog's library,
//! record the result, check the state against the disk, write the status file, release the
//! lock.

use super::{Api, ApiError, Job};
use crate::machine::{self, Refusal};
use crate::status::{RunningCommand, StagedImage, UpdateCommand, UpdateImage, UpdateState};
use semver::Version;
use tokio::sync::broadcast;
use updog::{CancellationToken, Phase, ProgressEvent, ProgressSink, Request, UpdateLock, Updater};

/// A failed command: its exit status and one-line message.
type Failure = (i32, String);

/// What a successful command learned.
enum Outcome {
    Refreshed {
        available: Vec<Version>,
        chosen: Option<UpdateImage>,
    },
    Staged(UpdateImage),
    Flipped,
}

fn failure(e: &updog::Error) -> Failure {
    (e.exit_code(), e.to_string())
}

fn image_of(update: &update_metadata::Update) -> UpdateImage {
    UpdateImage {
        arch: update.arch.clone(),
        version: update.version.clone(),
        variant: update.variant.clone(),
    }
}

impl Api {
    fn take_lock(&self, what: &str) -> Result<UpdateLock, ApiError> {
        UpdateLock::acquire(&self.inner.lock_path, &format!("update API {what}")).map_err(|e| {
            match e {
                updog::Error::Locked { .. } => ApiError::Refused(Refusal::Locked(e.to_string())),
                other => ApiError::Internal(other.to_string()),
            }
        })
    }

    fn updater(&self) -> Result<Updater, Failure> {
        Updater::new(&self.inner.sysroot, self.inner.disk_flag.as_deref()).map_err(|e| failure(&e))
    }

    /// Takes the lock, checks the state (against the disk) and starts `cmd` in the background.
    pub(super) fn start(&self, cmd: UpdateCommand) -> Result<(), ApiError> {
        let mut shared = self.shared();
        if let Some(job) = &shared.job {
            return Err(
                Refusal::Locked(format!("Update lock held: '{}' is running", job.cmd)).into(),
            );
        }
        // The state is checked against the disk under the lock: nothing else changes it until
        // the command has run.
        let lock = self.take_lock(cmd.name())?;
        self.resync_locked(&mut shared);
        machine::admit(cmd, &shared.status)?;
        let mut status = shared.status.clone();
        status.running_command = Some(RunningCommand {
            cmd_type: cmd,
            started: jiff::Timestamp::now(),
        });
        status.progress = None;
        status
            .store(&self.inner.status_path)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        shared.status = status;
        let cancel = CancellationToken::new();
        let progress = (cmd == UpdateCommand::Prepare).then(|| broadcast::channel(256).0);
        shared.job = Some(Job {
            cmd,
            cancel: cancel.clone(),
            progress: progress.clone(),
        });
        drop(shared);
        tracing::info!("running {cmd}");
        let api = self.clone();
        tokio::spawn(async move { api.run(cmd, lock, cancel, progress).await });
        Ok(())
    }

    async fn run(
        self,
        cmd: UpdateCommand,
        lock: UpdateLock,
        cancel: CancellationToken,
        progress: Option<broadcast::Sender<ProgressEvent>>,
    ) {
        let outcome = match cmd {
            UpdateCommand::Refresh => self.refresh().await,
            UpdateCommand::Prepare => self.prepare(&lock, &cancel, progress).await,
            UpdateCommand::Activate => self.flip(&lock, true),
            UpdateCommand::Deactivate => self.flip(&lock, false),
        };
        let mut status = self.status();
        status.running_command = None;
        status.progress = None;
        let succeeded = outcome.is_ok();
        let result = match outcome {
            Ok(Outcome::Refreshed { available, chosen }) => {
                status.available_updates = available;
                status.chosen_update = chosen;
                Ok(())
            }
            Ok(Outcome::Staged(image)) => {
                status.staging_partition = Some(StagedImage {
                    image,
                    next_to_boot: false,
                });
                Ok(())
            }
            Ok(Outcome::Flipped) => Ok(()),
            Err((code, message)) => {
                tracing::warn!("{cmd} failed: {message}");
                Err((code, message))
            }
        };
        status.record(cmd, result);
        status.update_state = machine::after(
            cmd,
            status.update_state,
            succeeded,
            status.chosen_update.is_some(),
        );
        let status = self.settle(status);
        if let Err(e) = status.store(&self.inner.status_path) {
            tracing::error!("{e}");
        }
        tracing::info!("{cmd} done; update state {}", status.update_state);
        {
            let mut shared = self.shared();
            shared.status = status;
            shared.job = None;
        }
        drop(lock);
        self.inner.finished.send_modify(|n| *n += 1);
    }

    async fn refresh(&self) -> Result<Outcome, Failure> {
        let updater = self.updater()?;
        let refreshed = updater.refresh().await.map_err(|e| failure(&e))?;
        let request = Request::default();
        let available = updater
            .applicable(&refreshed, &request)
            .map_err(|e| failure(&e))?
            .into_iter()
            .map(|u| u.version)
            .collect();
        let chosen = updater
            .choose(&refreshed, &request)
            .map_err(|e| failure(&e))?
            .map(|u| image_of(&u));
        Ok(Outcome::Refreshed { available, chosen })
    }

    /// Installs exactly the chosen update (`--image <chosen>`). On any failure the inactive
    /// set is left unbootable, so the state returns to Available and never stays Staged.
    async fn prepare(
        &self,
        lock: &UpdateLock,
        cancel: &CancellationToken,
        progress: Option<broadcast::Sender<ProgressEvent>>,
    ) -> Result<Outcome, Failure> {
        let sink = Tap {
            api: self.clone(),
            tx: progress,
        };
        let result = self.install_chosen(lock, cancel, &sink).await;
        if result.is_err() {
            self.unstage(lock);
        }
        result
    }

    async fn install_chosen(
        &self,
        lock: &UpdateLock,
        cancel: &CancellationToken,
        sink: &Tap,
    ) -> Result<Outcome, Failure> {
        let chosen = self
            .status()
            .chosen_update
            .ok_or((1, "Failed to prepare: no update chosen".to_string()))?;
        let updater = self.updater()?;
        sink.event(&ProgressEvent::phase(Phase::Refresh, None));
        let refreshed = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(failure(&updog::Error::Cancelled)),
            refreshed = updater.refresh() => refreshed.map_err(|e| failure(&e))?,
        };
        let request = Request {
            image: Some(chosen.version.clone()),
            ignore_waves: true,
        };
        let update = updater
            .choose(&refreshed, &request)
            .map_err(|e| failure(&e))?
            .filter(|u| u.version == chosen.version)
            .ok_or_else(|| {
                (
                    1,
                    format!(
                        "Failed to prepare: version {} is no longer offered",
                        chosen.version
                    ),
                )
            })?;
        let installed = updog::install_update(&updater, lock, &refreshed, &update, sink, cancel)
            .await
            .map_err(|e| failure(&e))?;
        tracing::info!("{} staged in set {}", installed.version, installed.set);
        Ok(Outcome::Staged(image_of(&update)))
    }

    /// Leaves the inactive set unbootable if it holds a staged (valid, unapplied) image; the
    /// previous release kept for rollback is not touched.
    fn unstage(&self, _lock: &UpdateLock) {
        let result = (|| -> Result<(), String> {
            let updater = self.updater().map_err(|(_, m)| m)?;
            let mut disk = updater.open_disk().map_err(|e| e.to_string())?;
            let Some(inactive) = disk.inactive_set() else {
                return Ok(());
            };
            let flags = disk.flags(inactive);
            let next_is_inactive = disk.next_boot() == Some(inactive);
            if crate::disk::classify(flags, next_is_inactive) == crate::disk::Inactive::Staged {
                disk.clear_inactive().map_err(|e| e.to_string())?;
                tracing::info!("cleared the staged set {inactive}");
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!("cannot clear the staged set: {e}");
        }
    }

    fn flip(&self, lock: &UpdateLock, activate: bool) -> Result<Outcome, Failure> {
        let updater = self.updater()?;
        let done = if activate {
            updater.apply(lock).map(|applied| match applied {
                updog::Applied::Nothing => None,
                updog::Applied::Already(set) | updog::Applied::Now(set) => Some(set),
            })
        } else {
            updater.revert(lock)
        }
        .map_err(|e| failure(&e))?;
        match done {
            Some(_) => Ok(Outcome::Flipped),
            None if activate => Err((3, "Failed to activate: nothing is staged".to_string())),
            None => Err((3, "Failed to deactivate: nothing is applied".to_string())),
        }
    }

    /// `POST /actions/cancel-update`: stops a running prepare (it ends Failed, state
    /// Available), or discards a staged update (state Available).
    pub(super) fn cancel(&self) -> Result<(), ApiError> {
        let mut shared = self.shared();
        if let Some(job) = &shared.job {
            if job.cmd == UpdateCommand::Prepare {
                tracing::info!("cancelling the running prepare");
                job.cancel.cancel();
                return Ok(());
            }
            return Err(
                Refusal::Locked(format!("Update lock held: '{}' is running", job.cmd)).into(),
            );
        }
        let lock = self.take_lock("cancel")?;
        self.resync_locked(&mut shared);
        let state = shared.status.update_state;
        match state {
            UpdateState::Staged => {}
            UpdateState::Ready => {
                return Err(Refusal::Conflict(
                    "Update is applied: deactivate it first".to_string(),
                )
                .into());
            }
            UpdateState::Idle | UpdateState::Available => {
                return Err(Refusal::Conflict(format!(
                    "Nothing to cancel in update state '{state}'"
                ))
                .into());
            }
        }
        self.unstage(&lock);
        let mut status = shared.status.clone();
        status.update_state = UpdateState::Available;
        let status = self.settle(status);
        status
            .store(&self.inner.status_path)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        shared.status = status;
        Ok(())
    }

    /// `POST /actions/reboot`: runs updog's configured `reboot_command` under the lock.
    pub(super) async fn reboot(&self) -> Result<(), ApiError> {
        if let Some(job) = &self.shared().job {
            return Err(
                Refusal::Locked(format!("Update lock held: '{}' is running", job.cmd)).into(),
            );
        }
        let lock = self.take_lock("reboot")?;
        let updater = self.updater().map_err(|(_, m)| ApiError::Internal(m))?;
        tracing::info!("rebooting");
        let result = tokio::task::spawn_blocking(move || updater.reboot())
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        drop(lock);
        result.map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// Progress of the running prepare: kept as the latest event in the status and sent to
/// `GET /updates/progress` streams.
struct Tap {
    api: Api,
    tx: Option<broadcast::Sender<ProgressEvent>>,
}

impl ProgressSink for Tap {
    fn event(&self, event: &ProgressEvent) {
        self.api.shared().status.progress = Some(event.clone());
        if let Some(tx) = &self.tx {
            let _ = tx.send(event.clone());
        }
    }
}

//! The HTTP server: axum on a Unix socket, Bottlerocket's update endpoints, and ours.
//!
//! | method and path | answer |
//! |---|---|
//! | `POST /actions/refresh-updates` | 204, runs `refresh` in the background |
//! | `POST /actions/prepare-update` | 204, runs `prepare` (installs exactly `chosen_update`) |
//! | `POST /actions/activate-update` | 204, runs `activate` (upgrade-to-inactive) |
//! | `POST /actions/deactivate-update` | 204, runs `deactivate` (cancel-upgrade) |
//! | `POST /actions/reboot` | 204 after the configured reboot command ran |
//! | `POST /actions/cancel-update` | ours: 204; stops a running prepare, or discards a staged update |
//! | `GET /updates/status` | 200, the status document |
//! | `GET /updates/progress` | ours: 200, updog's progress events of the running prepare as JSON lines, until it ends |
//! | `GET /os` | 200, the booted image |
//!
//! Refusals: 423 while a command runs or another updater holds `run/updog.lock` (checked first:
//! the state is read under the lock), 409 for a command not allowed in the state, 404 when
//! nothing is chosen or staged; the body is one line.
//!
//! `GET /updates/status` never returns a partial document: it serialises the in-memory status,
//! first checked against the disk when no command runs (`updog` or `signpost` run by hand
//! between commands may have changed it); a command checks it again under the update lock
//! before it is admitted.
//! While a short command (refresh, activate, deactivate) runs it waits for its result (up to
//! 30 s) so that a caller that posts a command and then reads the status, as brupop does, sees
//! that command's result; during a prepare it answers at once with the last settled status plus
//! `running_command` and `progress`.

mod commands;

use crate::derive::derive;
use crate::disk::{self, DiskFacts};
use crate::error::{self, Result};
use crate::machine::Refusal;
use crate::os::OsInfo;
use crate::status::{UpdateCommand, UpdateImage, UpdateStatus};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use snafu::ResultExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use updog::{CancellationToken, ProgressEvent};

/// How long `GET /updates/status` waits for a running short command.
const STATUS_WAIT: Duration = Duration::from_secs(30);
/// How long shutdown waits for a cancelled command to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// The update API of one node.
#[derive(Debug, Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sysroot: PathBuf,
    /// `--disk`, passed on to updog.
    disk_flag: Option<PathBuf>,
    disk: PathBuf,
    /// The booted image, read once: it only changes with a boot, which restarts the server.
    active: UpdateImage,
    status_path: PathBuf,
    lock_path: PathBuf,
    shared: Mutex<Shared>,
    /// Bumped each time a command ends.
    finished: watch::Sender<u64>,
}

#[derive(Debug)]
struct Shared {
    status: UpdateStatus,
    job: Option<Job>,
}

#[derive(Debug)]
struct Job {
    cmd: UpdateCommand,
    cancel: CancellationToken,
    progress: Option<broadcast::Sender<ProgressEvent>>,
}

/// A refusal or an internal failure, as an HTTP answer.
#[derive(Debug)]
enum ApiError {
    Refused(Refusal),
    Internal(String),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::Refused(r)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, message) = match self {
            ApiError::Refused(r) => (
                StatusCode::from_u16(r.code()).unwrap_or(StatusCode::CONFLICT),
                r.message().to_string(),
            ),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        tracing::info!("answering {code}: {message}");
        (code, message).into_response()
    }
}

impl Api {
    /// Opens the API of the node at `sysroot`: derives the state from the disk and the status
    /// file `run/update-status.json` (design: the state always matches the disk) and writes
    /// the result back.
    pub fn open(sysroot: &Path, disk: Option<&Path>) -> Result<Api> {
        let disk_path = disk::disk_path(sysroot, disk)?;
        let status_path = sysroot.join("run/update-status.json");
        let facts = disk::read(sysroot, &disk_path)?;
        let previous = UpdateStatus::load(&status_path);
        let status = derive(previous, &facts);
        status.store(&status_path)?;
        tracing::info!(
            "update state {} (active {}, inactive {:?})",
            status.update_state,
            facts.active.version,
            facts.inactive
        );
        Ok(Api {
            inner: Arc::new(Inner {
                sysroot: sysroot.to_path_buf(),
                disk_flag: disk.map(Path::to_path_buf),
                disk: disk_path,
                active: facts.active,
                status_path,
                lock_path: updog::Paths::new(sysroot).lock,
                shared: Mutex::new(Shared { status, job: None }),
                finished: watch::channel(0).0,
            }),
        })
    }

    /// The status now (as `GET /updates/status` answers it, without waiting).
    pub fn status(&self) -> UpdateStatus {
        self.shared().status.clone()
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves a status that is still a whole document.
        self.inner
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn facts(&self) -> Result<DiskFacts> {
        disk::read_sets(
            &self.inner.sysroot,
            &self.inner.disk,
            self.inner.active.clone(),
        )
    }

    /// `status` checked against the disk; unchanged (logged) if the disk cannot be read.
    fn settle(&self, status: UpdateStatus) -> UpdateStatus {
        match self.facts() {
            Ok(facts) => derive(Some(status), &facts),
            Err(e) => {
                tracing::warn!("cannot check the state against the disk: {e}");
                status
            }
        }
    }

    /// Re-derives the settled status from the disk, which `updog` or `signpost` run by hand may
    /// have changed since the last command. Does nothing while a command runs (it settles its
    /// own result). The caller holds `shared`.
    fn resync_locked(&self, shared: &mut Shared) {
        if shared.job.is_none() {
            let settled = self.settle(shared.status.clone());
            self.adopt(shared, settled);
        }
    }

    /// [`Self::resync_locked`] for a status read: the disk is read without holding `shared`, and
    /// the result is dropped if a command started or settled the status meanwhile.
    fn resync(&self) {
        let before = {
            let shared = self.shared();
            if shared.job.is_some() {
                return;
            }
            shared.status.clone()
        };
        let settled = self.settle(before.clone());
        let mut shared = self.shared();
        if shared.job.is_none() && shared.status == before {
            self.adopt(&mut shared, settled);
        }
    }

    /// Makes `settled` the status, writing the file, when it differs.
    fn adopt(&self, shared: &mut Shared, settled: UpdateStatus) {
        if settled == shared.status {
            return;
        }
        tracing::info!(
            "the disk changed since the last command: update state {} -> {}",
            shared.status.update_state,
            settled.update_state
        );
        if let Err(e) = settled.store(&self.inner.status_path) {
            tracing::error!("{e}");
        }
        shared.status = settled;
    }

    /// Stops a running command (cancels a prepare) and waits for it to end.
    pub async fn shutdown(&self) {
        let mut finished = self.inner.finished.subscribe();
        let running = {
            let shared = self.shared();
            if let Some(job) = &shared.job {
                job.cancel.cancel();
                true
            } else {
                false
            }
        };
        if running {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, finished.changed()).await;
        }
    }
}

/// The router over `api`.
pub fn router(api: Api) -> Router {
    use UpdateCommand as C;
    Router::new()
        .route(
            "/actions/refresh-updates",
            post(|State(api): State<Api>| async move { action(&api, C::Refresh) }),
        )
        .route(
            "/actions/prepare-update",
            post(|State(api): State<Api>| async move { action(&api, C::Prepare) }),
        )
        .route(
            "/actions/activate-update",
            post(|State(api): State<Api>| async move { action(&api, C::Activate) }),
        )
        .route(
            "/actions/deactivate-update",
            post(|State(api): State<Api>| async move { action(&api, C::Deactivate) }),
        )
        .route("/actions/cancel-update", post(cancel))
        .route("/actions/reboot", post(reboot))
        .route("/updates/status", get(status))
        .route("/updates/progress", get(progress))
        .route("/os", get(os))
        .with_state(api)
}

/// Refuses a socket another server answers on. A socket file nobody answers on is stale (its
/// server died) and [`serve`] replaces it.
pub fn ensure_not_served(socket: &Path) -> Result<()> {
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return error::SocketInUseSnafu { path: socket }.fail();
    }
    Ok(())
}

/// Serves `api` on the Unix socket `socket` until `shutdown` resolves, then stops a running
/// command cleanly. Refuses a socket another server answers on ([`ensure_not_served`]; the
/// command line checks it once more before [`Api::open`] touches the status file).
pub async fn serve(
    api: Api,
    socket: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).context(error::IoSnafu {
            verb: "create directory",
            path: dir,
        })?;
    }
    ensure_not_served(socket)?;
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context(error::SocketSnafu {
                verb: "remove the stale",
                path: socket,
            });
        }
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(socket).context(error::SocketSnafu {
        verb: "bind",
        path: socket,
    })?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660)).context(
        error::SocketSnafu {
            verb: "set permissions of",
            path: socket,
        },
    )?;
    tracing::info!("listening on {}", socket.display());
    let served = axum::serve(listener, router(api.clone()))
        .with_graceful_shutdown(shutdown)
        .await
        .context(error::SocketSnafu {
            verb: "serve",
            path: socket,
        });
    api.shutdown().await;
    let _ = std::fs::remove_file(socket);
    served
}

fn action(api: &Api, cmd: UpdateCommand) -> Response {
    match api.start(cmd) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn cancel(State(api): State<Api>) -> Response {
    match api.cancel() {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn reboot(State(api): State<Api>) -> Response {
    match api.reboot().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn status(State(api): State<Api>) -> Response {
    let mut finished = api.inner.finished.subscribe();
    let short_running = api
        .shared()
        .job
        .as_ref()
        .is_some_and(|job| job.cmd != UpdateCommand::Prepare);
    if short_running {
        let _ = tokio::time::timeout(STATUS_WAIT, finished.changed()).await;
    }
    let reader = api.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || reader.resync()).await {
        tracing::error!("cannot check the state against the disk: {e}");
    }
    axum::Json(api.status()).into_response()
}

async fn progress(State(api): State<Api>) -> Response {
    let (receiver, last) = {
        let shared = api.shared();
        (
            shared
                .job
                .as_ref()
                .and_then(|job| job.progress.as_ref())
                .map(broadcast::Sender::subscribe),
            shared.status.progress.clone(),
        )
    };
    let first = receiver.as_ref().and(last);
    let stream =
        futures_util::stream::unfold((first, receiver), |(first, mut receiver)| async move {
            if let Some(event) = first {
                return Some((json_line(&event), (None, receiver)));
            }
            let rx = receiver.as_mut()?;
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((json_line(&event), (None, receiver))),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

fn json_line(event: &ProgressEvent) -> Result<bytes::Bytes, std::convert::Infallible> {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    Ok(bytes::Bytes::from(line))
}

async fn os(State(api): State<Api>) -> Response {
    match OsInfo::read(&api.inner.sysroot.join("etc/os-release")) {
        Ok(info) => axum::Json(info).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

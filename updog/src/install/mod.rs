//! The install (design section 10): refresh and choose; cache the manifest, metadata and
//! migrations; clear the inactive set; stream BOOT and HASH into it and verify them on disk, then
//! stream ROOT; sync and verify ROOT on disk against HASH; only then mark the set valid (one
//! try). Applying and rebooting are separate.
//!
//! The caller holds the [`UpdateLock`]. A failure or a cancel at any point after the clear
//! leaves the inactive set as the clear left it: priority 0, tries 0, not successful.

mod stream;
mod verify;

pub use stream::{Written, write_lz4_stream};

use crate::error::{self, Result};
use crate::lock::UpdateLock;
use crate::progress::{Phase, ProgressEvent, ProgressSink};
use crate::updater::{MANIFEST, Refreshed, Request, Updater};
use semver::Version;
use signpost::SetId;
use snafu::{OptionExt, ResultExt};
use stream::{ImageJob, write_image};
use tokio_util::sync::CancellationToken;
use update_metadata::Update;
use verify::{verify_boot_and_hash, verify_root};

/// A staged update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The version written.
    pub version: Version,
    /// The set it was written to (now valid, with one try; not yet applied).
    pub set: SetId,
}

/// Refreshes, chooses and installs. `Ok(None)`: nothing to install.
pub async fn install(
    updater: &Updater,
    lock: &UpdateLock,
    request: &Request,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<Option<Installed>> {
    progress.event(&ProgressEvent::phase(Phase::Refresh, None));
    let refreshed = tokio::select! {
        biased;
        () = cancel.cancelled() => return error::CancelledSnafu.fail(),
        refreshed = updater.refresh() => refreshed?,
    };
    let Some(update) = updater.choose(&refreshed, request)? else {
        return Ok(None);
    };
    install_update(updater, lock, &refreshed, &update, progress, cancel)
        .await
        .map(Some)
}

/// Installs `update` from an already refreshed repository.
pub async fn install_update(
    updater: &Updater,
    _lock: &UpdateLock,
    refreshed: &Refreshed,
    update: &Update,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<Installed> {
    let version = update.version.to_string();
    let phase = |p: Phase| progress.event(&ProgressEvent::phase(p, Some(&version)));
    tracing::info!("installing {version}");

    phase(Phase::Cache);
    cache(updater, refreshed, update).await?;
    check(cancel)?;

    phase(Phase::Clear);
    let mut disk = updater.open_disk()?;
    let inactive = disk.inactive_set().context(error::WorkerSnafu {
        action: "find the inactive set",
        reason: "the active set is unknown".to_string(),
    })?;
    disk.clear_inactive().context(error::DiskSnafu {
        action: format!("clear inactive set {inactive}"),
    })?;
    let parts = disk.partitions(inactive).clone();
    drop(disk);

    write_set(updater, refreshed, update, &parts, progress, cancel).await?;

    phase(Phase::MarkValid);
    let mut disk = updater.open_disk()?;
    disk.mark_inactive_valid().context(error::DiskSnafu {
        action: format!("mark set {inactive} valid"),
    })?;
    phase(Phase::Done);
    tracing::info!("{version} is staged in set {inactive}: valid, one try, not yet applied");
    Ok(Installed {
        version: update.version.clone(),
        set: inactive,
    })
}

/// Writes `update`'s three images into `parts` and verifies them on disk. No attribute bit
/// changes here: the callers decide what the set becomes.
async fn write_set(
    updater: &Updater,
    refreshed: &Refreshed,
    update: &Update,
    parts: &signpost::SetPartitions,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<()> {
    let version = update.version.to_string();
    let phase = |p: Phase| progress.event(&ProgressEvent::phase(p, Some(&version)));
    // BOOT and HASH first (small): they are read back and the tree checked against BOOT's root
    // hash while nothing of ROOT is written yet; ROOT streams last, and once it is synced it is
    // read back and checked against that tree on every core (see README.md, "Performance").
    let images = &update.images;
    let write = |job| stage(updater, refreshed, job, &version, progress, cancel);
    let boot = write(ImageJob {
        image: "boot",
        target: images.boot.as_str(),
        partition: &parts.boot,
        keep_hash: true,
    })
    .await?;
    let hash = write(ImageJob {
        image: "hash",
        target: images.hash.as_str(),
        partition: &parts.hash,
        keep_hash: true,
    })
    .await?;
    let tree = {
        let (disk, parts) = (updater.disk.clone(), parts.clone());
        blocking("verify the written set", move || {
            verify_boot_and_hash(&disk, &parts, &boot, &hash)
        })
        .await?
    };
    let root = write(ImageJob {
        image: "root",
        target: images.root.as_str(),
        partition: &parts.root,
        keep_hash: false,
    })
    .await?;
    check(cancel)?;

    // Each writer synced its partition; verify what is on disk.
    phase(Phase::Verify);
    let (disk, part) = (updater.disk.clone(), parts.root.clone());
    blocking("verify the written set", move || {
        verify_root(&disk, &part, &tree, &root)
    })
    .await?;
    check(cancel)?;

    Ok(())
}

/// Writes a release into `set` of a factory-fresh disk, as the image that provisions a node
/// would: the images are fetched through TUF like any update and verified on disk, and no
/// attribute bit changes (the disk's creator made that set bootable). Refuses a disk on which a
/// boot has ever succeeded: a node in service is updated, never provisioned.
pub async fn provision(
    updater: &Updater,
    _lock: &UpdateLock,
    refreshed: &Refreshed,
    update: &Update,
    set: SetId,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<()> {
    let disk = updater.open_disk()?;
    if disk.has_boot_ever_succeeded() {
        return error::WorkerSnafu {
            action: "provision the disk",
            reason: "a boot has already succeeded on it; update it instead".to_string(),
        }
        .fail();
    }
    let parts = disk.partitions(set).clone();
    drop(disk);
    write_set(updater, refreshed, update, &parts, progress, cancel).await?;
    progress.event(&ProgressEvent::phase(
        Phase::Done,
        Some(&update.version.to_string()),
    ));
    Ok(())
}

/// Caches the manifest, the metadata (with the root chain) and every migration between the
/// running and the new version, for the migrator to read offline with tough's file transport.
async fn cache(updater: &Updater, refreshed: &Refreshed, update: &Update) -> Result<()> {
    let from = &updater.running.version;
    let path = refreshed
        .manifest
        .migration_path(from, &update.version)
        .context(error::MigrationPathSnafu {
            from: from.clone(),
            to: update.version.clone(),
        })?;
    let mut targets = vec![MANIFEST.to_string()];
    targets.extend(path.migrations.iter().map(|m| m.as_str().to_string()));
    let paths = &updater.paths;
    refreshed
        .repo
        .cache(
            &paths.metadata_cache,
            &paths.migrations_cache,
            Some(&targets),
            true,
        )
        .await
        .context(error::CacheSnafu {
            path: &paths.metadata_cache,
        })
}

/// Streams one image of the set.
async fn stage(
    updater: &Updater,
    refreshed: &Refreshed,
    job: ImageJob<'_>,
    version: &str,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<Written> {
    check(cancel)?;
    write_image(
        &refreshed.repo,
        &updater.disk,
        &job,
        version,
        progress,
        cancel,
    )
    .await
}

/// Runs blocking work (reading partitions back) off the async threads.
async fn blocking<T: Send + 'static>(
    action: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| error::Error::Worker {
            action,
            reason: e.to_string(),
        })?
}

fn check(cancel: &CancellationToken) -> Result<()> {
    if cancel.is_cancelled() {
        return error::CancelledSnafu.fail();
    }
    Ok(())
}

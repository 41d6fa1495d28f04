//! The install (design section 10): refresh and choose; cache the manifest, metadata and
//! migrations; clear the inactive set; stream BOOT and HASH into it and verify them on disk, then
//! stream ROOT; sync and verify ROOT on disk against HASH; only then mark the set valid (one
//! try). Applying and rebooting are separate.
//!
//! The caller holds the [`UpdateLock`]. A failure or a cancel at any point after the clear
//! leaves the inactive set as the clear left it: priority 0, tries 0, not successful.

mod chunked;
mod page;
mod stream;
mod verify;

pub use chunked::ChunkCounts;
pub use stream::{Written, write_lz4_stream};

use crate::error::{self, Result};
use crate::lock::UpdateLock;
use crate::progress::{Phase, ProgressEvent, ProgressSink};
use crate::updater::{MANIFEST, Refreshed, Request, Updater, read_small_target};
use chunked::{ChunkSource, ChunkedJob, Learned, Outcome, install_chunked};
use futures_util::{StreamExt, TryStreamExt};
use semver::Version;
use signpost::{PartitionInfo, SetId, SetPartitions};
use snafu::{OptionExt, ResultExt};
use std::sync::Arc;
use stream::{ImageJob, write_image};
use tokio_util::sync::CancellationToken;
use tough::Prefix;
use update_metadata::{ChunkIndex, Update};
use verify::{verify_boot_and_hash, verify_root};
use verity::HashTree;

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
    // The chunk indexes are fetched while the cache is written: each is a round trip to the
    // server, and neither touches a partition.
    let (cached, chunks) = tokio::join!(
        cache(updater, refreshed, update),
        Chunking::load(updater, refreshed, update)
    );
    cached?;
    let chunks = chunks?;
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
    let active = disk.active_set().map(|set| disk.partitions(set).clone());
    drop(disk);

    write_set(
        updater,
        refreshed,
        update,
        &chunks,
        &parts,
        active.as_ref(),
        progress,
        cancel,
    )
    .await?;

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
/// changes here: the callers decide what the set becomes. `active` is the running set, whose
/// chunks a chunked install may copy; `chunks` holds the images' chunk indexes.
#[allow(clippy::too_many_arguments)]
async fn write_set(
    updater: &Updater,
    refreshed: &Refreshed,
    update: &Update,
    chunks: &Chunking,
    parts: &SetPartitions,
    active: Option<&SetPartitions>,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<()> {
    let version = update.version.to_string();
    let phase = |p: Phase| progress.event(&ProgressEvent::phase(p, Some(&version)));
    // BOOT and HASH first, at the same time (small: each is mostly round trips to the server);
    // they are read back and the tree checked against BOOT's root hash while nothing of ROOT is
    // written yet; ROOT goes last, checked against that tree (see README.md, "Performance").
    let images = &update.images;
    let mut ctx = Context {
        updater,
        refreshed,
        version: &version,
        learned: Learned::default(),
        progress,
        cancel,
    };
    let mut hash_ctx = ctx.clone();
    // Both run to their end, even when one fails: neither leaves threads writing behind it.
    let (boot, hash) = tokio::join!(
        ctx.write(
            ImageJob {
                image: "boot",
                target: images.boot.as_str(),
                partition: &parts.boot,
                keep_hash: true,
            },
            &chunks.boot,
            active.map(|a| &a.boot),
            None,
        ),
        hash_ctx.write(
            ImageJob {
                image: "hash",
                target: images.hash.as_str(),
                partition: &parts.hash,
                keep_hash: true,
            },
            &chunks.hash,
            active.map(|a| &a.hash),
            None,
        ),
    );
    let ((boot, _), (hash, _)) = (boot?, hash?);
    ctx.learned = Learned::merged(ctx.learned, hash_ctx.learned);
    let tree = Arc::new({
        let (disk, parts) = (updater.disk.clone(), parts.clone());
        blocking("verify the written set", move || {
            verify_boot_and_hash(&disk, &parts, &boot, &hash)
        })
        .await?
    });
    let (root, chunked) = ctx
        .write(
            ImageJob {
                image: "root",
                target: images.root.as_str(),
                partition: &parts.root,
                keep_hash: false,
            },
            &chunks.root,
            active.map(|a| &a.root),
            Some(&tree),
        )
        .await?;
    check(cancel)?;

    // A chunked ROOT was verified on disk chunk by chunk; a streamed one is synced, and now read
    // back and checked against the tree on every core.
    phase(Phase::Verify);
    if !chunked {
        let (disk, part, tree) = (updater.disk.clone(), parts.root.clone(), tree.clone());
        blocking("verify the written set", move || {
            verify_root(&disk, &part, &tree, &root)
        })
        .await?;
    }
    check(cancel)?;

    Ok(())
}

/// The chunk indexes of an update's images (each authenticated by TUF), and the running
/// release's where it has them.
#[derive(Debug, Default)]
struct Chunking {
    boot: Option<(Arc<ChunkIndex>, Option<ChunkIndex>)>,
    root: Option<(Arc<ChunkIndex>, Option<ChunkIndex>)>,
    hash: Option<(Arc<ChunkIndex>, Option<ChunkIndex>)>,
}

impl Chunking {
    async fn load(updater: &Updater, refreshed: &Refreshed, update: &Update) -> Result<Chunking> {
        let Some(indexes) = &update.chunk_indexes else {
            return Ok(Chunking::default());
        };
        let running = refreshed
            .manifest
            .update(
                &updater.running.variant,
                &updater.running.arch,
                &updater.running.version,
            )
            .and_then(|u| u.chunk_indexes.clone())
            .unwrap_or_default();
        let load = |name: Option<update_metadata::TargetName>,
                    running: Option<update_metadata::TargetName>| async move {
            let Some(name) = name else {
                return Ok(None);
            };
            // The running release's index only helps; without it, same offsets still do.
            let running = async {
                match running {
                    Some(r) => fetch_index(refreshed, r.as_str())
                        .await
                        .inspect_err(|e| {
                            tracing::debug!("not using the running release's index: {e}");
                        })
                        .ok(),
                    None => None,
                }
            };
            let (index, running) = tokio::join!(fetch_index(refreshed, name.as_str()), running);
            Ok::<_, error::Error>(Some((Arc::new(index?), running)))
        };
        // All at once: each costs a round trip to the server. The first error in image order
        // is the one reported.
        let (boot, root, hash) = tokio::join!(
            load(indexes.boot.clone(), running.boot.clone()),
            load(indexes.root.clone(), running.root.clone()),
            load(indexes.hash.clone(), running.hash.clone()),
        );
        Ok(Chunking {
            boot: boot?,
            root: root?,
            hash: hash?,
        })
    }
}

async fn fetch_index(refreshed: &Refreshed, name: &str) -> Result<ChunkIndex> {
    let bytes = read_small_target(&refreshed.repo, name).await?;
    ChunkIndex::from_json(&bytes).context(error::ChunkIndexSnafu { target: name })
}

/// What every image's install needs.
#[derive(Clone)]
struct Context<'a> {
    updater: &'a Updater,
    refreshed: &'a Refreshed,
    version: &'a str,
    /// What the images chunked so far measured of the server (the next one's budget starts
    /// there).
    learned: Learned,
    progress: &'a dyn ProgressSink,
    cancel: &'a CancellationToken,
}

impl Context<'_> {
    /// Writes one image, from its chunks when it has an index (and the server answers Range
    /// requests), else from its lz4 stream. Returns what was written and whether it was chunked
    /// (then every chunk is already verified on disk).
    async fn write(
        &mut self,
        job: ImageJob<'_>,
        chunks: &Option<(Arc<ChunkIndex>, Option<ChunkIndex>)>,
        active: Option<&PartitionInfo>,
        tree: Option<&Arc<HashTree>>,
    ) -> Result<(Written, bool)> {
        check(self.cancel)?;
        if let Some((index, active_index)) = chunks {
            let chunked = ChunkedJob {
                image: job.image,
                target: job.target,
                index: index.clone(),
                source: self.chunk_source(index)?,
                partition: job.partition,
                active,
                active_index: active_index.as_ref(),
                tree,
            };
            let outcome = install_chunked(
                &self.updater.disk,
                &chunked,
                self.version,
                &mut self.learned,
                self.progress,
                self.cancel,
            )
            .await?;
            if let Outcome::Installed(counts) = outcome {
                tracing::info!(
                    "{}: {} chunks in place, {} copied, {} zeroed, {} downloaded ({} bytes)",
                    job.target,
                    counts.reused,
                    counts.copied,
                    counts.zeroed,
                    counts.downloaded,
                    counts.bytes_downloaded
                );
                let written = Written {
                    len: index.image_length(),
                    sha256: Some(*index.image_sha256().as_bytes()),
                };
                return Ok((written, true));
            }
        }
        let written = write_image(
            &self.refreshed.repo,
            &self.updater.disk,
            &job,
            self.version,
            self.progress,
            self.cancel,
        )
        .await?;
        Ok((written, false))
    }

    /// Where the chunk file of `index` is: its consistent-snapshot name under the targets URL.
    fn chunk_source(&self, index: &ChunkIndex) -> Result<ChunkSource> {
        let name = index.chunk_file().as_str();
        let target_name =
            tough::TargetName::new(name).context(error::TargetNameSnafu { target: name })?;
        let target = self
            .refreshed
            .repo
            .targets()
            .signed
            .find_target(&target_name, false)
            .ok()
            .context(error::MissingTargetSnafu { target: name })?;
        let base = &self.updater.config.targets_base_url;
        if target.length != index.chunk_file_length() {
            return Err(error::Error::FetchRange {
                url: base.to_string(),
                start: 0,
                end: index.chunk_file_length(),
                reason: format!(
                    "the signed targets metadata gives '{name}' {} bytes, its index {}",
                    target.length,
                    index.chunk_file_length()
                ),
            });
        }
        let file_name = if self.refreshed.repo.root().signed.consistent_snapshot {
            let sha: &[u8] = target.hashes.sha256.as_ref();
            format!("{}.{name}", hex::encode(sha))
        } else {
            name.to_string()
        };
        let url = base
            .join(&file_name)
            .map_err(|e| error::Error::FetchRange {
                url: base.to_string(),
                start: 0,
                end: index.chunk_file_length(),
                reason: e.to_string(),
            })?;
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| error::Error::FetchRange {
                url: url.to_string(),
                start: 0,
                end: index.chunk_file_length(),
                reason: "not a local path".to_string(),
            })?;
            return Ok(ChunkSource::File(path));
        }
        let transport =
            crate::transport::UpdogTransport::new(&self.updater.config, self.updater.http)?;
        Ok(ChunkSource::Http(transport, url))
    }
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
    let chunks = Chunking::load(updater, refreshed, update).await?;
    write_set(
        updater, refreshed, update, &chunks, &parts, None, progress, cancel,
    )
    .await?;
    progress.event(&ProgressEvent::phase(
        Phase::Done,
        Some(&update.version.to_string()),
    ));
    Ok(())
}

/// Targets the cache fetches at once, at most.
const CACHE_AT_ONCE: usize = 8;

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
    let (paths, repo) = (&updater.paths, &refreshed.repo);
    // `cache_metadata` creates its own directory; `save_target` needs its directory to exist.
    tokio::fs::create_dir_all(&paths.migrations_cache)
        .await
        .context(error::IoSnafu {
            verb: "create",
            path: &paths.migrations_cache,
        })?;
    // What tough's `Repository::cache` does, with the files fetched at once instead of one after
    // another (at most eight targets at a time: a long migration path has many): each is a
    // round trip to the server. The metadata files and the manifest the refresh fetched come
    // from its transport's copies (see `transport`), without a round trip.
    let prefix = if repo.root().signed.consistent_snapshot {
        Prefix::Digest
    } else {
        Prefix::None
    };
    let save = targets.into_iter().map(|name| async move {
        let target = tough::TargetName::new(name)?;
        repo.save_target(&target, &paths.migrations_cache, prefix)
            .await
    });
    let (metadata, saved) = tokio::join!(
        repo.cache_metadata(&paths.metadata_cache, true),
        futures_util::stream::iter(save)
            .buffered(CACHE_AT_ONCE)
            .try_collect::<Vec<()>>(),
    );
    saved.context(error::CacheSnafu {
        path: &paths.migrations_cache,
    })?;
    metadata.context(error::CacheSnafu {
        path: &paths.metadata_cache,
    })
}

/// Runs blocking work (scanning, reading partitions back) off the async threads.
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

//! The node's cache of the update repository, read offline at boot.
//!
//! updog fills it while installing an update (design section 10): the TUF metadata as published
//! in `var/cache/updog/metadata/` (`N.root.json` chain, `N.snapshot.json`, `N.targets.json`,
//! `timestamp.json`) and the targets in `var/lib/updog/migrations/` as `<sha256>.<name>`
//! (`manifest.json` and the migrations). The migrator loads it with tough from the root shipped
//! in the booted image, enforcing signatures and hashes but not expiry: a node may boot after
//! weeks powered off.

use crate::error::{self, Error, Result};
use futures_util::StreamExt;
use semver::Version;
use snafu::{OptionExt, ResultExt};
use std::path::{Path, PathBuf};
use tough::{ExpirationEnforcement, Repository, RepositoryLoader, TargetName};
use update_metadata::{Manifest, MigrationName, MigrationPath};
use url::Url;

/// The manifest's target name.
pub const MANIFEST: &str = "manifest.json";

/// Where the cached repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// The trusted root.json (shipped in the booted image).
    pub trusted_root: PathBuf,
    /// The metadata directory.
    pub metadata_dir: PathBuf,
    /// The targets directory (`<sha256>.<name>` files).
    pub targets_dir: PathBuf,
}

/// The migrations between two versions, read from the cache and verified.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) manifest: Manifest,
    pub(crate) path: MigrationPath,
    /// Each migration of the path with its verified (still compressed) bytes, in running order.
    pub(crate) targets: Vec<(MigrationName, Vec<u8>)>,
}

fn dir_url(dir: &Path) -> Result<Url> {
    let absolute = std::path::absolute(dir).context(error::ReadSnafu { path: dir })?;
    let mut url = Url::from_directory_path(&absolute)
        .ok()
        .context(error::FileUrlSnafu { path: dir })?;
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

impl Cache {
    async fn load(&self) -> Result<Repository> {
        let root = std::fs::read(&self.trusted_root).context(error::ReadSnafu {
            path: &self.trusted_root,
        })?;
        RepositoryLoader::new(
            &root,
            dir_url(&self.metadata_dir)?,
            dir_url(&self.targets_dir)?,
        )
        .expiration_enforcement(ExpirationEnforcement::Unsafe)
        .load()
        .await
        .context(error::LoadRepositorySnafu {
            path: &self.metadata_dir,
        })
    }

    /// Reads and verifies the manifest and every migration from `from` to `to`. Nothing runs
    /// until all of them have been read: a missing or altered target is refused first.
    pub(crate) fn fetch(&self, from: &Version, to: &Version) -> Result<Fetched> {
        block_on(async {
            let repo = self.load().await?;
            let bytes = read_target(&repo, MANIFEST).await?;
            let manifest = Manifest::from_json(&bytes).context(error::ManifestSnafu {
                action: "parse the cached manifest.json",
            })?;
            let path = manifest
                .migration_path(from, to)
                .context(error::ManifestSnafu {
                    action: format!("find the migrations from {from} to {to}"),
                })?;
            let mut targets = Vec::new();
            for name in &path.migrations {
                let bytes = read_target(&repo, name.as_str()).await?;
                targets.push((name.clone(), bytes));
            }
            Ok(Fetched {
                manifest,
                path,
                targets,
            })
        })
    }
}

async fn read_target(repo: &Repository, name: &str) -> Result<Vec<u8>> {
    let target = TargetName::new(name).context(error::TargetNameSnafu { name })?;
    let stream = repo
        .read_target(&target)
        .await
        .context(error::ReadTargetSnafu { name })?;
    let mut stream = stream.context(error::MissingTargetSnafu { name })?;
    let mut bytes = Vec::new();
    // tough checks length and sha256 as the stream ends; an error here means the bytes are
    // not the published ones, and none of them is used.
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.context(error::ReadTargetSnafu { name })?);
    }
    Ok(bytes)
}

/// Runs a future to completion on a private runtime, in a thread of its own so that a caller
/// already inside a tokio runtime (the node emulator) does not trip tokio's nesting check.
fn block_on<T: Send>(future: impl std::future::Future<Output = Result<T>> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context(error::RuntimeSnafu)?;
                runtime.block_on(future)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::Runtime {
                    source: std::io::Error::other("the cache reader panicked"),
                })
            })
    })
}

//! `repo-tool publish` and `repo-tool release ...`

use clap::Subcommand;
use repo_tools::Result;
use repo_tools::publish::{self, Change, Release, WaveSpec};
use repo_tools::time::{now, parse_when};
use semver::Version;
use std::path::{Path, PathBuf};
use update_metadata::WavePolicy;

#[derive(Debug, clap::Args)]
pub(super) struct PublishArgs {
    #[command(flatten)]
    repo: super::RepoArgs,
    /// A signed root.json to start a new repository with (copied as N.root.json).
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
    /// The release's version (semver).
    #[arg(long)]
    version: Version,
    /// The lz4-compressed BOOT image.
    #[arg(long, value_name = "FILE")]
    boot_image: PathBuf,
    /// The lz4-compressed ROOT image.
    #[arg(long, value_name = "FILE")]
    root_image: PathBuf,
    /// The lz4-compressed HASH (dm-verity) image.
    #[arg(long, value_name = "FILE")]
    hash_image: PathBuf,
    /// A migration file, in forward order (repeatable); compressed with lz4 unless it is already.
    #[arg(long = "migration", value_name = "FILE")]
    migrations: Vec<PathBuf>,
    /// The version the migrations start from (default: the newest published version below).
    #[arg(long)]
    migrations_from: Option<Version>,
    /// Set max_version of every update of the variant and arch (default: the newest release).
    #[arg(long)]
    max_version: Option<Version>,
    #[command(flatten)]
    waves: WaveArgs,
    /// Cut each image into chunks of this many bytes (a power of two, 4096 to 64 MiB) for
    /// verified, resumable and delta installs (docs/formats.md, "Chunk index").
    #[arg(long, value_name = "BYTES", default_value_t = update_metadata::chunks::DEFAULT_CHUNK_SIZE, conflicts_with = "no_chunks")]
    chunk_size: u64,
    /// Publish the images as lz4 streams only, without chunk indexes.
    #[arg(long)]
    no_chunks: bool,
    #[command(flatten)]
    sign: super::SignArgs,
}

/// How to set waves.
#[derive(Debug, clap::Args)]
pub(super) struct WaveArgs {
    /// A wave policy (TOML: `[[waves]]` start_after, fleet_percentage); default: Bottlerocket's.
    #[arg(long, value_name = "FILE", conflicts_with = "no_waves")]
    wave_policy: Option<PathBuf>,
    /// When the first wave's offsets count from (RFC 3339, "now", or an offset).
    #[arg(long, default_value = "now")]
    waves_start: String,
    /// Every node may take the release at once.
    #[arg(long)]
    no_waves: bool,
}

impl WaveArgs {
    fn spec(&self) -> Result<WaveSpec> {
        if self.no_waves {
            return Ok(WaveSpec::None);
        }
        let policy = match &self.wave_policy {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    repo_tools::Error::ReadFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                WavePolicy::from_toml(&text).map_err(|source| repo_tools::Error::Manifest {
                    action: format!("read wave policy '{}' for", path.display()),
                    source: Box::new(source),
                })?
            }
            None => WavePolicy::bottlerocket_default(),
        };
        Ok(WaveSpec::Policy(
            policy,
            parse_when(&self.waves_start, now())?,
        ))
    }
}

impl PublishArgs {
    pub(super) async fn run(self) -> Result<()> {
        let dir = self.repo.dir()?;
        let release = Release {
            version: self.version,
            boot: self.boot_image,
            root: self.root_image,
            hash: self.hash_image,
            migrations: self.migrations,
            migrations_from: self.migrations_from,
            max_version: self.max_version,
            waves: self.waves.spec()?,
        };
        // The inputs are checked before waiting for the lock; the repository only under it.
        publish::check_inputs(&release)?;
        // The publish that creates the repository creates its directory to lock it; refused,
        // it removes the directories it created, so that it changes nothing on disk.
        let created = self.root.as_ref().and_then(|_| first_missing(&dir.base));
        let _lock = super::lock(&dir, self.root.is_some())?;
        let now = now();
        let published = async {
            publish::publish_chunked(
                &dir,
                self.root.as_deref(),
                self.repo.trusted_root.as_deref(),
                &release,
                (!self.no_chunks).then_some(self.chunk_size),
                &self.sign.keys,
                self.sign.expiries(now)?,
                now,
            )
            .await
        }
        .await;
        if let (Err(_), Some(top)) = (&published, &created) {
            remove_empty_dirs(&dir.base, top);
        }
        let written = published?;
        println!(
            "published {} (metadata version {}, root {})",
            release.version, written.metadata, written.root
        );
        Ok(())
    }
}

/// The highest of `path` and its parents that does not exist (`None` if `path` exists).
fn first_missing(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .last()
        .map(Path::to_path_buf)
}

/// Removes the empty directories under `base`, then `base` and its parents up to `top`, each
/// only while it is empty: a file is never removed.
fn remove_empty_dirs(base: &Path, top: &Path) {
    fn prune(dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                prune(&entry.path());
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
    prune(base);
    for dir in base.ancestors() {
        if std::fs::remove_dir(dir).is_err() || dir == top {
            break;
        }
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum ReleaseCommand {
    /// Pull a release: remove it from the manifest and lower max_version so nodes on it move down.
    Pull {
        #[command(flatten)]
        repo: super::RepoArgs,
        /// The version to pull.
        #[arg(long)]
        version: Version,
        #[command(flatten)]
        sign: super::SignArgs,
    },
    /// Set max_version of every update of the variant and arch.
    SetMaxVersion {
        #[command(flatten)]
        repo: super::RepoArgs,
        /// The highest version nodes may run.
        #[arg(long)]
        max_version: Version,
        #[command(flatten)]
        sign: super::SignArgs,
    },
    /// Change a release's waves: a new policy or start (speed up, resume), all at once, or pause.
    Waves {
        #[command(flatten)]
        repo: super::RepoArgs,
        /// The release.
        #[arg(long)]
        version: Version,
        #[command(flatten)]
        waves: WaveArgs,
        /// Stop the rollout where it is until the waves are set again.
        #[arg(long, conflicts_with_all = ["no_waves", "wave_policy"])]
        pause: bool,
        #[command(flatten)]
        sign: super::SignArgs,
    },
}

impl ReleaseCommand {
    pub(super) async fn run(self) -> Result<()> {
        let (repo, sign, change) = match self {
            ReleaseCommand::Pull {
                repo,
                version,
                sign,
            } => (repo, sign, Change::Pull(version)),
            ReleaseCommand::SetMaxVersion {
                repo,
                max_version,
                sign,
            } => (repo, sign, Change::MaxVersion(max_version)),
            ReleaseCommand::Waves {
                repo,
                version,
                waves,
                pause,
                sign,
            } => {
                let spec = if pause {
                    WaveSpec::Pause
                } else {
                    waves.spec()?
                };
                (repo, sign, Change::Waves(version, spec))
            }
        };
        let dir = repo.dir()?;
        let _lock = super::lock(&dir, false)?;
        let now = now();
        let written = publish::change(
            &dir,
            repo.trusted_root.as_deref(),
            &change,
            &sign.keys,
            sign.expiries(now)?,
            now,
        )
        .await?;
        println!("metadata version {}", written.metadata);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn a_refused_first_publish_removes_only_the_empty_directories_it_created() {
        let work = tempfile::tempdir().unwrap();
        let base = work.path().join("new/parent/repo");
        let top = super::first_missing(&base).unwrap();
        assert_eq!(top, work.path().join("new"));
        assert_eq!(super::first_missing(work.path()), None);

        std::fs::create_dir_all(base.join("demo/x86_64")).unwrap();
        std::fs::create_dir_all(base.join("targets")).unwrap();
        super::remove_empty_dirs(&base, &top);
        assert!(!top.exists());
        assert!(work.path().exists());

        // A file stays, and so do the directories above it.
        std::fs::create_dir_all(base.join("targets")).unwrap();
        std::fs::write(base.join("targets/kept"), b"x").unwrap();
        std::fs::create_dir_all(base.join("demo/x86_64")).unwrap();
        super::remove_empty_dirs(&base, &top);
        assert!(base.join("targets/kept").exists());
        assert!(!base.join("demo").exists());
    }
}

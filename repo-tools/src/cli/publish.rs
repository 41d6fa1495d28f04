//! `repo-tool publish` and `repo-tool release ...`

use clap::Subcommand;
use repo_tools::Result;
use repo_tools::publish::{self, Change, Release, WaveSpec};
use repo_tools::time::{now, parse_when};
use semver::Version;
use std::path::PathBuf;
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
        let lock = super::lock(&dir, self.root.is_some())?;
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
        // The publish that creates the repository created its directory to lock it; refused,
        // it changes nothing on disk.
        if published.is_err() {
            lock.remove_created();
        }
        let written = published?;
        println!(
            "published {} (metadata version {}, root {})",
            release.version, written.metadata, written.root
        );
        Ok(())
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

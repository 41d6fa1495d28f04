//! [`Updater`]: a node's configuration and state, and the verbs that read the repository
//! (refresh, choose) or only flip bits (apply, revert, reboot).

use crate::config::Config;
use crate::error::{self, Result};
use crate::lock::UpdateLock;
use crate::os_release::Running;
use crate::paths::Paths;
use crate::seed::node_seed;
use crate::transport::{HttpSettings, UpdogTransport};
use semver::Version;
use serde::Deserialize;
use signpost::{SetId, SignpostDisk};
use snafu::{OptionExt, ResultExt};
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use tough::{IntoVec, Repository, TargetName};
use update_metadata::{ChoiceOptions, Manifest, Node, Seed, Update};

/// The manifest's target name.
pub const MANIFEST: &str = "manifest.json";

/// What to install: `--image V` and `--now`/`--ignore-waves`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Exactly this version (even if its first boot failed here before).
    pub image: Option<Version>,
    /// Ignore waves (in addition to the config's `ignore_waves`).
    pub ignore_waves: bool,
}

/// A node: where its files are, its config, what it runs, its seed and its disk.
#[derive(Debug, Clone)]
pub struct Updater {
    /// The node's paths.
    pub paths: Paths,
    /// updog.toml.
    pub config: Config,
    /// The booted image.
    pub running: Running,
    /// The node's seed.
    pub seed: Seed,
    /// The disk holding the partition sets.
    pub disk: PathBuf,
    /// HTTP timeouts and retries.
    pub http: HttpSettings,
}

/// The loaded repository and its manifest.
#[derive(Debug)]
pub struct Refreshed {
    /// The verified repository.
    pub repo: Repository,
    /// Its manifest.json.
    pub manifest: Manifest,
}

impl Updater {
    /// Reads the config, the booted image's os-release and the seed (generating it once).
    pub fn new(sysroot: &Path, disk: Option<&Path>) -> Result<Updater> {
        let paths = Paths::new(sysroot);
        let config = Config::load(&paths.config)?;
        let http = HttpSettings::from_config(&config);
        let running = Running::read(&paths.os_release)?;
        let seed = node_seed(config.seed, &paths.seed)?;
        let disk = paths.disk(disk)?;
        Ok(Updater {
            paths,
            config,
            running,
            seed,
            disk,
            http,
        })
    }

    /// The node as the choice sees it.
    pub fn node(&self) -> Node {
        Node {
            variant: self.running.variant.clone(),
            arch: self.running.arch.clone(),
            version: self.running.version.clone(),
            seed: self.seed,
        }
    }

    /// Loads and verifies the repository (raising the trusted floor) and its manifest.
    pub async fn refresh(&self) -> Result<Refreshed> {
        let transport = UpdogTransport::new(&self.config, self.http)?;
        let repo = crate::tuf::load_repository(
            &self.paths,
            &self.config.metadata_base_url,
            &self.config.targets_base_url,
            transport,
        )
        .await?;
        let bytes = read_small_target(&repo, MANIFEST).await?;
        let manifest =
            Manifest::from_json(&bytes).context(error::ManifestSnafu { target: MANIFEST })?;
        Ok(Refreshed { repo, manifest })
    }

    /// Choice options from the config, the request and `failed-versions.json`.
    pub fn choice_options(&self, request: &Request) -> Result<ChoiceOptions> {
        let mut options = ChoiceOptions::default();
        options.ignore_waves = self.config.ignore_waves || request.ignore_waves;
        options.version_lock = self.config.version_lock.clone();
        options.image = request.image.clone();
        options.exclude = read_failed_versions(&self.paths.failed_versions)?;
        Ok(options)
    }

    /// The update to take now, if any; `--image V` that the manifest does not offer is an error.
    pub fn choose(&self, refreshed: &Refreshed, request: &Request) -> Result<Option<Update>> {
        let options = self.choice_options(request)?;
        let now = jiff::Timestamp::now();
        let chosen = refreshed
            .manifest
            .choose(&self.node(), now, &options)
            .cloned();
        match (&chosen, &request.image) {
            (None, Some(version)) => error::NoSuchVersionSnafu {
                version: version.clone(),
                variant: self.running.variant.clone(),
                arch: self.running.arch.clone(),
            }
            .fail(),
            _ => Ok(chosen),
        }
    }

    /// Every update this node may take now (`check-update --all`), newest first.
    pub fn applicable(&self, refreshed: &Refreshed, request: &Request) -> Result<Vec<Update>> {
        let options = self.choice_options(request)?;
        Ok(refreshed
            .manifest
            .applicable_updates(&self.node(), jiff::Timestamp::now(), &options)
            .into_iter()
            .cloned()
            .collect())
    }

    /// Opens the disk with signpost and finds the active set.
    pub fn open_disk(&self) -> Result<SignpostDisk<File>> {
        let name = self.disk.display().to_string();
        let file = signpost::discover::open_disk(&self.disk, true).context(error::DiskSnafu {
            action: format!("open disk '{name}'"),
        })?;
        let mut disk = SignpostDisk::open(file, name.clone()).context(error::DiskSnafu {
            action: format!("read the partition table of '{name}'"),
        })?;
        let (active, _) = signpost::discover::find_active_set(&disk, &self.paths.sysroot, None)
            .context(error::DiskSnafu {
                action: "find the active set",
            })?;
        disk.set_active(Some(active));
        Ok(disk)
    }

    /// `update-apply`: makes the staged (valid) inactive set the next to boot.
    pub fn apply(&self, _lock: &UpdateLock) -> Result<Applied> {
        let mut disk = self.open_disk()?;
        let inactive = disk.inactive_set().context(error::WorkerSnafu {
            action: "find the inactive set",
            reason: "the active set is unknown".to_string(),
        })?;
        let flags = disk.flags(inactive);
        if flags.priority.is_zero() && flags.tries_left.is_zero() && !flags.successful {
            return Ok(Applied::Nothing);
        }
        // Applied before and not booted yet: the inactive set already boots next.
        if disk.next_boot() == Some(inactive) && !flags.successful {
            return Ok(Applied::Already(inactive));
        }
        disk.upgrade_to_inactive().context(error::DiskSnafu {
            action: format!("apply the update in set {inactive}"),
        })?;
        Ok(Applied::Now(inactive))
    }

    /// `update-revert`: undoes `update-apply` (signpost's cancel-upgrade, as Bottlerocket's
    /// updog does). `None` when nothing was applied.
    pub fn revert(&self, _lock: &UpdateLock) -> Result<Option<SetId>> {
        let mut disk = self.open_disk()?;
        let active = disk.active_set().context(error::WorkerSnafu {
            action: "find the active set",
            reason: "the active set is unknown".to_string(),
        })?;
        if disk.flags(active.other()).priority.is_zero() {
            return Ok(None);
        }
        disk.cancel_upgrade().context(error::DiskSnafu {
            action: format!("revert the update in set {}", active.other()),
        })?;
        Ok(Some(active))
    }

    /// Runs the configured reboot command.
    pub fn reboot(&self) -> Result<()> {
        let command = self.config.reboot_command.join(" ");
        let fail = |reason: String| error::Error::Reboot {
            command: command.clone(),
            reason,
        };
        let (program, args) = self
            .config
            .reboot_command
            .split_first()
            .ok_or_else(|| fail("empty command".to_string()))?;
        let status = std::process::Command::new(program)
            .args(args)
            .status()
            .map_err(|e| fail(e.to_string()))?;
        if status.success() {
            Ok(())
        } else {
            Err(fail(status.to_string()))
        }
    }
}

/// Reads a small target (the manifest) whole; tough bounds it by its signed length.
pub(crate) async fn read_small_target(repo: &Repository, name: &str) -> Result<Vec<u8>> {
    let target = TargetName::new(name).context(error::TargetNameSnafu { target: name })?;
    let stream = repo
        .read_target(&target)
        .await
        .context(error::FetchTargetSnafu { target: name })?
        .context(error::MissingTargetSnafu { target: name })?;
    stream
        .into_vec()
        .await
        .context(error::FetchTargetSnafu { target: name })
}

/// `failed-versions.json`: `{"versions": ["1.2.0"]}`; absent means none.
#[derive(Debug, Deserialize)]
struct FailedVersions {
    versions: Vec<Version>,
}

fn read_failed_versions(path: &Path) -> Result<BTreeSet<Version>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<FailedVersions>(&bytes)
            .map(|f| f.versions.into_iter().collect())
            .map_err(|e| error::Error::StateFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(source) => Err(source).context(error::IoSnafu { verb: "read", path }),
    }
}

/// What [`Updater::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing is staged in the inactive set.
    Nothing,
    /// The staged set already boots next (applied before, not booted yet): nothing changed.
    Already(SetId),
    /// The staged set now boots next.
    Now(SetId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_versions_are_read_and_the_documented_example_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failed-versions.json");
        assert!(read_failed_versions(&path).unwrap().is_empty());
        let example = test_tools::marked_block(
            include_str!("../../docs/formats-updog.md"),
            "failed-versions",
        )
        .unwrap();
        std::fs::write(&path, example).unwrap();
        let versions = read_failed_versions(&path).unwrap();
        assert!(versions.contains(&Version::new(1, 2, 0)));
        std::fs::write(&path, "{\"versions\": [\"x\"]}").unwrap();
        let err = read_failed_versions(&path).unwrap_err().to_string();
        assert!(err.starts_with("Failed to parse"), "{err}");
    }
}

//! The manifest.json model, its (de)serialisation, and the editing API used by publishers.

use crate::chunks::ChunkIndexes;
use crate::error::{self, Error, Result};
use crate::names::{MigrationName, TargetName};
use crate::parse::{MigrationMap, RawManifest, WireManifest};
use crate::waves::Waves;
use semver::Version;
use serde::{Deserialize, Serialize, Serializer};
use snafu::{ResultExt, ensure};
use std::str::FromStr;

/// The three images of a release, as TUF target names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Images {
    /// The BOOT partition image.
    pub boot: TargetName,
    /// The ROOT partition image.
    pub root: TargetName,
    /// The HASH (dm-verity) partition image.
    pub hash: TargetName,
}

impl Images {
    /// The three images of a release.
    pub fn new(boot: TargetName, root: TargetName, hash: TargetName) -> Images {
        Images { boot, root, hash }
    }
}

/// One release of one variant and architecture.
///
/// Fields we add beyond Bottlerocket's are optional
/// (`#[serde(default, skip_serializing_if = ...)]`), so Bottlerocket's parser, which ignores
/// unknown fields, still reads our manifests; the struct is `#[non_exhaustive]` so adding one is
/// not a breaking change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Update {
    /// The variant, e.g. `aws-k8s-1.29`.
    pub variant: String,
    /// The architecture, e.g. `x86_64`.
    pub arch: String,
    /// This release's version.
    pub version: Version,
    /// The highest version nodes of this variant and architecture may run; an update above it
    /// is not offered (a pulled release), and nodes running above it move down.
    pub max_version: Version,
    /// When each seed may take this update.
    pub waves: Waves,
    /// The images to install.
    pub images: Images,
    /// Our addition: the images' chunk indexes, for verified, resumable, delta installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_indexes: Option<ChunkIndexes>,
}

impl Update {
    /// A release with no waves and `max_version` = `version`.
    pub fn new(
        variant: impl Into<String>,
        arch: impl Into<String>,
        version: Version,
        images: Images,
    ) -> Update {
        Update {
            variant: variant.into(),
            arch: arch.into(),
            max_version: version.clone(),
            version,
            waves: Waves::none(),
            images,
            chunk_indexes: None,
        }
    }

    /// True if this update is for `variant` and `arch`.
    pub fn is_for(&self, variant: &str, arch: &str) -> bool {
        self.variant == variant && self.arch == arch
    }

    fn is(&self, variant: &str, arch: &str, version: &Version) -> bool {
        self.is_for(variant, arch) && self.version == *version
    }
}

/// The manifest: every update of every variant and architecture in the repository, and the
/// migrations between versions.
///
/// Parse with [`Manifest::from_json`] (or `str::parse`, or serde); write with
/// [`Manifest::to_json`]. Serialising what was parsed gives a fixed point: pretty JSON, waves
/// keyed by decimal seed in numeric order, migrations sorted by (from, to).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawManifest")]
pub struct Manifest {
    updates: Vec<Update>,
    migrations: MigrationMap,
}

impl Serialize for Manifest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireManifest {
            updates: &self.updates,
            migrations: &self.migrations,
        }
        .serialize(serializer)
    }
}

impl FromStr for Manifest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Manifest> {
        Manifest::from_json(s.as_bytes())
    }
}

impl Manifest {
    pub(crate) fn from_parts(updates: Vec<Update>, migrations: MigrationMap) -> Manifest {
        Manifest {
            updates,
            migrations,
        }
    }

    /// Parses manifest.json strictly; errors name the field (`updates[2].waves: ...`).
    pub fn from_json(bytes: &[u8]) -> Result<Manifest> {
        let raw: RawManifest = serde_json::from_slice(bytes).context(error::ParseManifestSnafu)?;
        Manifest::try_from(raw)
    }

    /// Serialises as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<String> {
        let mut json = serde_json::to_string_pretty(self).context(error::SerializeManifestSnafu)?;
        json.push('\n');
        Ok(json)
    }

    /// Every update, in manifest order.
    pub fn updates(&self) -> &[Update] {
        &self.updates
    }

    /// The migrations: (from, to) → ordered list of migration targets, sorted by (from, to).
    pub fn migrations(&self) -> &MigrationMap {
        &self.migrations
    }

    /// The update of `variant`/`arch` at `version`, if listed.
    pub fn update(&self, variant: &str, arch: &str, version: &Version) -> Option<&Update> {
        self.updates.iter().find(|u| u.is(variant, arch, version))
    }

    /// Adds an update; an error if one with the same variant, arch and version is listed.
    ///
    /// As Bottlerocket's `add_update` does, every update of the same variant and arch (the new
    /// one included) then gets the same `max_version`: the highest of the new update's
    /// `max_version` and the existing ones, so adding an older release never pulls newer ones.
    /// To pull a release, lower it with [`Manifest::set_max_version`] or remove it.
    pub fn add_update(&mut self, update: Update) -> Result<()> {
        ensure!(
            self.update(&update.variant, &update.arch, &update.version)
                .is_none(),
            error::UpdateExistsSnafu {
                variant: &update.variant,
                arch: &update.arch,
                version: update.version.clone(),
            }
        );
        let max = self
            .updates
            .iter()
            .filter(|u| u.is_for(&update.variant, &update.arch))
            .map(|u| &u.max_version)
            .chain([&update.max_version])
            .max()
            .cloned()
            .unwrap_or_else(|| update.max_version.clone());
        let (variant, arch) = (update.variant.clone(), update.arch.clone());
        self.updates.push(update);
        self.set_max_version(&variant, &arch, &max);
        Ok(())
    }

    /// Removes the update of `variant`/`arch` at `version` and returns it; an error if absent.
    /// Other updates' `max_version` is left alone.
    pub fn remove_update(
        &mut self,
        variant: &str,
        arch: &str,
        version: &Version,
    ) -> Result<Update> {
        let index = self
            .updates
            .iter()
            .position(|u| u.is(variant, arch, version))
            .ok_or_else(|| not_found(variant, arch, version))?;
        Ok(self.updates.remove(index))
    }

    /// Sets `max_version` on every update of `variant`/`arch`; returns how many there were.
    pub fn set_max_version(&mut self, variant: &str, arch: &str, max_version: &Version) -> usize {
        let mut count = 0;
        for update in self.updates.iter_mut().filter(|u| u.is_for(variant, arch)) {
            update.max_version = max_version.clone();
            count += 1;
        }
        count
    }

    /// Replaces the waves of the update of `variant`/`arch` at `version`; an error if absent.
    pub fn set_waves(
        &mut self,
        variant: &str,
        arch: &str,
        version: &Version,
        waves: Waves,
    ) -> Result<()> {
        let update = self
            .updates
            .iter_mut()
            .find(|u| u.is(variant, arch, version))
            .ok_or_else(|| not_found(variant, arch, version))?;
        update.waves = waves;
        Ok(())
    }

    /// Adds the ordered migration list for (from, to); an error if the pair is already listed
    /// or `from` is not below `to`. An empty list is meaningful: it says no migration is needed
    /// for that step.
    pub fn add_migration(
        &mut self,
        from: Version,
        to: Version,
        migrations: Vec<MigrationName>,
    ) -> Result<()> {
        ensure!(from < to, error::MigrationNotAscendingSnafu { from, to });
        let key = (from, to);
        ensure!(
            !self.migrations.contains_key(&key),
            error::MigrationExistsSnafu {
                from: key.0,
                to: key.1
            }
        );
        self.migrations.insert(key, migrations);
        Ok(())
    }
}

fn not_found(variant: &str, arch: &str, version: &Version) -> Error {
    Error::UpdateNotFound {
        variant: variant.to_string(),
        arch: arch.to_string(),
        version: version.clone(),
    }
}

#[cfg(test)]
mod tests;

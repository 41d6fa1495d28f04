//! Which update a node takes: a pure function of the manifest, the node, the time and options.
//!
//! Applicable updates are those of the node's variant and arch with `version <= max_version`
//! and a ready wave (unless waves are ignored), newest first. From them:
//! - `--image V` picks exactly V (no other rule applies, not even the exclusion of failed
//!   versions: naming a version is how an operator retries it);
//! - otherwise failed versions (their first boot failed) are dropped;
//! - a version lock other than `latest` picks exactly that version, or nothing if it is running;
//! - otherwise the newest update with running < version, or, if the running version is above
//!   `max_version` (a pulled release), the newest applicable update even if lower.

use crate::error::{Error, Result};
use crate::manifest::{Manifest, Update};
use crate::waves::Seed;
use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// updog's `version-lock` setting: `latest`, or one exact version (a leading `v` is allowed,
/// as Bottlerocket allows it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum VersionLock {
    /// Follow the newest applicable update.
    #[default]
    Latest,
    /// Go to exactly this version.
    Exact(Version),
}

impl FromStr for VersionLock {
    type Err = Error;
    fn from_str(s: &str) -> Result<VersionLock> {
        if s == "latest" {
            return Ok(VersionLock::Latest);
        }
        let bare = s.strip_prefix('v').unwrap_or(s);
        Version::parse(bare)
            .map(VersionLock::Exact)
            .map_err(|source| Error::ParseVersionLock {
                value: s.to_string(),
                source,
            })
    }
}

impl TryFrom<String> for VersionLock {
    type Error = Error;
    fn try_from(s: String) -> Result<VersionLock> {
        s.parse()
    }
}

impl From<VersionLock> for String {
    fn from(lock: VersionLock) -> String {
        lock.to_string()
    }
}

impl fmt::Display for VersionLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionLock::Latest => f.write_str("latest"),
            VersionLock::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// What the node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The running variant.
    pub variant: String,
    /// The running architecture.
    pub arch: String,
    /// The running version.
    pub version: Version,
    /// The node's seed.
    pub seed: Seed,
}

/// How to choose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChoiceOptions {
    /// Take updates whatever their waves say (`--now`/`ignore_waves`).
    pub ignore_waves: bool,
    /// The version lock from updog's settings.
    pub version_lock: VersionLock,
    /// `--image V`: exactly this version.
    pub image: Option<Version>,
    /// Versions whose first boot failed on this node; not offered again unless named by
    /// `image`.
    pub exclude: BTreeSet<Version>,
}

impl Manifest {
    /// The updates this node may take at `now`, newest first (`updog check-update --all`):
    /// the node's variant and arch, `version <= max_version`, and a ready wave unless
    /// `options.ignore_waves`. The exclusion of failed versions is not applied here, so a
    /// listing still shows them.
    pub fn applicable_updates(
        &self,
        node: &Node,
        now: Timestamp,
        options: &ChoiceOptions,
    ) -> Vec<&Update> {
        let mut updates: Vec<&Update> = self
            .updates()
            .iter()
            .filter(|u| u.is_for(&node.variant, &node.arch))
            .filter(|u| u.version <= u.max_version)
            .filter(|u| options.ignore_waves || u.waves.is_ready(node.seed, now))
            .collect();
        // Stable: of duplicate versions, the first listed wins.
        updates.sort_by(|a, b| b.version.cmp(&a.version));
        updates
    }

    /// The update this node should take at `now`, or `None` if it should stay.
    pub fn choose(&self, node: &Node, now: Timestamp, options: &ChoiceOptions) -> Option<&Update> {
        let updates = self.applicable_updates(node, now, options);
        if let Some(image) = &options.image {
            return updates.into_iter().find(|u| u.version == *image);
        }
        let mut updates = updates
            .into_iter()
            .filter(|u| !options.exclude.contains(&u.version));
        match &options.version_lock {
            VersionLock::Exact(lock) if *lock == node.version => None,
            VersionLock::Exact(lock) => updates.find(|u| u.version == *lock),
            VersionLock::Latest => {
                updates.find(|u| node.version < u.version || node.version > u.max_version)
            }
        }
    }
}

#[cfg(test)]
mod tests;

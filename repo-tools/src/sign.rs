//! Signing an edit and committing it: versions, expiries, key checks, write order.

use crate::error::{self, Result};
use crate::keys;
use crate::repo::RepoDir;
use crate::root;
use crate::time::{next_version, whole_seconds};
use jiff::{Timestamp, ToSpan};
use snafu::{ResultExt, ensure};
use std::collections::HashSet;
use std::path::PathBuf;
use tough::Repository;
use tough::editor::RepositoryEditor;
use tough::editor::signed::SignedRepository;
use tough::schema::RoleType;

/// When the re-signed roles expire.
#[derive(Debug, Clone, Copy)]
pub struct Expiries {
    /// timestamp.json (default: a week from now).
    pub timestamp: Timestamp,
    /// N.snapshot.json (default: two weeks from now).
    pub snapshot: Timestamp,
    /// N.targets.json (default: two weeks from now).
    pub targets: Timestamp,
}

impl Expiries {
    /// The defaults of design section 5, counted from `now`.
    pub fn defaults(now: Timestamp) -> Self {
        let days = |n: i64| {
            now.checked_add((n * 24).hours())
                .map(whole_seconds)
                .unwrap_or(now)
        };
        Self {
            timestamp: days(7),
            snapshot: days(14),
            targets: days(14),
        }
    }
}

/// The version numbers of what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// The version of targets, snapshot and timestamp (the same number for all three).
    pub metadata: u64,
    /// The root version that signed them.
    pub root: u64,
}

/// Signs `editor` with `key_files` under `signing_root` (default: the newest root in the
/// repository) and writes it: every role gets version max(now, previous + 1)
/// and the given expiries; targets, snapshot and timestamp thresholds are checked first so a
/// missing key is reported by role, and nothing is written unless signing succeeded.
pub async fn sign_and_commit(
    repo_dir: &RepoDir,
    editor: RepositoryEditor,
    previous: Option<&Repository>,
    signing_root: Option<&std::path::Path>,
    key_files: &[PathBuf],
    expiries: Expiries,
    now: Timestamp,
) -> Result<Versions> {
    let (signed, versions) = sign(
        repo_dir,
        editor,
        previous,
        signing_root,
        key_files,
        expiries,
        now,
    )
    .await?;
    repo_dir.commit(&signed).await?;
    Ok(versions)
}

/// [`sign_and_commit`] without the commit: signs the edit and writes nothing, so that a caller
/// can copy the targets the edit names first.
pub(crate) async fn sign(
    repo_dir: &RepoDir,
    mut editor: RepositoryEditor,
    previous: Option<&Repository>,
    signing_root: Option<&std::path::Path>,
    key_files: &[PathBuf],
    expiries: Expiries,
    now: Timestamp,
) -> Result<(SignedRepository, Versions)> {
    let rules = signing_rules(repo_dir, signing_root)?;
    let root_version = rules.signed.version.get();
    check_signing_keys(&rules.signed, key_files, Signing::Full, root_version)?;

    let previous_version = previous.map_or(0, |repo| {
        [
            repo.targets().signed.version.get(),
            repo.snapshot().signed.version.get(),
            repo.timestamp().signed.version.get(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    });
    let version = next_version(previous_version, now);
    editor
        .targets_version(version)
        .context(error::ToughSnafu {
            action: "set the targets version",
        })?
        .targets_expires(expiries.targets)
        .context(error::ToughSnafu {
            action: "set the targets expiry",
        })?
        .snapshot_version(version)
        .snapshot_expires(expiries.snapshot)
        .timestamp_version(version)
        .timestamp_expires(expiries.timestamp);
    let signed = editor
        .sign(&keys::key_sources(key_files))
        .await
        .context(error::ToughSnafu {
            action: format!(
                "sign the repository in '{}'",
                repo_dir.metadata_dir().display()
            ),
        })?;
    Ok((
        signed,
        Versions {
            metadata: version.get(),
            root: root_version,
        },
    ))
}

/// Checks, before anything is written, that `key_files` can sign under `signing_root` (default:
/// the newest root in the repository): the checks [`sign_and_commit`] makes, so that a command
/// refused for its keys has not yet copied a target.
pub fn check_keys(
    repo_dir: &RepoDir,
    signing_root: Option<&std::path::Path>,
    key_files: &[PathBuf],
) -> Result<()> {
    let rules = signing_rules(repo_dir, signing_root)?;
    check_signing_keys(
        &rules.signed,
        key_files,
        Signing::Full,
        rules.signed.version.get(),
    )
}

fn signing_rules(
    repo_dir: &RepoDir,
    signing_root: Option<&std::path::Path>,
) -> Result<tough::schema::Signed<tough::schema::Root>> {
    match signing_root {
        Some(path) => root::load(path),
        None => {
            let (_, path) = repo_dir
                .latest_root()?
                .ok_or_else(|| error::Error::NoRoot {
                    path: repo_dir.metadata_dir(),
                })?;
            root::load(&path)
        }
    }
}

/// Which roles a signing signs, and so which keys it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signing {
    /// targets, snapshot and timestamp: every key must be listed in root for some role.
    Full,
    /// timestamp alone: every key must be a timestamp key.
    TimestampOnly,
}

impl Signing {
    fn roles(self) -> &'static [RoleType] {
        match self {
            Self::Full => &[RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp],
            Self::TimestampOnly => &[RoleType::Timestamp],
        }
    }
}

/// Checks that `key_files` may sign under `rules` (root `root_version`): every key is one the
/// `signing` takes, and each role it signs has at least its threshold of *different* keys, so
/// that one key given twice counts once, as a client counts its signatures.
pub(crate) fn check_signing_keys(
    rules: &tough::schema::Root,
    key_files: &[PathBuf],
    signing: Signing,
    root_version: u64,
) -> Result<()> {
    let root_file = format!("{root_version}.root.json");
    let mut ids = Vec::with_capacity(key_files.len());
    for path in key_files {
        let id = keys::key_id_decoded(path)?;
        match signing {
            Signing::Full => ensure!(
                rules.roles.values().any(|k| k.keyids.contains(&id)),
                error::KeyNotInRootSnafu {
                    path,
                    keyid: keys::hex_id(&id),
                }
            ),
            Signing::TimestampOnly => ensure!(
                rules
                    .roles
                    .get(&RoleType::Timestamp)
                    .is_some_and(|k| k.keyids.contains(&id)),
                error::NotTimestampKeySnafu {
                    path,
                    keyid: keys::hex_id(&id),
                    root: &root_file,
                }
            ),
        }
        ids.push(id);
    }
    for &role in signing.roles() {
        let role_keys = rules.roles.get(&role);
        let valid = role_keys.map_or(0, |k| {
            ids.iter()
                .filter(|id| k.keyids.contains(id))
                .collect::<HashSet<_>>()
                .len()
        }) as u64;
        let threshold = role_keys.map_or(1, |k| k.threshold.get());
        ensure!(
            valid >= threshold,
            error::ThresholdSnafu {
                role: role.to_string(),
                which: format!("{root_file} (keys given: {})", key_files.len()),
                valid,
                threshold,
            }
        );
    }
    Ok(())
}

//! `refresh --timestamp-only`: a new `timestamp.json` signed with the timestamp key(s) alone.
//!
//! TUF's design has only the timestamp key sign often: a timestamp-only refresh keeps the
//! snapshot (and so targets) the current timestamp names, and raises only the timestamp's
//! version and expiry, so the daily job needs no targets or snapshot key. It writes
//! `timestamp.json` and nothing else; it refuses, writing nothing, keys that are not timestamp
//! keys of the root, too few of them, a snapshot or targets that would expire before the new
//! timestamp, and a version that would not rise.

use crate::error::{self, Result};
use crate::fsutil;
use crate::keys;
use crate::repo::RepoDir;
use crate::sign::{self, Signing};
use crate::time::next_version;
use aws_lc_rs::rand::SystemRandom;
use jiff::Timestamp;
use snafu::{ResultExt, ensure};
use std::path::{Path, PathBuf};
use tough::ExpirationEnforcement;
use tough::editor::signed::SignedRole;
use tough::schema::{KeyHolder, RoleType};

/// What a timestamp-only refresh wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// The new timestamp version.
    pub version: u64,
    /// When the new timestamp expires.
    pub expires: Timestamp,
}

/// Signs and writes a new `timestamp.json` for the published repository in `repo_dir` (loaded
/// from `trusted_root`, default its own `1.root.json`): version max(now, previous + 1), expiry
/// `expires`, the same snapshot meta (version, length and hashes) as the current timestamp,
/// signed with `key_files` to the threshold of the repository's newest root. The caller holds
/// the repository's [lock](crate::lock).
pub async fn refresh_timestamp(
    repo_dir: &RepoDir,
    trusted_root: Option<&Path>,
    key_files: &[PathBuf],
    expires: Timestamp,
    now: Timestamp,
) -> Result<Refreshed> {
    let trusted = repo_dir.trusted_root(trusted_root)?;
    // Loading checks, as a client would, every signature through the root chain and that the
    // snapshot file on disk has the version, length and hashes the current timestamp names: the
    // meta the new timestamp keeps.
    let repo = repo_dir
        .load(&trusted, ExpirationEnforcement::Unsafe)
        .await?;
    let root = &repo.root().signed;
    sign::check_signing_keys(root, key_files, Signing::TimestampOnly, root.version.get())?;

    let path = repo_dir.metadata_dir().join("timestamp.json");
    for (role, role_expires) in [
        (RoleType::Snapshot, repo.snapshot().signed.expires),
        (RoleType::Targets, repo.targets().signed.expires),
    ] {
        ensure!(
            role_expires >= expires,
            error::RoleExpiresFirstSnafu {
                path: &path,
                role: role.to_string(),
                role_expires,
                expires,
            }
        );
    }

    let current = &repo.timestamp().signed;
    let previous = current.version.get();
    let version = next_version(previous, now);
    ensure!(
        version.get() > previous,
        error::TimestampVersionSnafu {
            path: &path,
            previous,
        }
    );
    let mut timestamp =
        tough::schema::Timestamp::new(current.spec_version.clone(), version, expires);
    timestamp.meta = current.meta.clone();
    timestamp._extra = current._extra.clone();

    let signed = SignedRole::new(
        timestamp,
        &KeyHolder::Root(root.clone()),
        &keys::key_sources(key_files),
        &SystemRandom::new(),
    )
    .await
    .context(error::ToughSnafu {
        action: format!("sign '{}'", path.display()),
    })?;
    fsutil::write_atomic(&path, signed.buffer())?;
    Ok(Refreshed {
        version: version.get(),
        expires,
    })
}

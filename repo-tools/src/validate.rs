//! Checking a repository as a client would, and checking what expires soon.

use crate::error::{self, Result};
use crate::publish::{MANIFEST, load_manifest};
use crate::repo::{self, RepoDir};
use jiff::Timestamp;
use snafu::ensure;
use std::path::{Path, PathBuf};
use tough::{ExpirationEnforcement, Repository, TargetName};
use url::Url;

/// What a successful validation saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Targets downloaded and verified.
    pub targets: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Updates in the manifest.
    pub updates: usize,
}

/// Loads the repository at `metadata`/`targets` from `trusted_root` with expiry enforced,
/// downloads and verifies every target, and checks every name the manifest uses is a target.
/// Every problem found is reported, not just the first.
pub async fn validate(trusted_root: &Path, metadata: Url, targets: Url) -> Result<Report> {
    let repo = repo::load_from(
        trusted_root,
        metadata.clone(),
        targets,
        ExpirationEnforcement::Safe,
    )
    .await
    .map_err(|e| invalid(&metadata, vec![e.to_string()]))?;
    let mut problems = Vec::new();
    let mut bytes = 0;
    let names: Vec<TargetName> = repo.all_targets().map(|(name, _)| name.clone()).collect();
    for name in &names {
        match repo::verify_target(&repo, name).await {
            Ok(n) => bytes += n,
            Err(e) => problems.push(e.to_string()),
        }
    }
    let updates = match check_manifest(&repo, &names).await {
        Ok((count, mut found)) => {
            problems.append(&mut found);
            count
        }
        Err(e) => {
            problems.push(e.to_string());
            0
        }
    };
    ensure!(
        problems.is_empty(),
        error::InvalidSnafu {
            path: PathBuf::from(metadata.as_str()),
            problems
        }
    );
    Ok(Report {
        targets: names.len(),
        bytes,
        updates,
    })
}

/// Validates a repository directory.
pub async fn validate_dir(repo_dir: &RepoDir, trusted_root: Option<&Path>) -> Result<Report> {
    let trusted = repo_dir.trusted_root(trusted_root)?;
    let (metadata, targets) = repo_dir.urls()?;
    validate(&trusted, metadata, targets).await
}

async fn check_manifest(repo: &Repository, names: &[TargetName]) -> Result<(usize, Vec<String>)> {
    let mut problems = Vec::new();
    if !names.iter().any(|n| n.raw() == MANIFEST) {
        problems.push(format!("target '{MANIFEST}' is missing"));
        return Ok((0, problems));
    }
    let manifest = load_manifest(Some(repo)).await?;
    let known = |name: &str| names.iter().any(|n| n.raw() == name);
    for update in manifest.updates() {
        let images = &update.images;
        for (role, name) in [
            ("boot", &images.boot),
            ("root", &images.root),
            ("hash", &images.hash),
        ] {
            if !known(name.as_str()) {
                problems.push(format!(
                    "update {} {} {}: {role} image '{}' is not a target",
                    update.variant,
                    update.arch,
                    update.version,
                    name.as_str()
                ));
            }
        }
    }
    for ((from, to), list) in manifest.migrations().iter() {
        for name in list {
            if !known(name.as_str()) {
                problems.push(format!(
                    "migrations ({from}, {to}): '{}' is not a target",
                    name.as_str()
                ));
            }
        }
    }
    Ok((manifest.updates().len(), problems))
}

fn invalid(metadata: &Url, problems: Vec<String>) -> error::Error {
    error::Error::Invalid {
        path: PathBuf::from(metadata.as_str()),
        problems,
    }
}

/// When each role of the repository expires.
pub async fn expirations(
    repo_dir: &RepoDir,
    trusted_root: Option<&Path>,
) -> Result<Vec<(String, Timestamp)>> {
    let trusted = repo_dir.trusted_root(trusted_root)?;
    let repo = repo_dir
        .load(&trusted, ExpirationEnforcement::Unsafe)
        .await?;
    Ok(vec![
        ("root".to_string(), repo.root().signed.expires),
        ("timestamp".to_string(), repo.timestamp().signed.expires),
        ("snapshot".to_string(), repo.snapshot().signed.expires),
        ("targets".to_string(), repo.targets().signed.expires),
    ])
}

/// Fails, naming each role and its date, if any role expires before `deadline`.
pub fn check_expirations(roles: &[(String, Timestamp)], deadline: Timestamp) -> Result<()> {
    let expiring: Vec<String> = roles
        .iter()
        .filter(|(_, expires)| *expires <= deadline)
        .map(|(role, expires)| format!("role '{role}' expires {expires}, before {deadline}"))
        .collect();
    ensure!(expiring.is_empty(), error::ExpiringSnafu { expiring });
    Ok(())
}

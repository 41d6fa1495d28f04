//! A repository on disk in the published layout (design section 5):
//!
//! ```text
//! <dir>/<variant>/<arch>/N.root.json        root chain
//! <dir>/<variant>/<arch>/N.targets.json     consistent snapshots
//! <dir>/<variant>/<arch>/N.snapshot.json
//! <dir>/<variant>/<arch>/timestamp.json     written last
//! <dir>/targets/<sha256>.<name>             one flat, shared, content-addressed directory
//! ```
//!
//! Serve `<dir>` over HTTP and a node's `metadata_base_url` is `<base>/<variant>/<arch>/`, its
//! `targets_base_url` `<base>/targets/`.

use crate::error::{self, Result};
use crate::fsutil;
use futures_util::StreamExt;
use snafu::{OptionExt, ResultExt, ensure};
use std::path::{Path, PathBuf};
use tough::editor::RepositoryEditor;
use tough::editor::signed::SignedRepository;
use tough::schema::Target;
use tough::{ExpirationEnforcement, Repository, RepositoryLoader, TargetName};
use url::Url;

/// A variant or an architecture: one directory level of the repository's layout, so a plain name
/// that cannot reach outside it or hide: non-empty, ASCII letters, digits, `.`, `_` and `-`, not
/// starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DirName(String);

impl DirName {
    /// Parses `name`, given with the command-line flag `flag` (`--variant`, `--arch`) that a
    /// refusal names.
    pub fn parse(flag: &'static str, name: &str) -> Result<DirName> {
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ensure!(
            plain && !name.is_empty() && !name.starts_with('.'),
            error::BadDirNameSnafu {
                flag,
                name: name.escape_debug().to_string(),
            }
        );
        Ok(DirName(name.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DirName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<Path> for DirName {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

/// Where a repository for one variant and arch lives.
#[derive(Debug, Clone)]
pub struct RepoDir {
    /// The directory served as the repository's base.
    pub base: PathBuf,
    /// The variant (e.g. `aws-k8s-1.31`).
    pub variant: DirName,
    /// The architecture (e.g. `x86_64`).
    pub arch: DirName,
}

impl RepoDir {
    /// A repository for `variant`/`arch` under `base`; refuses a variant or arch that is not a
    /// [`DirName`], naming its flag (`--variant`, `--arch`).
    pub fn parse(base: impl Into<PathBuf>, variant: &str, arch: &str) -> Result<Self> {
        Ok(Self {
            base: base.into(),
            variant: DirName::parse("--variant", variant)?,
            arch: DirName::parse("--arch", arch)?,
        })
    }

    /// A repository for a variant and arch fixed in code (tests, harnesses); names from input go
    /// through [`RepoDir::parse`].
    ///
    /// # Panics
    ///
    /// If `variant` or `arch` is not a [`DirName`].
    pub fn new(base: impl Into<PathBuf>, variant: &str, arch: &str) -> Self {
        Self::parse(base, variant, arch).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `<base>/<variant>/<arch>`: the metadata.
    pub fn metadata_dir(&self) -> PathBuf {
        self.base.join(&self.variant).join(&self.arch)
    }

    /// `<base>/targets`: the shared targets.
    pub fn targets_dir(&self) -> PathBuf {
        self.base.join("targets")
    }

    /// Whether metadata has been published here (a `timestamp.json` exists).
    pub fn is_published(&self) -> bool {
        self.metadata_dir().join("timestamp.json").is_file()
    }

    /// The newest `N.root.json` in the metadata directory.
    pub fn latest_root(&self) -> Result<Option<(u64, PathBuf)>> {
        let dir = self.metadata_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(source).context(error::ReadFileSnafu { path: dir }),
        };
        let mut best: Option<(u64, PathBuf)> = None;
        for entry in entries {
            let entry = entry.context(error::ReadFileSnafu { path: &dir })?;
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".root.json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| n > *b) {
                best = Some((n, entry.path()));
            }
        }
        Ok(best)
    }

    /// The root a loader starts from: the given trusted root, else this repository's
    /// `1.root.json` (trust on first use, for a publisher reading its own repository).
    pub fn trusted_root(&self, given: Option<&Path>) -> Result<PathBuf> {
        match given {
            Some(path) => Ok(path.to_path_buf()),
            None => {
                let first = self.metadata_dir().join("1.root.json");
                if first.is_file() {
                    Ok(first)
                } else {
                    error::NoRootSnafu {
                        path: self.metadata_dir(),
                    }
                    .fail()
                }
            }
        }
    }

    /// `file://` URLs of the metadata and targets directories.
    pub fn urls(&self) -> Result<(Url, Url)> {
        Ok((
            dir_url(&self.metadata_dir())?,
            dir_url(&self.targets_dir())?,
        ))
    }

    /// Loads the repository as a client would, from `trusted_root` through the root chain.
    pub async fn load(
        &self,
        trusted_root: &Path,
        expiry: ExpirationEnforcement,
    ) -> Result<Repository> {
        let (metadata, targets) = self.urls()?;
        load_from(trusted_root, metadata, targets, expiry).await
    }

    /// Starts an edit: the published repository if there is one (signed with its newest root),
    /// else a new one from the newest root in the metadata directory.
    pub async fn editor(
        &self,
        trusted_root: Option<&Path>,
    ) -> Result<(RepositoryEditor, Option<Repository>)> {
        let (_, latest) = self.latest_root()?.context(error::NoRootSnafu {
            path: self.metadata_dir(),
        })?;
        self.editor_signed_by(trusted_root, &latest).await
    }

    /// Starts an edit that will be signed under `signing_root` (the newest root, or a new root
    /// being rotated in, which the commit then writes first).
    pub async fn editor_signed_by(
        &self,
        trusted_root: Option<&Path>,
        signing_root: &Path,
    ) -> Result<(RepositoryEditor, Option<Repository>)> {
        let latest = signing_root;
        if self.is_published() {
            let trusted = self.trusted_root(trusted_root)?;
            let repo = self.load(&trusted, ExpirationEnforcement::Unsafe).await?;
            let editor = RepositoryEditor::from_repo(&latest, repo.clone())
                .await
                .context(error::ToughSnafu {
                    action: format!("edit the repository in '{}'", self.metadata_dir().display()),
                })?;
            Ok((editor, Some(repo)))
        } else {
            let editor = RepositoryEditor::new(&latest)
                .await
                .context(error::ToughSnafu {
                    action: format!("start a repository from '{}'", latest.display()),
                })?;
            Ok((editor, None))
        }
    }

    /// Copies a file into the shared targets directory as `<sha256>.<name>` (first, before any
    /// metadata names it) and returns the target entry for the editor.
    pub async fn add_target_file(&self, src: &Path, name: &str) -> Result<(TargetName, Target)> {
        let (target_name, target) = target_entry(src, name).await?;
        self.copy_target(src, name, &target)?;
        Ok((target_name, target))
    }

    /// Copies `src`, hashed as `target`, into the shared targets directory as
    /// `<sha256>.<name>`, unless it is there already.
    pub fn copy_target(&self, src: &Path, name: &str, target: &Target) -> Result<()> {
        match self.new_target_path(name, target) {
            Some(dst) => fsutil::copy_atomic(src, &dst),
            None => Ok(()),
        }
    }

    /// Where target `name`, hashed as `target`, goes in the shared targets directory
    /// (`<sha256>.<name>`); `None` if it is there already.
    fn new_target_path(&self, name: &str, target: &Target) -> Option<PathBuf> {
        let sha = hex::encode(target.hashes.sha256.as_ref() as &[u8]);
        let dst = self.targets_dir().join(format!("{sha}.{name}"));
        (!dst.is_file()).then_some(dst)
    }

    /// Moves `src`, a file this command made and hashed as `target`, into the shared targets
    /// directory as `<sha256>.<name>`, unless it is there already.
    pub fn move_target(&self, src: &Path, name: &str, target: &Target) -> Result<()> {
        match self.new_target_path(name, target) {
            Some(dst) => fsutil::move_durable(src, &dst),
            None => Ok(()),
        }
    }

    /// Writes signed metadata in the order that keeps every reader safe: the root (if new),
    /// targets, snapshot, and `timestamp.json` last, each by an atomic rename.
    pub async fn commit(&self, signed: &SignedRepository) -> Result<()> {
        let dir = self.metadata_dir();
        let staging = fsutil::staging_dir(&dir)?;
        signed
            .write(staging.path())
            .await
            .context(error::ToughSnafu {
                action: format!("write signed metadata to '{}'", staging.path().display()),
            })?;
        let mut files: Vec<(u8, String)> = Vec::new();
        for entry in std::fs::read_dir(staging.path()).context(error::ReadFileSnafu {
            path: staging.path(),
        })? {
            let name = entry
                .context(error::ReadFileSnafu {
                    path: staging.path(),
                })?
                .file_name()
                .to_string_lossy()
                .into_owned();
            let rank = if name.ends_with(".root.json") {
                0
            } else if name.ends_with(".targets.json") {
                1
            } else if name.ends_with(".snapshot.json") {
                2
            } else {
                3
            };
            files.push((rank, name));
        }
        files.sort();
        for (rank, name) in files {
            let dst = dir.join(&name);
            if rank == 0 && dst.exists() {
                continue; // a published root never changes
            }
            fsutil::rename_durable(&staging.path().join(&name), &dst)?;
        }
        Ok(())
    }
}

/// The target entry of a file (its length and sha256) under `name`, for the editor; nothing is
/// copied.
pub async fn target_entry(src: &Path, name: &str) -> Result<(TargetName, Target)> {
    let target_name = TargetName::new(name).context(error::TargetNameSnafu { name })?;
    Ok((target_name, hash_target(src).await?))
}

/// The length and sha256 of the file at `src`, as a target entry. The file is read 1 MiB at a
/// time on a blocking thread: tough's `Target::from_path` reads 8 KiB at a time through the
/// async runtime, a trip to another thread per read, which was a fifth of the CPU time of
/// publishing a 1 GiB image.
pub async fn hash_target(src: &Path) -> Result<Target> {
    let path = src.to_path_buf();
    tokio::task::spawn_blocking(move || file_target(&path))
        .await
        .ok()
        .context(error::InternalSnafu {
            what: "the thread hashing a target",
        })?
        .context(error::ReadFileSnafu { path: src })
}

/// The length and sha256 of the file at `path`.
fn file_target(path: &Path) -> std::io::Result<Target> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut sha = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut length = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        length += n as u64;
    }
    Ok(target_of(length, sha.finalize().into()))
}

/// The target entry of a file of `length` bytes with that `sha256`.
pub fn target_of(length: u64, sha256: [u8; 32]) -> Target {
    Target {
        length,
        hashes: tough::schema::Hashes {
            sha256: sha256.to_vec().into(),
            _extra: std::collections::HashMap::new(),
        },
        custom: std::collections::HashMap::new(),
        _extra: std::collections::HashMap::new(),
    }
}

/// Loads a repository from any metadata and targets URL (file:// or, where tough was built with
/// HTTP, http(s)://), walking the root chain from `trusted_root`.
pub async fn load_from(
    trusted_root: &Path,
    metadata: Url,
    targets: Url,
    expiry: ExpirationEnforcement,
) -> Result<Repository> {
    let root = std::fs::read(trusted_root).context(error::ReadFileSnafu { path: trusted_root })?;
    // No datastore: tough keeps a temporary one for the life of the repository. The publisher's
    // view needs no rollback memory across runs; nodes keep theirs (updog).
    RepositoryLoader::new(&root, metadata.clone(), targets)
        .expiration_enforcement(expiry)
        .load()
        .await
        .context(error::ToughSnafu {
            action: format!("load repository '{metadata}'"),
        })
}

/// Reads a whole (small) target, verified by tough against its length and hashes.
pub async fn read_target(repo: &Repository, name: &str) -> Result<Option<Vec<u8>>> {
    let target_name = TargetName::new(name).context(error::TargetNameSnafu { name })?;
    let stream = repo
        .read_target(&target_name)
        .await
        .context(error::ToughSnafu {
            action: format!("read target '{name}'"),
        })?;
    let Some(mut stream) = stream else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.context(error::ToughSnafu {
            action: format!("download target '{name}'"),
        })?);
    }
    Ok(Some(bytes))
}

/// Streams a target through tough's verification and returns how many bytes it had.
pub async fn verify_target(repo: &Repository, name: &TargetName) -> Result<u64> {
    let stream = repo.read_target(name).await.context(error::ToughSnafu {
        action: format!("read target '{}'", name.raw()),
    })?;
    let mut stream = stream.context(error::InvalidSnafu {
        path: PathBuf::from(name.raw()),
        problems: vec![format!("target '{}' is not in targets.json", name.raw())],
    })?;
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        total += chunk
            .context(error::ToughSnafu {
                action: format!("download target '{}'", name.raw()),
            })?
            .len() as u64;
    }
    Ok(total)
}

fn dir_url(dir: &Path) -> Result<Url> {
    let absolute = std::path::absolute(dir).context(error::ReadFileSnafu { path: dir })?;
    let mut url = Url::from_directory_path(&absolute)
        .ok()
        .context(error::FileUrlSnafu { path: dir })?;
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn variants_and_arches_are_plain_names() {
        for name in [
            "aws-k8s-1.31",
            "x86_64",
            "aarch64",
            "metal-dev",
            "a",
            "v1..2",
        ] {
            assert_eq!(DirName::parse("--variant", name).unwrap().as_str(), name);
        }
        for name in [
            "", ".", "..", ".hidden", "a/b", "../x", "a b", "a\nb", "é", "a\\b",
        ] {
            let err = DirName::parse("--arch", name).unwrap_err().to_string();
            assert!(err.starts_with("Failed to use --arch '"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let dir = RepoDir::parse("repo", "aws-k8s-1.31", "x86_64").unwrap();
        assert_eq!(dir.metadata_dir(), Path::new("repo/aws-k8s-1.31/x86_64"));
        let err = RepoDir::parse("repo", "demo", "").unwrap_err().to_string();
        assert!(err.starts_with("Failed to use --arch '': "), "{err}");
    }
}

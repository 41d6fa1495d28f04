//! A signed repository for tests and the demo: keys, a root, releases built from real images
//! and published with repo-tools.

use crate::error::{self, Result};
use jiff::Timestamp;
use repo_tools::publish::{Release, WaveSpec};
use repo_tools::repo::RepoDir;
use repo_tools::sign::Expiries;
use semver::Version;
use snafu::ResultExt;
use std::path::{Path, PathBuf};

/// A built release: its images, raw and lz4.
#[derive(Debug, Clone)]
pub struct BuiltRelease {
    /// The version.
    pub version: Version,
    /// What image-builder made.
    pub images: image_builder::Release,
}

/// A repository with one ed25519 key for every role, in `dir`:
/// `dir/keys/`, `dir/root.json`, `dir/repo/` (the served base), `dir/build/<version>/`.
#[derive(Debug, Clone)]
pub struct TestRepo {
    /// The working directory.
    pub dir: PathBuf,
    /// The variant.
    pub variant: String,
    /// The architecture.
    pub arch: String,
    /// The signed root (1.root.json): the trust anchor to put in images.
    pub root_json: PathBuf,
    /// The signing key (all roles).
    pub key: PathBuf,
    /// Builds give ROOT a filesystem UUID and hash seed derived from this text rather than from
    /// the version (`image_builder::ReleaseSpec::root_uuid_seed`), so that releases differ only
    /// where their files do. Default `None`.
    pub root_uuid_seed: Option<String>,
}

/// Options of a publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Migration files in forward order.
    pub migrations: Vec<PathBuf>,
    /// The release's waves.
    pub waves: WaveSpec,
    /// When timestamp.json expires (default: a week from now).
    pub timestamp_expires: Option<Timestamp>,
    /// Also publish each image in chunks of this size, with its chunk index (default: lz4
    /// streams only).
    pub chunk_size: Option<u64>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            migrations: Vec::new(),
            waves: WaveSpec::None,
            timestamp_expires: None,
            chunk_size: None,
        }
    }
}

impl TestRepo {
    /// Generates a key and a root (consistent snapshots, threshold 1 everywhere) in `dir`.
    pub fn create(dir: &Path, variant: &str, arch: &str) -> Result<TestRepo> {
        let key = dir.join("keys/all-roles.pem");
        let root_json = dir.join("root.json");
        let repo_err = |action: &str| error::RepoSnafu {
            action: action.to_string(),
        };
        repo_tools::keys::generate(repo_tools::keys::KeyType::Ed25519, &key)
            .with_context(|_| repo_err("generate a key"))?;
        let expires = repo_tools::time::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * 365))
            .unwrap_or_else(|_| repo_tools::time::now());
        repo_tools::root::init(&root_json, expires)
            .with_context(|_| repo_err("create root.json"))?;
        repo_tools::root::add_key(&root_json, &key, &repo_tools::root::ROLES)
            .with_context(|_| repo_err("add the key to root.json"))?;
        block_on(repo_tools::root::sign(
            &root_json,
            std::slice::from_ref(&key),
            None,
        ))
        .with_context(|_| repo_err("sign root.json"))?;
        Ok(TestRepo {
            dir: dir.to_path_buf(),
            variant: variant.to_string(),
            arch: arch.to_string(),
            root_json,
            key,
            root_uuid_seed: None,
        })
    }

    /// The base directory to serve.
    pub fn base(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// The repository directory handle repo-tools uses.
    pub fn repo_dir(&self) -> RepoDir {
        RepoDir::new(self.base(), &self.variant, &self.arch)
    }

    /// Builds release `version` with the trusted root inside and `files` (path, contents) added
    /// to its root filesystem.
    pub fn build(&self, version: &str, files: &[(&str, &[u8])]) -> Result<BuiltRelease> {
        let version: Version = version.parse().map_err(|_| error::Error::Io {
            action: format!("parse version '{version}' of"),
            path: self.dir.clone(),
            source: std::io::Error::other("not a semantic version"),
        })?;
        let out = self.dir.join("build").join(version.to_string());
        let tree = out.join("tree");
        for (path, contents) in files {
            let file = tree.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).context(error::IoSnafu {
                    action: "create",
                    path: parent,
                })?;
            }
            std::fs::write(&file, contents).context(error::IoSnafu {
                action: "write",
                path: &file,
            })?;
        }
        let root_json = std::fs::read(&self.root_json).context(error::IoSnafu {
            action: "read",
            path: &self.root_json,
        })?;
        let mut spec =
            image_builder::ReleaseSpec::new(version.clone(), &self.variant, &self.arch, root_json);
        if !files.is_empty() {
            spec.root_tree = Some(tree);
        }
        spec.root_uuid_seed = self.root_uuid_seed.clone();
        let images = image_builder::build_release(&spec, &out.join("images")).context(
            error::BuildSnafu {
                version: version.to_string(),
            },
        )?;
        Ok(BuiltRelease { version, images })
    }

    /// Publishes a built release (creating the repository with the first one).
    pub fn publish(&self, release: &BuiltRelease, options: &PublishOptions) -> Result<()> {
        let now = repo_tools::time::now();
        let mut expiries = Expiries::defaults(now);
        if let Some(t) = options.timestamp_expires {
            expiries.timestamp = t;
        }
        let spec = Release {
            version: release.version.clone(),
            boot: release.images.boot.lz4_path.clone(),
            root: release.images.root.lz4_path.clone(),
            hash: release.images.hash.lz4_path.clone(),
            migrations: options.migrations.clone(),
            migrations_from: None,
            max_version: None,
            waves: options.waves.clone(),
        };
        let repo_dir = self.repo_dir();
        let initial = (!repo_dir.is_published()).then_some(self.root_json.as_path());
        block_on(repo_tools::publish::publish_chunked(
            &repo_dir,
            initial,
            Some(&self.root_json),
            &spec,
            options.chunk_size,
            std::slice::from_ref(&self.key),
            expiries,
            now,
        ))
        .context(error::RepoSnafu {
            action: format!("publish {}", release.version),
        })?;
        Ok(())
    }

    /// Builds and publishes in one step.
    pub fn release(
        &self,
        version: &str,
        files: &[(&str, &[u8])],
        options: &PublishOptions,
    ) -> Result<BuiltRelease> {
        let built = self.build(version, files)?;
        self.publish(&built, options)?;
        Ok(built)
    }

    /// Changes a published release's waves (signed and written like `repo-tool release waves`).
    pub fn set_waves(&self, version: &str, waves: WaveSpec) -> Result<()> {
        let now = repo_tools::time::now();
        let version: Version = version.parse().map_err(|_| error::Error::Io {
            action: format!("parse version '{version}' of"),
            path: self.dir.clone(),
            source: std::io::Error::other("not a semantic version"),
        })?;
        block_on(repo_tools::publish::change(
            &self.repo_dir(),
            Some(&self.root_json),
            &repo_tools::publish::Change::Waves(version.clone(), waves),
            std::slice::from_ref(&self.key),
            Expiries::defaults(now),
            now,
        ))
        .context(error::RepoSnafu {
            action: format!("set the waves of {version}"),
        })?;
        Ok(())
    }

    /// The metadata and targets URLs of this repository under a server's base URL.
    pub fn urls(&self, server_url: &str) -> (String, String) {
        (
            format!("{server_url}{}/{}/", self.variant, self.arch),
            format!("{server_url}targets/"),
        )
    }
}

/// Runs a future to completion on a fresh current-thread runtime in its own thread, so callers
/// inside or outside an async context can use async libraries (repo-tools, clients) from sync
/// test code.
pub fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(future))
            })
            .join()
    })
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"))
}

//! Publishing a release, and changing one that is published.

use crate::error::{self, Result};
use crate::fsutil;
use crate::repo::{self, RepoDir};
use crate::sign::{Expiries, Versions, sign_and_commit};
use jiff::Timestamp;
use semver::Version;
use snafu::{OptionExt, ResultExt, ensure};
use std::path::{Path, PathBuf};
use tough::Repository;
use tough::editor::RepositoryEditor;
use update_metadata::{Images, Manifest, MigrationName, TargetName, Update, WavePolicy, Waves};

/// The manifest's name as a target.
pub const MANIFEST: &str = "manifest.json";

/// How a release's waves are set.
#[derive(Debug, Clone)]
pub enum WaveSpec {
    /// Every node may take the release at once.
    None,
    /// A policy's waves, counted from a start time.
    Policy(WavePolicy, Timestamp),
    /// Stop the rollout where it is: seeds already ready stay ready, the rest wait until the
    /// release's waves are set again.
    Pause,
}

/// What `publish` needs.
#[derive(Debug, Clone)]
pub struct Release {
    /// The release's version.
    pub version: Version,
    /// The lz4-compressed BOOT, ROOT and HASH image files.
    pub boot: PathBuf,
    /// ROOT image.
    pub root: PathBuf,
    /// HASH image.
    pub hash: PathBuf,
    /// Migration files, in the order they run forward.
    pub migrations: Vec<PathBuf>,
    /// The version the migrations start from (default: the newest published version below this
    /// one).
    pub migrations_from: Option<Version>,
    /// The highest version nodes may run after this publish (default: the newest published).
    pub max_version: Option<Version>,
    /// The release's waves.
    pub waves: WaveSpec,
}

/// Publishes a release: creates the repository (from a signed `initial_root`) or extends it,
/// adds the images and migrations as targets, adds the update to the manifest, sets
/// `max_version` for every update of the variant and arch, and signs and writes it all.
/// The images are published as lz4 streams only; see [`publish_chunked`].
pub async fn publish(
    repo_dir: &RepoDir,
    initial_root: Option<&Path>,
    trusted_root: Option<&Path>,
    release: &Release,
    key_files: &[PathBuf],
    expiries: Expiries,
    now: Timestamp,
) -> Result<Versions> {
    publish_chunked(
        repo_dir,
        initial_root,
        trusted_root,
        release,
        None,
        key_files,
        expiries,
        now,
    )
    .await
}

/// Checks a release's files as a node will read them, reading each to its end: each exists,
/// each image is one whole lz4 frame, and each declarative migration parses as the node's
/// migrator parses it. `repo-tool publish` calls this before [`publish_chunked`]; the publish
/// functions themselves take the files as opaque targets (tests publish stand-in images).
pub fn check_inputs(release: &Release) -> Result<()> {
    check_inputs_exist(release)?;
    for (what, path) in images(release) {
        crate::inputs::check_lz4(what, path)?;
    }
    for path in &release.migrations {
        crate::inputs::check_migration(&migration_name(&release.version, path), path)?;
    }
    Ok(())
}

/// The images of a release, each with what it is.
fn images(release: &Release) -> [(&'static str, &PathBuf); 3] {
    [
        ("boot image", &release.boot),
        ("root image", &release.root),
        ("hash image", &release.hash),
    ]
}

fn check_inputs_exist(release: &Release) -> Result<()> {
    for (what, path) in images(release)
        .into_iter()
        .chain(release.migrations.iter().map(|m| ("migration", m)))
    {
        ensure!(
            path.is_file(),
            error::MissingInputSnafu {
                what,
                path: path.clone()
            }
        );
    }
    Ok(())
}

/// [`publish`], and with `chunk_size`, each image is also cut into chunks of that many bytes:
/// its chunk file and chunk index become targets and the update's `chunk_indexes` names the
/// indexes (docs/formats.md, "Chunk index"). The targets are copied into the repository only
/// once the new metadata is signed, so a publish refused on the way adds none.
#[allow(clippy::too_many_arguments)]
pub async fn publish_chunked(
    repo_dir: &RepoDir,
    initial_root: Option<&Path>,
    trusted_root: Option<&Path>,
    release: &Release,
    chunk_size: Option<u64>,
    key_files: &[PathBuf],
    expiries: Expiries,
    now: Timestamp,
) -> Result<Versions> {
    if let Some(size) = chunk_size {
        ensure!(
            size.is_power_of_two()
                && (update_metadata::chunks::MIN_CHUNK_SIZE
                    ..=update_metadata::chunks::MAX_CHUNK_SIZE)
                    .contains(&size),
            error::BadChunkSizeSnafu { chunk_size: size }
        );
    }
    check_inputs_exist(release)?;
    // Keys first: a refused publish writes nothing, not even content-addressed targets.
    let signing_root = match repo_dir.latest_root()? {
        Some(_) => None,
        None => initial_root,
    };
    crate::sign::check_keys(repo_dir, signing_root, key_files)?;
    // A new repository has no earlier version to migrate from; say so before installing its root.
    ensure!(
        signing_root.is_none()
            || release.migrations.is_empty()
            || release.migrations_from.is_some(),
        error::NoMigrationBaseSnafu {
            version: release.version.to_string()
        }
    );
    if let Some(root) = initial_root {
        install_initial_root(repo_dir, root)?;
    }
    let (mut editor, previous) = repo_dir.editor(trusted_root).await?;
    let mut manifest = load_manifest(previous.as_ref()).await?;

    let (variant, arch) = (repo_dir.variant.as_str(), repo_dir.arch.as_str());
    ensure!(
        manifest.update(variant, arch, &release.version).is_none(),
        error::ReleaseExistsSnafu {
            variant,
            arch,
            version: release.version.to_string(),
        }
    );
    let previous_version = manifest
        .updates()
        .iter()
        .filter(|u| u.is_for(variant, arch) && u.version < release.version)
        .map(|u| u.version.clone())
        .max();
    let from = release.migrations_from.clone().or(previous_version);
    ensure!(
        from.is_some() || release.migrations.is_empty(),
        error::NoMigrationBaseSnafu {
            version: release.version.to_string()
        }
    );
    // Targets are hashed and named in the edit now, and copied into the targets directory only
    // once it is signed: a publish refused on the way adds nothing there.
    let mut staged = Staged::new(repo_dir)?;
    let prefix = format!("{variant}-{arch}-{}", release.version);
    let mut image_names = Vec::new();
    let mut index_names = Vec::new();
    for path in [&release.boot, &release.root, &release.hash] {
        let name = format!("{prefix}-{}", file_name(path));
        staged.add(&mut editor, path, &name).await?;
        image_names.push(manifest_name(&name)?);
        if let Some(size) = chunk_size {
            let made = crate::chunks::chunk_image(path, &name, size, &staged.scratch_dir()?)?;
            // The chunk file was hashed as it was written.
            let chunk_target =
                repo::target_of(made.index.chunk_file_length(), made.chunk_file_sha256);
            staged.add_hashed(
                &mut editor,
                &made.chunk_file,
                &file_name(&made.chunk_file),
                chunk_target,
            )?;
            staged
                .add(&mut editor, &made.index_file, &file_name(&made.index_file))
                .await?;
            index_names.push(manifest_name(&file_name(&made.index_file))?);
        }
    }
    let [boot, root, hash] =
        <[TargetName; 3]>::try_from(image_names)
            .ok()
            .context(error::InternalSnafu {
                what: "three image names",
            })?;
    let mut update = Update::new(
        variant,
        arch,
        release.version.clone(),
        Images::new(boot, root, hash),
    );
    update.waves = waves_for(&release.waves, None, now)?;
    if let Ok([boot, root, hash]) = <[TargetName; 3]>::try_from(index_names) {
        update.chunk_indexes = Some(update_metadata::ChunkIndexes::new(boot, root, hash));
    }

    if let Some(from) = from {
        let mut names = Vec::new();
        for path in &release.migrations {
            let name = migration_name(&release.version, path);
            let compressed = compressed_copy(path, &staged.scratch_dir()?.join(&name))?;
            staged
                .add(&mut editor, compressed.as_deref().unwrap_or(path), &name)
                .await?;
            names.push(
                MigrationName::new(name.as_str()).context(error::ManifestSnafu {
                    action: format!("name migration '{name}' in"),
                })?,
            );
        }
        manifest
            .add_migration(from, release.version.clone(), names)
            .context(error::ManifestSnafu {
                action: "add migrations to",
            })?;
    }
    manifest.add_update(update).context(error::ManifestSnafu {
        action: "add the update to",
    })?;
    // add_update already raised max_version to the newest release; an explicit one overrides.
    if let Some(max_version) = &release.max_version {
        manifest.set_max_version(variant, arch, max_version);
    }

    staged
        .finish(
            repo_dir,
            editor,
            &manifest,
            previous.as_ref(),
            key_files,
            expiries,
            now,
        )
        .await
}

/// A change to a published release.
#[derive(Debug, Clone)]
pub enum Change {
    /// Remove the release from the manifest and lower every update's `max_version` to the newest
    /// remaining version, so nodes running the pulled release move down.
    Pull(Version),
    /// Set `max_version` of every update of the variant and arch.
    MaxVersion(Version),
    /// Set a release's waves.
    Waves(Version, WaveSpec),
}

/// Applies a change to the manifest, then signs and writes.
pub async fn change(
    repo_dir: &RepoDir,
    trusted_root: Option<&Path>,
    change: &Change,
    key_files: &[PathBuf],
    expiries: Expiries,
    now: Timestamp,
) -> Result<Versions> {
    // Signing checks the keys before anything is written: the new manifest is staged and
    // copied only once the edit is signed.
    let (editor, previous) = repo_dir.editor(trusted_root).await?;
    let mut manifest = load_manifest(previous.as_ref()).await?;
    let (variant, arch) = (repo_dir.variant.as_str(), repo_dir.arch.as_str());
    let missing = |version: &Version| error::NoSuchReleaseSnafu {
        variant,
        arch,
        version: version.to_string(),
    };
    match change {
        Change::Pull(version) => {
            ensure!(
                manifest.update(variant, arch, version).is_some(),
                missing(version)
            );
            manifest
                .remove_update(variant, arch, version)
                .context(error::ManifestSnafu {
                    action: "remove the update from",
                })?;
            let newest = manifest
                .updates()
                .iter()
                .filter(|u| u.is_for(variant, arch))
                .map(|u| u.version.clone())
                .max();
            if let Some(newest) = newest {
                manifest.set_max_version(variant, arch, &newest);
            }
        }
        Change::MaxVersion(max) => {
            manifest.set_max_version(variant, arch, max);
        }
        Change::Waves(version, spec) => {
            let current = manifest
                .update(variant, arch, version)
                .context(missing(version))?;
            let waves = waves_for(spec, Some(&current.waves), now)?;
            manifest
                .set_waves(variant, arch, version, waves)
                .context(error::ManifestSnafu {
                    action: "set waves in",
                })?;
        }
    }
    Staged::new(repo_dir)?
        .finish(
            repo_dir,
            editor,
            &manifest,
            previous.as_ref(),
            key_files,
            expiries,
            now,
        )
        .await
}

/// The waves for a spec; pausing freezes `current` at `now`.
fn waves_for(spec: &WaveSpec, current: Option<&Waves>, now: Timestamp) -> Result<Waves> {
    match spec {
        WaveSpec::None => Ok(Waves::none()),
        WaveSpec::Policy(policy, start) => policy.to_waves(*start).context(error::ManifestSnafu {
            action: "turn the wave policy into waves for",
        }),
        WaveSpec::Pause => {
            let current = current.cloned().unwrap_or_else(Waves::none);
            let ready = (0..update_metadata::SEED_COUNT)
                .filter_map(|s| update_metadata::Seed::new(u64::from(s)).ok())
                .filter(|s| current.is_ready(*s, now))
                .count() as u64;
            if ready >= u64::from(update_metadata::SEED_COUNT) {
                return Ok(current);
            }
            // Seeds below the first key are ready at once; the rest wait for a wave that starts
            // in a hundred years, until the release's waves are set again.
            let far = now
                .checked_add(jiff::SignedDuration::from_hours(24 * 365 * 100))
                .unwrap_or(now);
            let seed = update_metadata::Seed::new(ready).context(error::ManifestSnafu {
                action: "pause waves in",
            })?;
            Waves::new([(seed, crate::time::whole_seconds(far))]).context(error::ManifestSnafu {
                action: "pause waves in",
            })
        }
    }
}

/// Reads the published manifest (verified by tough), or an empty one for a new repository.
pub async fn load_manifest(repo: Option<&Repository>) -> Result<Manifest> {
    let Some(repo) = repo else {
        return Ok(Manifest::default());
    };
    match repo::read_target(repo, MANIFEST).await? {
        Some(bytes) => {
            Manifest::from_json(&bytes).context(error::ManifestSnafu { action: "parse" })
        }
        None => Ok(Manifest::default()),
    }
}

/// Files an edit names as targets, not yet copied into the repository's targets directory, and
/// a scratch directory for those made on the way (chunks, compressed migrations, the manifest).
#[derive(Debug)]
struct Staged {
    /// Each file, its target name and its entry.
    files: Vec<(PathBuf, String, tough::schema::Target)>,
    /// Removed when the edit is committed or refused.
    scratch: tempfile::TempDir,
    /// Directories made in `scratch`.
    dirs: usize,
}

impl Staged {
    /// The scratch directory is in the repository's directory, so that what is made there is
    /// moved into the targets directory, not copied (as the metadata commit stages its files).
    fn new(repo_dir: &RepoDir) -> Result<Staged> {
        let scratch = fsutil::staging_dir(&repo_dir.base)?;
        Ok(Staged {
            files: Vec::new(),
            scratch,
            dirs: 0,
        })
    }

    /// A new directory in the scratch directory: a file made there keeps the bytes it was
    /// hashed with until it is copied, whatever the name of the next one.
    fn scratch_dir(&mut self) -> Result<PathBuf> {
        self.dirs += 1;
        let dir = self.scratch.path().join(self.dirs.to_string());
        std::fs::create_dir(&dir).context(error::WriteFileSnafu { path: &dir })?;
        Ok(dir)
    }

    /// Hashes `src` and adds it to the edit as target `name`.
    async fn add(&mut self, editor: &mut RepositoryEditor, src: &Path, name: &str) -> Result<()> {
        let target = repo::hash_target(src).await?;
        self.add_hashed(editor, src, name, target)
    }

    /// Adds `src`, already hashed as `target`, to the edit as target `name`.
    fn add_hashed(
        &mut self,
        editor: &mut RepositoryEditor,
        src: &Path,
        name: &str,
        target: tough::schema::Target,
    ) -> Result<()> {
        let target_name = tough::TargetName::new(name).context(error::TargetNameSnafu { name })?;
        add_target(editor, target_name, target.clone())?;
        self.files
            .push((src.to_path_buf(), name.to_string(), target));
        Ok(())
    }

    /// Writes the manifest into the scratch directory and adds it to the edit.
    async fn add_manifest(
        &mut self,
        editor: &mut RepositoryEditor,
        manifest: &Manifest,
    ) -> Result<()> {
        let json = manifest.to_json().context(error::ManifestSnafu {
            action: "serialise",
        })?;
        let path = self.scratch_dir()?.join(MANIFEST);
        std::fs::write(&path, json.as_bytes()).context(error::WriteFileSnafu { path: &path })?;
        self.add(editor, &path, MANIFEST).await
    }

    /// Adds `manifest` to the edit, signs it, copies the targets, then writes the metadata
    /// ([`RepoDir::commit`]).
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        mut self,
        repo_dir: &RepoDir,
        mut editor: RepositoryEditor,
        manifest: &Manifest,
        previous: Option<&Repository>,
        key_files: &[PathBuf],
        expiries: Expiries,
        now: Timestamp,
    ) -> Result<Versions> {
        self.add_manifest(&mut editor, manifest).await?;
        let (signed, versions) =
            crate::sign::sign(repo_dir, editor, previous, None, key_files, expiries, now).await?;
        for (src, name, target) in &self.files {
            if src.starts_with(self.scratch.path()) {
                repo_dir.move_target(src, name, target)?;
            } else {
                repo_dir.copy_target(src, name, target)?;
            }
        }
        repo_dir.commit(&signed).await?;
        Ok(versions)
    }
}

fn add_target(
    editor: &mut RepositoryEditor,
    name: tough::TargetName,
    target: tough::schema::Target,
) -> Result<()> {
    let raw = name.raw().to_string();
    editor
        .add_target(name, target)
        .context(error::ToughSnafu {
            action: format!("add target '{raw}'"),
        })
        .map(|_| ())
}

fn manifest_name(name: &str) -> Result<TargetName> {
    TargetName::new(name).context(error::ManifestSnafu {
        action: format!("name image '{name}' in"),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The target name of a migration file: compressed migrations keep their name, others get
/// `.lz4` added.
fn lz4_name(path: &Path) -> String {
    let name = file_name(path);
    if name.ends_with(".lz4") {
        name
    } else {
        format!("{name}.lz4")
    }
}

/// The target name of a migration of `version`: `migrate_v<version>_<file name>`, with `.lz4`
/// added unless the file is compressed already.
fn migration_name(version: &Version, path: &Path) -> String {
    format!("migrate_v{version}_{}", lz4_name(path))
}

/// Compresses a migration that is not lz4 yet into `out` (lz4 frame format); returns where the
/// compressed migration is, `None` when the file is compressed already.
fn compressed_copy(path: &Path, out: &Path) -> Result<Option<PathBuf>> {
    if file_name(path).ends_with(".lz4") {
        return Ok(None);
    }
    let mut input = std::fs::File::open(path).context(error::ReadFileSnafu { path })?;
    let file = std::fs::File::create(out).context(error::WriteFileSnafu { path: out })?;
    let mut encoder = lz4_flex::frame::FrameEncoder::new(file);
    std::io::copy(&mut input, &mut encoder).context(error::ReadFileSnafu { path })?;
    encoder
        .finish()
        .map_err(std::io::Error::other)
        .context(error::WriteFileSnafu { path: out })?;
    Ok(Some(out.to_path_buf()))
}

/// Copies a signed root into a new repository as `N.root.json`, after checking it meets its own
/// root threshold.
fn install_initial_root(repo_dir: &RepoDir, root_path: &Path) -> Result<()> {
    let root = crate::root::load(root_path)?;
    crate::root::check_threshold(&root.signed, &root, "the initial root")?;
    let dst = repo_dir
        .metadata_dir()
        .join(format!("{}.root.json", root.signed.version));
    if dst.is_file() {
        let same = std::fs::read(&dst).ok() == std::fs::read(root_path).ok();
        ensure!(same, error::ExistsSnafu { path: dst });
        return Ok(());
    }
    crate::fsutil::copy_atomic(root_path, &dst)
}

/// Checks a signed new root against the repository's newest root: version N+1, the previous
/// root's threshold and its own met. Returns its version.
pub fn check_next_root(repo_dir: &RepoDir, new_root: &Path) -> Result<u64> {
    let (current_version, current_path) = repo_dir.latest_root()?.context(error::NoRootSnafu {
        path: repo_dir.metadata_dir(),
    })?;
    let current = crate::root::load(&current_path)?;
    let next = crate::root::load(new_root)?;
    let version = next.signed.version.get();
    ensure!(
        version == current_version + 1,
        error::BadRootSnafu {
            path: new_root,
            reason: format!(
                "its version is {version}, but the repository's newest root is {current_version}; \
                 set it with `repo-tool root set-version {} {}`",
                new_root.display(),
                current_version + 1
            ),
        }
    );
    crate::root::check_threshold(&current.signed, &next, "the previous root")?;
    crate::root::check_threshold(&next.signed, &next, "the new root")?;
    Ok(version)
}

/// Rotates the root: checks the new root, re-signs targets, snapshot and timestamp under it and
/// writes `N+1.root.json` first, then the other roles, `timestamp.json` last.
pub async fn rotate_root(
    repo_dir: &RepoDir,
    trusted_root: Option<&Path>,
    new_root: &Path,
    key_files: &[PathBuf],
    expiries: Expiries,
    now: Timestamp,
) -> Result<(u64, Versions)> {
    let version = check_next_root(repo_dir, new_root)?;
    let (editor, previous) = repo_dir.editor_signed_by(trusted_root, new_root).await?;
    let written = sign_and_commit(
        repo_dir,
        editor,
        previous.as_ref(),
        Some(new_root),
        key_files,
        expiries,
        now,
    )
    .await?;
    Ok((version, written))
}

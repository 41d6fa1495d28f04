//! The boot-time step: bring the datastore to the booted version, and confirm it later.
//!
//! [`migrate`] reconciles the state file with the links (finishing or discarding what a crash
//! interrupted), falls back to the kept previous directory when the current version was never
//! confirmed, then runs the manifest's migrations from the cache into fresh directories
//! (consecutive declarative migrations share one; see `run_chain`), and flips `current` to the
//! last. [`confirm`] marks the current version confirmed and prunes the datastore to the current
//! and previous directories.

use super::declarative::Document;
use super::{Direction, Kind, decompress, executable};
use crate::cache::Cache;
use crate::datastore::chain;
use crate::datastore::layout::{self, is_version_link_name, parse_dir_name};
use crate::error::{self, Error, Result};
use crate::fsutil;
use crate::state::{self, State};
use crate::steps::{Step, Steps};
use semver::Version;
use serde::Serialize;
use snafu::ResultExt;
use std::fmt;
use std::path::{Path, PathBuf};
use update_metadata::{Manifest, MigrationName};

/// The datastore root under the sysroot.
pub const DATASTORE: &str = "var/lib/datastore";
/// The booted image's os-release under the sysroot.
pub const OS_RELEASE: &str = "etc/os-release";
/// The trusted root shipped in the booted image, under the sysroot.
pub const TRUSTED_ROOT: &str = "usr/share/updog/root.json";
/// The cached TUF metadata under the sysroot.
pub const CACHE_METADATA: &str = "var/cache/updog/metadata";
/// The cached targets (manifest and migrations, `<sha256>.<name>`) under the sysroot.
pub const CACHE_TARGETS: &str = "var/lib/updog/migrations";

/// What [`migrate`] needs.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The datastore root (holding `current`).
    pub datastore: PathBuf,
    /// The booted version: where the datastore must end up.
    pub version: Version,
    /// The cached repository.
    pub cache: Cache,
    /// Durable-step recorder (tests crash the run with it).
    pub steps: Steps,
}

impl MigrateOptions {
    /// The default paths under `sysroot`, for booted `version`.
    pub fn under_sysroot(sysroot: &Path, version: Version) -> MigrateOptions {
        MigrateOptions {
            datastore: sysroot.join(DATASTORE),
            version,
            cache: Cache {
                trusted_root: sysroot.join(TRUSTED_ROOT),
                metadata_dir: sysroot.join(CACHE_METADATA),
                targets_dir: sysroot.join(CACHE_TARGETS),
            },
            steps: Steps::new(),
        }
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// There was no datastore (first boot): an empty one was made at the booted version.
    Created {
        /// The booted version.
        version: Version,
    },
    /// The datastore was already at the booted version.
    UpToDate {
        /// The booted version.
        version: Version,
    },
    /// The current version was never confirmed and the kept previous directory is the booted
    /// version: `current` points at it again; no migration ran.
    FellBack {
        /// The unconfirmed version left.
        from: Version,
        /// The booted version.
        to: Version,
    },
    /// Migrations ran (possibly none, when the manifest lists none between the versions).
    Migrated {
        /// The version migrated from.
        from: Version,
        /// The booted version.
        to: Version,
        /// Which way.
        direction: Direction,
        /// The migrations that ran, in order.
        migrations: Vec<String>,
        /// An unconfirmed version that was dropped first (fallback), if any.
        fell_back_from: Option<Version>,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Created { version } => write!(f, "Created an empty datastore at {version}"),
            Outcome::UpToDate { version } => write!(f, "The datastore is at {version} already"),
            Outcome::FellBack { from, to } => write!(
                f,
                "Fell back from unconfirmed {from} to the kept {to}; no migration ran"
            ),
            Outcome::Migrated {
                from,
                to,
                direction,
                migrations,
                fell_back_from,
            } => {
                if let Some(left) = fell_back_from {
                    write!(f, "Dropped unconfirmed {left}; ")?;
                }
                write!(
                    f,
                    "Migrated the datastore from {from} to {to} ({} migration(s) {direction})",
                    migrations.len()
                )
            }
        }
    }
}

/// The datastore's version and confirmation, as `migrator status` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The current version.
    pub version: Version,
    /// Its directory.
    pub directory: PathBuf,
    /// Whether it was confirmed by a successful boot.
    pub confirmed: bool,
    /// The kept previous version and its directory.
    pub previous: Option<(Version, PathBuf)>,
}

/// Reads `VERSION_ID` from an os-release file.
pub fn read_os_release(path: &Path) -> Result<Version> {
    let text = std::fs::read_to_string(path).context(error::ReadSnafu { path })?;
    let invalid = |reason: String| Error::OsRelease {
        path: path.to_path_buf(),
        reason,
    };
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("VERSION_ID="))
        .ok_or_else(|| invalid("no VERSION_ID line".into()))?;
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let version = Version::parse(value)
        .map_err(|e| invalid(format!("VERSION_ID '{value}' is not a version: {e}")))?;
    layout::check_version(&version)?;
    Ok(version)
}

/// The datastore's state without changing anything; `None` if there is no datastore.
pub fn status(root: &Path) -> Result<Option<Status>> {
    let Some((version, dir)) = chain::resolve(root)? else {
        return Ok(None);
    };
    let state = state::reconcile(&dir, state::load(root)?, root);
    Ok(Some(Status {
        version,
        directory: root.join(&dir),
        confirmed: state.confirmed,
        previous: state
            .previous
            .and_then(|p| parse_dir_name(&p).map(|v| (v, root.join(p)))),
    }))
}

/// Marks the current version confirmed (its boot succeeded) and prunes every directory but
/// the current and the previous one.
pub fn confirm(root: &Path) -> Result<()> {
    confirm_with(root, &Steps::new())
}

/// [`confirm`], reporting durable steps to `steps`.
pub fn confirm_with(root: &Path, steps: &Steps) -> Result<()> {
    let mut state = recover(root, steps)?;
    if !state.confirmed {
        state.confirmed = true;
        state::store(root, &state, steps)?;
    }
    prune(root, &state, steps)
}

/// Brings the datastore to `options.version`. See the module documentation.
pub fn migrate(options: &MigrateOptions) -> Result<Outcome> {
    let (root, steps, target) = (&options.datastore, &options.steps, &options.version);
    layout::check_version(target)?;
    if chain::resolve(root)?.is_none() {
        return create(root, target, steps);
    }
    let mut state = recover(root, steps)?;
    let mut version = version_of(root, &state.current)?;
    if version == *target {
        return Ok(Outcome::UpToDate { version });
    }

    let mut fell_back_from = None;
    if let (false, Some(previous)) = (state.confirmed, state.previous.clone()) {
        // The current version never booted successfully: no code of its release runs. Go back
        // to the directory kept from before it, then on from there if need be.
        let previous_version = version_of(root, &previous)?;
        chain::flip(root, &previous_version, &previous, steps)?;
        state = State {
            current: previous,
            previous: None,
            confirmed: true,
        };
        state::store(root, &state, steps)?;
        prune(root, &state, steps)?;
        if previous_version == *target {
            return Ok(Outcome::FellBack {
                from: version,
                to: previous_version,
            });
        }
        fell_back_from = Some(std::mem::replace(&mut version, previous_version));
    }

    let fetched = options.cache.fetch(&version, target)?;
    let direction = Direction::from(fetched.path.direction);
    // Decompress and parse everything before running anything.
    let mut prepared = Vec::new();
    for (name, compressed) in &fetched.targets {
        let bytes = decompress(name.as_str(), compressed)?;
        let migration = match Kind::of(name.as_str()) {
            Kind::Declarative => {
                Prepared::Declarative(Document::from_slice(name.as_str(), &bytes)?)
            }
            Kind::Executable => Prepared::Executable(bytes),
        };
        let kept = match direction {
            Direction::Backward => {
                kept_for(root, &state, &fetched.manifest, name, target, &version)
            }
            Direction::Forward => None,
        };
        prepared.push((name.as_str().to_string(), migration, kept));
    }

    let output = run_chain(root, &state.current, target, &prepared, direction, steps)?;
    chain::flip(root, target, &output, steps)?;
    let state = State {
        current: output,
        previous: Some(state.current),
        confirmed: false,
    };
    state::store(root, &state, steps)?;
    prune(root, &state, steps)?;
    Ok(Outcome::Migrated {
        from: version,
        to: target.clone(),
        direction,
        migrations: prepared.into_iter().map(|(name, _, _)| name).collect(),
        fell_back_from,
    })
}

/// The declarative documents that stand between migration `index` of a backward run and the
/// kept directory it restores from: those that run after it here and restore from the same
/// kept directory, in forward order. (An executable migration among them is not traced: what
/// it renames, it must carry itself.) Empty going forward or without a kept directory.
fn earlier_documents(
    prepared: &[(String, Prepared, Option<PathBuf>)],
    index: usize,
    direction: Direction,
) -> Vec<&Document> {
    let kept = &prepared[index].2;
    if direction == Direction::Forward || kept.is_none() {
        return Vec::new();
    }
    prepared[index + 1..]
        .iter()
        .rev()
        .filter(|(_, _, theirs)| theirs == kept)
        .filter_map(|(_, migration, _)| match migration {
            Prepared::Declarative(doc) => Some(doc),
            Prepared::Executable(_) => None,
        })
        .collect()
}

enum Prepared {
    Declarative(Document),
    Executable(Vec<u8>),
}

fn version_of(root: &Path, dir: &str) -> Result<Version> {
    parse_dir_name(dir).ok_or_else(|| Error::InvalidState {
        path: state::path(root),
        reason: format!("'{dir}' is not a version directory name"),
    })
}

/// The kept directory a backward migration may restore dropped values from: the previous
/// directory, when its version is the one this migration goes back to (the lower version of
/// the manifest entry listing it).
fn kept_for(
    root: &Path,
    state: &State,
    manifest: &Manifest,
    name: &MigrationName,
    lowest: &Version,
    highest: &Version,
) -> Option<PathBuf> {
    let previous = state.previous.as_ref()?;
    let previous_version = parse_dir_name(previous)?;
    let (from, _) = manifest
        .migrations()
        .iter()
        .find(|((from, to), list)| from >= lowest && to <= highest && list.contains(name))?
        .0;
    (previous_version == *from).then(|| root.join(previous))
}

/// Runs the migrations, each from the previous output, into fresh `v<target>_<random>`
/// directories; returns the last one's name. On failure every output made is removed.
///
/// A declarative migration that follows another migration of this run applies its operations
/// to that migration's output in place instead of to a new hard-linked copy of it: the output
/// is this run's own, nothing points at it and it is removed on failure, so the result and the
/// guarantees are those of one copy per migration (the input, `current`, is never touched)
/// without copying the tree (thousands of links and directories) once per migration. An
/// executable migration always gets a fresh directory, as its contract says.
fn run_chain(
    root: &Path,
    current: &str,
    target: &Version,
    prepared: &[(String, Prepared, Option<PathBuf>)],
    direction: Direction,
    steps: &Steps,
) -> Result<String> {
    let mut created: Vec<PathBuf> = Vec::new();
    let result = (|| {
        let mut input = root.join(current);
        let mut last = String::new();
        if prepared.is_empty() {
            last = layout::new_dir_name(target);
            let output = root.join(&last);
            created.push(output.clone());
            fsutil::link_tree(&input, &output)?;
            fsutil::sync_fs(&output)?;
            steps.record(Step::MigrationOutput {
                index: 0,
                name: "copy".into(),
            })?;
        }
        for (index, (name, migration, kept)) in prepared.iter().enumerate() {
            // `input` is this run's own output from the second migration on.
            let own_input = index > 0;
            let output = match migration {
                Prepared::Declarative(doc) => {
                    let output = if own_input {
                        input.clone()
                    } else {
                        last = layout::new_dir_name(target);
                        let output = root.join(&last);
                        created.push(output.clone());
                        fsutil::link_tree(&input, &output)?;
                        output
                    };
                    let earlier = earlier_documents(prepared, index, direction);
                    doc.apply_in_place_after(name, &output, direction, kept.as_deref(), &earlier)?;
                    output
                }
                Prepared::Executable(program) => {
                    last = layout::new_dir_name(target);
                    let output = root.join(&last);
                    created.push(output.clone());
                    executable::run(name, program, &input, &output, direction)?;
                    output
                }
            };
            let live = output.join(layout::LIVE);
            if !live.is_dir() {
                return Err(match migration {
                    Prepared::Executable(_) => Error::NoLiveOutput {
                        name: name.clone(),
                        direction: direction.to_string(),
                        path: live,
                    },
                    Prepared::Declarative(_) => Error::InvalidMigration {
                        name: name.clone(),
                        reason: format!("it wrote no '{}' directory", live.display()),
                    },
                });
            }
            // Only the last output must be durable before the flip: an intermediate one is
            // removed by recovery after a crash anyway.
            if index + 1 == prepared.len() {
                fsutil::sync_fs(&output)?;
            }
            steps.record(Step::MigrationOutput {
                index,
                name: name.clone(),
            })?;
            if own_input && output != input {
                // An intermediate output, no longer needed.
                fsutil::remove_any(&input)?;
            }
            input = output;
        }
        Ok(last)
    })();
    if let Err(e) = &result {
        if !matches!(e, Error::Crashed { .. }) {
            for dir in &created {
                // Best effort: recovery at the next run removes whatever stays.
                let _ = fsutil::remove_any(dir);
            }
        }
    }
    result
}

/// First boot: an empty datastore at the booted version, confirmed (there is nothing to fall
/// back to).
fn create(root: &Path, version: &Version, steps: &Steps) -> Result<Outcome> {
    std::fs::create_dir_all(root).context(error::WriteSnafu { path: root })?;
    // Leftovers of an earlier, interrupted creation.
    prune(
        root,
        &State {
            current: String::new(),
            previous: None,
            confirmed: true,
        },
        steps,
    )?;
    let name = layout::new_dir_name(version);
    let dir = root.join(&name);
    for area in [layout::LIVE, layout::PENDING] {
        let path = dir.join(area);
        std::fs::create_dir_all(&path).context(error::WriteSnafu { path })?;
    }
    fsutil::sync_fs(&dir)?;
    steps.record(Step::MigrationOutput {
        index: 0,
        name: "create".into(),
    })?;
    chain::flip(root, version, &name, steps)?;
    let state = State {
        current: name,
        previous: None,
        confirmed: true,
    };
    state::store(root, &state, steps)?;
    Ok(Outcome::Created {
        version: version.clone(),
    })
}

/// Makes the state file agree with the links and removes what an interrupted run left.
fn recover(root: &Path, steps: &Steps) -> Result<State> {
    let (_, linked) = chain::resolve(root)?.ok_or_else(|| Error::NoDatastore {
        path: root.to_path_buf(),
    })?;
    let file = state::load(root)?;
    let state = state::reconcile(&linked, file.clone(), root);
    if file.as_ref() != Some(&state) {
        state::store(root, &state, steps)?;
    }
    prune(root, &state, steps)?;
    Ok(state)
}

/// Removes every version directory but the state's current and previous, and version links
/// that lead nowhere.
fn prune(root: &Path, state: &State, steps: &Steps) -> Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .context(error::ReadSnafu { path: root })?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    // Directories first, then the links that pointed at them.
    for links in [false, true] {
        for name in &names {
            let path = root.join(name);
            let meta = std::fs::symlink_metadata(&path);
            let Ok(meta) = meta else { continue };
            let is_link = meta.file_type().is_symlink();
            if name.starts_with(".tmp-link-") {
                fsutil::remove_any(&path)?;
                continue;
            }
            let garbage = if links {
                is_version_link_name(name) && is_link && !path.exists()
            } else {
                parse_dir_name(name).is_some()
                    && !is_link
                    && *name != state.current
                    && Some(name) != state.previous.as_ref()
            };
            if garbage {
                fsutil::remove_any(&path)?;
                steps.record(Step::Prune { name: name.clone() })?;
            }
        }
    }
    fsutil::sync_dir(root)
}

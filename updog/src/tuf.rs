//! Loading the TUF repository, and the version floor that keeps trust from moving backward.
//!
//! tough walks from the root.json shipped in the booted image through the `N.root.json` chain,
//! enforces expiry (`ExpirationEnforcement::Safe`) and keeps its datastore in
//! `var/lib/updog/tuf/`. After it loads, we check our own floor, `var/lib/updog/trusted-state.json`:
//! a root, timestamp, snapshot or targets version below what this node already trusted is refused,
//! and the floor is raised only after a load that passed. When a new root changes the keys or
//! threshold of the timestamp, snapshot or targets role, the floors of those three roles start over
//! from what that root's keys signed: this is how a publisher recovers nodes from a fast-forward
//! attack (TUF specification 5.3.11). The root's floor never starts over.

use crate::error::{self, Result};
use crate::paths::{Paths, write_atomic};
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::collections::BTreeMap;
use std::path::Path;
use tough::schema::{RoleType, Root};
use tough::{ExpirationEnforcement, Repository, RepositoryLoader, Transport};
use url::Url;

/// What this node has trusted: the persisted floor (`var/lib/updog/trusted-state.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedState {
    /// root.json version.
    pub root: u64,
    /// timestamp.json version.
    pub timestamp: u64,
    /// snapshot.json version.
    pub snapshot: u64,
    /// targets.json version.
    pub targets: u64,
    /// For the timestamp, snapshot and targets roles, the threshold and sorted key ids the
    /// trusted root gave them (`"1:ab12..,cd34.."`); a change resets those roles' floors.
    #[serde(default)]
    pub role_keys: BTreeMap<String, String>,
}

impl TrustedState {
    /// The state of a loaded repository.
    pub fn of(repo: &Repository) -> TrustedState {
        TrustedState::from_roles(
            &repo.root().signed,
            repo.timestamp().signed.version.get(),
            repo.snapshot().signed.version.get(),
            repo.targets().signed.version.get(),
        )
    }

    /// The state of a trusted `root` and the versions of the timestamp, snapshot and targets
    /// metadata trusted with it (0 where none is trusted yet).
    pub fn from_roles(root: &Root, timestamp: u64, snapshot: u64, targets: u64) -> TrustedState {
        let role_keys = [RoleType::Timestamp, RoleType::Snapshot, RoleType::Targets]
            .into_iter()
            .map(|role| {
                let keys = root.roles.get(&role).map(|rk| {
                    let mut ids: Vec<String> = rk
                        .keyids
                        .iter()
                        .map(|id| hex::encode(id.as_ref() as &[u8]))
                        .collect();
                    ids.sort();
                    format!("{}:{}", rk.threshold, ids.join(","))
                });
                (role.to_string(), keys.unwrap_or_default())
            })
            .collect();
        TrustedState {
            root: root.version.get(),
            timestamp,
            snapshot,
            targets,
            role_keys,
        }
    }

    /// Reads the floor; a missing file is the zero floor.
    pub fn read(path: &Path) -> Result<TrustedState> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| error::Error::StateFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustedState::default()),
            Err(source) => Err(source).context(error::IoSnafu { verb: "read", path }),
        }
    }

    /// Writes the floor atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut json = serde_json::to_string_pretty(self).context(error::SerializeSnafu {
            what: "the trusted state",
        })?;
        json.push('\n');
        write_atomic(path, json.as_bytes())
    }

    /// Checks `self` (just loaded) against `floor`; `url` is only used in messages.
    pub fn check_against(&self, floor: &TrustedState, url: &str) -> Result<()> {
        let refuse = |role: &'static str, version: u64, floor: u64| {
            error::RollbackSnafu {
                url,
                role,
                version,
                floor,
            }
            .fail()
        };
        if self.root < floor.root {
            return refuse("root", self.root, floor.root);
        }
        if !floor.role_keys.is_empty() && floor.role_keys != self.role_keys {
            tracing::info!(
                "root {} changed the timestamp, snapshot or targets keys: their version floors start over",
                self.root
            );
            return Ok(());
        }
        for (role, version, below) in [
            ("timestamp", self.timestamp, floor.timestamp),
            ("snapshot", self.snapshot, floor.snapshot),
            ("targets", self.targets, floor.targets),
        ] {
            if version < below {
                return refuse(role, version, below);
            }
        }
        Ok(())
    }
}

/// Loads the repository at the config's URLs from the booted root.json, with tough's datastore
/// and our floor under `paths`, and raises the floor.
///
/// `transport` is updog's [`UpdogTransport`](crate::transport::UpdogTransport), or a wrapper
/// around it (the TUF conformance client records the metadata bytes it fetches).
pub async fn load_repository<T>(
    paths: &Paths,
    metadata_base_url: &Url,
    targets_base_url: &Url,
    transport: T,
) -> Result<Repository>
where
    T: Transport + Send + Sync + 'static,
{
    let root = std::fs::read(&paths.root_json).context(error::IoSnafu {
        verb: "read the trusted root",
        path: &paths.root_json,
    })?;
    std::fs::create_dir_all(&paths.tuf_datastore).context(error::IoSnafu {
        verb: "create directory",
        path: &paths.tuf_datastore,
    })?;
    let url = metadata_base_url.to_string();
    let repo = RepositoryLoader::new(&root, metadata_base_url.clone(), targets_base_url.clone())
        .transport(transport)
        .datastore(&paths.tuf_datastore)
        .expiration_enforcement(ExpirationEnforcement::Safe)
        .load()
        .await
        .context(error::LoadRepoSnafu { url: &url })?;
    let loaded = TrustedState::of(&repo);
    {
        // Reading, checking and raising the floor is one step: two refreshes that overlap (a
        // `check-update` beside an install) must not let the slower one write back a lower floor.
        let _guard = FloorGuard::take(&paths.trusted_state)?;
        let floor = TrustedState::read(&paths.trusted_state)?;
        loaded.check_against(&floor, &url)?;
        if loaded != floor {
            loaded.write(&paths.trusted_state)?;
        }
    }
    tracing::debug!(
        "trusted root {} timestamp {} snapshot {} targets {}",
        loaded.root,
        loaded.timestamp,
        loaded.snapshot,
        loaded.targets
    );
    Ok(repo)
}

/// An exclusive `flock` on `<floor>.lock`, held while the floor is read, checked and raised.
/// Unlike the update lock it waits: the critical section is a file read and an atomic write.
struct FloorGuard {
    /// Closing the file releases the lock.
    _file: std::fs::File,
}

impl FloorGuard {
    fn take(floor: &Path) -> Result<FloorGuard> {
        let mut name = floor.as_os_str().to_owned();
        name.push(".lock");
        let path = std::path::PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context(error::IoSnafu {
                verb: "open",
                path: &path,
            })?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .context(error::IoSnafu {
                verb: "lock",
                path: &path,
            })?;
        Ok(FloorGuard { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(root: u64, ts: u64, keys: &str) -> TrustedState {
        TrustedState {
            root,
            timestamp: ts,
            snapshot: ts,
            targets: ts,
            role_keys: [("timestamp".to_string(), keys.to_string())].into(),
        }
    }

    #[test]
    fn the_floor_refuses_lower_versions_unless_keys_rotated() {
        let floor = state(2, 100, "1:aa");
        state(2, 100, "1:aa").check_against(&floor, "u").unwrap();
        state(3, 101, "1:aa").check_against(&floor, "u").unwrap();
        let err = state(2, 99, "1:aa").check_against(&floor, "u").unwrap_err();
        assert!(
            err.to_string()
                .contains("timestamp version 99 is below version 100"),
            "{err}"
        );
        let err = state(1, 100, "1:aa")
            .check_against(&floor, "u")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("root version 1 is below version 2"),
            "{err}"
        );
        // A rotated timestamp key lets lower versions through; a lower root never.
        state(3, 5, "1:bb").check_against(&floor, "u").unwrap();
        assert!(state(1, 5, "1:bb").check_against(&floor, "u").is_err());
        // No floor yet.
        state(1, 1, "1:aa")
            .check_against(&TrustedState::default(), "u")
            .unwrap();
    }

    #[test]
    fn overlapping_refreshes_never_lower_the_floor() {
        // Many threads raise the floor to different versions at once, each through the same
        // read-check-write the loader does; the floor ends at the highest, never below.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trusted-state.json");
        let threads: Vec<_> = (1..=16u64)
            .map(|v| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let loaded = state(1, v, "1:aa");
                    let _guard = FloorGuard::take(&path).unwrap();
                    let floor = TrustedState::read(&path).unwrap();
                    if loaded.check_against(&floor, "u").is_ok() && loaded != floor {
                        loaded.write(&path).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(TrustedState::read(&path).unwrap().timestamp, 16);
    }

    #[test]
    fn the_documented_example_parses() {
        let json =
            test_tools::marked_block(include_str!("../../docs/formats-updog.md"), "trusted-state")
                .unwrap();
        let state: TrustedState = serde_json::from_str(&json).unwrap();
        assert!(state.root >= 1 && state.role_keys.contains_key("snapshot"));
    }
}

//! `<datastore>/migration-state.json`: which directory is current, whether its version has been
//! confirmed by a successful boot, and which previous directory is kept.
//!
//! ```json
//! {"current": "v1.1.0_Xk3pQ9aZr2Lm8BvT", "previous": "v1.0.0_Hq2mW7cN4sYd1EoP", "confirmed": false}
//! ```
//!
//! The version links are the truth about which version the datastore is at; this file is only
//! written after them. When the two disagree after a crash, `reconcile` decides from the links
//! (see docs/datastore.md, "Crash safety"). Written atomically (temporary file, sync, rename,
//! directory sync).

use crate::error::{self, Result};
use crate::fsutil;
use crate::steps::{Step, Steps};
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::path::{Path, PathBuf};

/// The state file's name in the datastore root.
pub const STATE_FILE: &str = "migration-state.json";

/// The contents of `migration-state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The directory `current` resolves to.
    pub current: String,
    /// The directory of the version before, kept for a fallback and for backward migrations
    /// to restore dropped values from.
    #[serde(default)]
    pub previous: Option<String>,
    /// Whether a boot of the current version was marked successful since it was migrated to.
    pub confirmed: bool,
}

/// The state file's path.
pub fn path(root: &Path) -> PathBuf {
    root.join(STATE_FILE)
}

/// Reads the state file; `None` if there is none (a Bottlerocket datastore, or a new one).
pub(crate) fn load(root: &Path) -> Result<Option<State>> {
    let path = path(root);
    match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(error::ReadSnafu { path }),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .context(error::ParseStateSnafu { path }),
    }
}

/// Writes the state file atomically and durably (one durable step).
pub(crate) fn store(root: &Path, state: &State, steps: &Steps) -> Result<()> {
    let path = path(root);
    let mut bytes =
        serde_json::to_vec_pretty(state).context(error::ParseStateSnafu { path: &path })?;
    bytes.push(b'\n');
    fsutil::write_atomic(&path, &bytes, true)?;
    steps.record(Step::State)
}

/// The state that matches the links, given the links' directory and the state file.
///
/// - no state file: a datastore we did not migrate (Bottlerocket's, or one whose creation was
///   interrupted after its links): confirmed, nothing kept;
/// - the file agrees with the links: as it is;
/// - the links point at the kept previous directory: a fallback flipped them and stopped before
///   writing the file: the previous version, confirmed (it was when we left it), nothing kept;
/// - the links point at another directory: a migration flipped them and stopped before writing
///   the file: that directory, unconfirmed, keeping the one the file called current.
pub(crate) fn reconcile(linked: &str, file: Option<State>, root: &Path) -> State {
    match file {
        None => State {
            current: linked.to_string(),
            previous: None,
            confirmed: true,
        },
        Some(state) if state.current == linked => {
            let previous = state.previous.filter(|p| root.join(p).is_dir());
            State { previous, ..state }
        }
        Some(state) if state.previous.as_deref() == Some(linked) => State {
            current: linked.to_string(),
            previous: None,
            confirmed: true,
        },
        Some(state) => State {
            current: linked.to_string(),
            previous: root.join(&state.current).is_dir().then_some(state.current),
            confirmed: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reconciles() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(load(root).unwrap(), None);
        let state = State {
            current: "v1.1.0_b".into(),
            previous: Some("v1.0.0_a".into()),
            confirmed: false,
        };
        store(root, &state, &Steps::new()).unwrap();
        assert_eq!(load(root).unwrap(), Some(state.clone()));
        std::fs::create_dir(root.join("v1.0.0_a")).unwrap();
        std::fs::create_dir(root.join("v1.1.0_b")).unwrap();

        assert_eq!(reconcile("v1.1.0_b", Some(state.clone()), root), state);
        let fell_back = reconcile("v1.0.0_a", Some(state.clone()), root);
        assert_eq!((fell_back.confirmed, fell_back.previous), (true, None));
        let moved_on = reconcile("v1.2.0_c", Some(state.clone()), root);
        assert_eq!(moved_on.previous.as_deref(), Some("v1.1.0_b"));
        assert!(!moved_on.confirmed);
        assert!(reconcile("v1.0.0_a", None, root).confirmed);

        std::fs::write(path(root), b"{").unwrap();
        let err = load(root).unwrap_err().to_string();
        assert!(
            err.starts_with("Failed to parse the migration state"),
            "{err}"
        );
    }
}

//! Every shipped root is a root a node can start from: self-signed to its root threshold, with
//! consistent snapshots, every role meetable, whole-second times, and months of life left.

#![allow(clippy::unwrap_used)]

use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tough::schema::{RoleType, Root, Signed};

/// A root that expires sooner than this must be replaced before it ships.
const MIN_LIFE: SignedDuration = SignedDuration::from_hours(24 * 90);

fn roots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("roots")
}

/// `roots/<name>/root.json` for every directory under `roots/`.
fn root_files() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(roots_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            (name, dir.join("root.json"))
        })
        .collect();
    out.sort();
    out
}

/// Every problem with one root file; empty if it is fit to ship.
fn problems(path: &Path, now: Timestamp) -> Vec<String> {
    let mut problems = Vec::new();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return vec![format!("cannot read: {e}")],
    };
    let root: Signed<Root> = match serde_json::from_str(&text) {
        Ok(root) => root,
        Err(e) => return vec![format!("not a TUF root: {e}")],
    };
    let signed = &root.signed;
    if let Err(e) = signed.verify_role(&root) {
        problems.push(format!("not signed to its own root threshold: {e}"));
    }
    if !signed.consistent_snapshot {
        problems.push("consistent_snapshot is false".to_string());
    }
    if !signed.spec_version.starts_with("1.") {
        problems.push(format!("spec_version {}", signed.spec_version));
    }
    for role in [
        RoleType::Root,
        RoleType::Snapshot,
        RoleType::Targets,
        RoleType::Timestamp,
    ] {
        let Some(keys) = signed.roles.get(&role) else {
            problems.push(format!("role '{role}' is missing"));
            continue;
        };
        if keys.threshold.get() > keys.keyids.len() as u64 {
            problems.push(format!(
                "role '{role}' needs {} signatures but lists {} key(s)",
                keys.threshold,
                keys.keyids.len()
            ));
        }
        for id in &keys.keyids {
            match signed.keys.get(id) {
                None => problems.push(format!("role '{role}' names an unlisted key")),
                // A key id is the hash of the key it names; a mismatch would let one key
                // count as another.
                Some(key) => {
                    if key.key_id().ok().as_ref() != Some(id) {
                        problems.push(format!("role '{role}': key id does not match its key"));
                    }
                }
            }
        }
    }
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expires_text = json["signed"]["expires"].as_str().unwrap_or_default();
    if !test_tools::tuf::is_whole_seconds(expires_text) {
        problems.push(format!(
            "expires '{expires_text}' is not YYYY-MM-DDTHH:MM:SSZ (python-tuf refuses it)"
        ));
    }
    if signed.expires <= now {
        problems.push(format!("expired at {}", signed.expires));
    } else if signed.expires.duration_since(now) < MIN_LIFE {
        problems.push(format!(
            "expires at {}, within 90 days: make a new root (docs/tuf-roots.md)",
            signed.expires
        ));
    }
    problems
}

#[test]
fn every_shipped_root_is_valid_and_listed() {
    let now = Timestamp::now();
    let files = root_files();
    assert!(!files.is_empty(), "no roots under {:?}", roots_dir());
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for (name, path) in &files {
        let found = problems(path, now);
        assert!(found.is_empty(), "roots/{name}/root.json: {found:?}");
        let shipped = tuf_roots::get(name)
            .unwrap_or_else(|| panic!("roots/{name} is not listed in tuf_roots::ROOTS"));
        assert_eq!(shipped.json, std::fs::read_to_string(path).unwrap());
        assert!(
            readme.contains(&format!("## roots/{name}/")),
            "README.md has no provenance section '## roots/{name}/'"
        );
    }
    let listed: BTreeSet<&str> = tuf_roots::ROOTS.iter().map(|r| r.name).collect();
    let on_disk: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(listed, on_disk);
}

/// Test roots keep their private keys next to them, marked as such, and those keys are the ones
/// the root lists: tests and demos can sign repositories that a node with this root accepts.
#[test]
fn test_roots_carry_their_keys_and_say_so() {
    for root in tuf_roots::ROOTS.iter().filter(|r| r.test_only) {
        let keys_dir = roots_dir().join(root.name).join("keys");
        let readme = std::fs::read_to_string(keys_dir.join("README.md")).unwrap();
        assert!(readme.contains("TEST ONLY"), "{}: {readme}", root.name);
        let signed: Signed<Root> = serde_json::from_str(root.json).unwrap();
        let mut signers = 0;
        for entry in std::fs::read_dir(&keys_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "pem") {
                continue;
            }
            let id = repo_tools::keys::key_id_decoded(&path).unwrap();
            assert!(
                signed.signed.keys.contains_key(&id),
                "{path:?} is not a key of roots/{}/root.json",
                root.name
            );
            signers += 1;
        }
        assert_eq!(signers, signed.signed.keys.len(), "{}", root.name);
    }
}

/// The checks above would catch what they claim to: a root changed after signing, one without
/// consistent snapshots, one about to expire.
#[test]
fn the_checks_refuse_bad_roots() {
    let good = roots_dir().join("test/root.json");
    let now = Timestamp::now();
    assert!(problems(&good, now).is_empty());
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path();
    let edited = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
        change(&mut json);
        let path = work.join("root.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        problems(&path, now)
    };
    let found = edited(&|j| j["signed"]["consistent_snapshot"] = false.into());
    assert!(
        found.iter().any(|p| p.contains("consistent_snapshot")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("threshold")), "{found:?}");
    let found = edited(&|j| j["signed"]["roles"]["timestamp"]["threshold"] = 5.into());
    assert!(
        found.iter().any(|p| p.contains("needs 5 signatures")),
        "{found:?}"
    );
    let found = edited(&|j| {
        j["signed"]["roles"]
            .as_object_mut()
            .unwrap()
            .remove("snapshot");
    });
    assert!(
        found.iter().any(|p| p.contains("'snapshot' is missing")),
        "{found:?}"
    );
    let signed: Signed<Root> =
        serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    let late = signed.signed.expires - SignedDuration::from_hours(24 * 30);
    let found = problems(&good, late);
    assert!(
        found.iter().any(|p| p.contains("within 90 days")),
        "{found:?}"
    );
    let found = edited(&|j| j["signed"]["expires"] = "2036-01-01T00:00:00.5Z".into());
    assert!(
        found.iter().any(|p| p.contains("YYYY-MM-DDTHH:MM:SSZ")),
        "{found:?}"
    );
}

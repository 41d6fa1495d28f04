//! What repo-tool writes is readable by whoever serves it: every file it publishes or edits is
//! created as any other file is (mode 0666 less the umask); only key files are private.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The permission bits of every file under `dir`.
fn modes(dir: &Path) -> BTreeMap<PathBuf, u32> {
    snapshot(dir)
        .into_keys()
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), mode(&p)))
        .collect()
}

#[test]
fn published_files_follow_the_umask_and_keys_stay_private() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    keys_and_root(dir, "ed25519");
    fake_images(dir, "1.0.0");
    fake_images(dir, "1.1.0");

    ok_with_umask(dir, 0o022, &["root", "init", "other-root.json"]);
    let root_mode = mode(&dir.join("other-root.json"));
    assert_eq!(root_mode, 0o644, "root.json has mode {root_mode:o}");
    ok_with_umask(dir, 0o000, &["key", "generate", "--out", "keys/other.pem"]);
    let key_mode = mode(&dir.join("keys/other.pem"));
    assert_eq!(key_mode, 0o600, "a key has mode {key_mode:o}");

    let mut extra = vec!["--root", "root.json", "--no-waves"];
    extra.extend(SIGN);
    ok_with_umask(dir, 0o022, &strs(&publish_args("1.0.0", &extra)));
    let first = modes(&dir.join("repo"));
    for name in [
        "repo/demo/x86_64/1.root.json",
        "repo/demo/x86_64/timestamp.json",
    ] {
        assert!(first.contains_key(&dir.join(name)), "{name} not written");
    }
    let targets = first
        .keys()
        .filter(|p| p.starts_with(dir.join("repo/targets")))
        .count();
    // Three images, their chunk files and indexes, and the manifest.
    assert_eq!(targets, 10, "{first:?}");
    for (path, mode) in &first {
        assert_eq!(*mode, 0o644, "{path:?} has mode {mode:o}");
    }

    // A stricter umask gives the new files of the next publish its own mode, and leaves the
    // files already there alone.
    let mut extra = vec!["--no-waves"];
    extra.extend(SIGN);
    ok_with_umask(dir, 0o027, &strs(&publish_args("1.1.0", &extra)));
    let second = modes(&dir.join("repo"));
    assert!(second.len() > first.len());
    for (path, mode) in &second {
        let want = if first.contains_key(path) && !path.ends_with("timestamp.json") {
            0o644
        } else {
            0o640
        };
        assert_eq!(*mode, want, "{path:?} has mode {mode:o}");
    }
}

#[test]
fn the_scratch_files_of_a_killed_publish_are_removed_by_the_next_one() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    keys_and_root(dir, "ed25519");
    fake_images(dir, "1.0.0");
    fake_images(dir, "1.1.0");
    let mut extra = vec!["--root", "root.json", "--no-waves"];
    extra.extend(SIGN);
    ok(dir, &strs(&publish_args("1.0.0", &extra)));
    // What a publish killed before its commit leaves: its scratch directory in the repository,
    // and the metadata it was about to move into place.
    let stale = [
        dir.join("repo/.staging.killed/3/demo-x86_64-1.1.0-root.ext4.lz4.chunks"),
        dir.join("repo/demo/x86_64/.staging.killed/timestamp.json"),
    ];
    for file in &stale {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, b"half written").unwrap();
    }

    let mut extra = vec!["--no-waves"];
    extra.extend(SIGN);
    ok(dir, &strs(&publish_args("1.1.0", &extra)));
    assert!(!dir.join("repo/.staging.killed").exists());
    assert!(!dir.join("repo/demo/x86_64/.staging.killed").exists());
    // Nothing else is left behind either: the repository holds its metadata and targets only.
    let names: Vec<String> = std::fs::read_dir(dir.join("repo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    validate_ok(dir);
}

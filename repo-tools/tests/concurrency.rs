//! Two repo-tool commands changing one repository at once take turns: each holds the
//! repository's lock (a `flock` on `--repo` itself) from before it reads the current metadata
//! until it has committed, says once on stderr that it waits while another holds it, and loses
//! nobody's work. Commands that only read take no lock.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

/// What a command prints while another repo-tool changes `repo/`.
const WAITS: &str = "Waiting for another repo-tool changing 'repo' to finish";

/// The metadata version in a publish's result line, "published V (metadata version N, root R)".
fn metadata_version(stdout: &str) -> u64 {
    stdout
        .split_once("(metadata version ")
        .and_then(|(_, rest)| rest.split_once(','))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no metadata version in {stdout:?}"))
}

#[test]
fn two_publishes_at_once_both_land_with_different_metadata_versions() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    fake_images(dir, "1.2.0");
    fake_images(dir, "1.3.0");

    // Both start while the lock is held (as by a third repo-tool), so once it is released they
    // run at the same time, for certain.
    let held = hold_lock(&dir.join("repo"));
    let mut publishes =
        ["1.2.0", "1.3.0"].map(|v| Running::start(dir, &strs(&publish_args(v, &SIGN))));
    let first_lines = publishes.each_mut().map(Running::stderr_line);
    drop(held);
    let [a, b] = publishes.map(Running::finish);

    for (version, out) in [("1.2.0", &a), ("1.3.0", &b)] {
        assert!(out.success, "publish {version} failed: {}", out.stderr);
        assert!(
            out.stdout
                .starts_with(&format!("published {version} (metadata version ")),
            "{}",
            out.stdout
        );
    }
    let (va, vb) = (metadata_version(&a.stdout), metadata_version(&b.stdout));
    assert_ne!(va, vb, "both publishes signed metadata version {va}");
    let manifest = read_manifest(dir);
    let versions: Vec<String> = manifest
        .updates()
        .iter()
        .filter(|u| u.is_for("demo", "x86_64"))
        .map(|u| u.version.to_string())
        .collect();
    for version in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"] {
        assert!(
            versions.iter().any(|v| v == version),
            "{version} is missing from the manifest: {versions:?}"
        );
    }
    assert_eq!(versions.len(), 4, "{versions:?}");
    validate_ok(dir);
    // Each said once, on stderr and nothing else there, that it waited, as the guide says.
    assert!(test_tools::read_doc("publishing.md").contains(&format!("`{WAITS}`")));
    for (line, out) in first_lines.iter().zip([&a, &b]) {
        assert_eq!(line, WAITS, "stderr: {:?}", out.stderr);
        assert_eq!(out.stderr, format!("{WAITS}\n"));
    }
}

#[test]
fn every_verb_that_changes_the_repository_waits_for_its_lock_and_readers_do_not() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    fake_images(dir, "1.2.0");
    // A version-2 root with the same keys, cross-signed by version 1, for `root rotate`.
    std::fs::copy(
        dir.join("repo/demo/x86_64/1.root.json"),
        dir.join("root-2.json"),
    )
    .unwrap();
    ok(dir, &["root", "set-version", "root-2.json", "2"]);
    let mut sign = vec!["root", "sign", "root-2.json"];
    for key in ROOT_KEYS {
        sign.extend(["--key", key]);
    }
    sign.extend(["--cross-sign", "repo/demo/x86_64/1.root.json"]);
    ok(dir, &sign);

    let with_keys = |verb: &[&'static str], rest: &[&'static str]| {
        let mut args: Vec<String> = on_repo(verb, rest).iter().map(|s| s.to_string()).collect();
        args.extend(SIGN.iter().map(|s| s.to_string()));
        args
    };
    let changing = [
        with_keys(&["refresh"], &[]),
        on_repo(
            &["refresh"],
            &["--timestamp-only", "--key", "keys/timestamp.pem"],
        )
        .iter()
        .map(|s| s.to_string())
        .collect(),
        with_keys(&["release", "waves"], &["--version", "1.1.0", "--pause"]),
        with_keys(&["release", "set-max-version"], &["--max-version", "1.0.0"]),
        with_keys(&["release", "pull"], &["--version", "1.1.0"]),
        publish_args("1.2.0", &SIGN),
        with_keys(&["root", "rotate"], &["--new-root", "root-2.json"]),
    ];
    for args in &changing {
        let held = hold_lock(&dir.join("repo"));
        let before = snapshot(&dir.join("repo"));
        let mut running = Running::start(dir, &strs(args));
        let line = running.stderr_line();
        assert_eq!(line, WAITS, "repo-tool {args:?}");
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            running.is_running(),
            "repo-tool {args:?} went on while the lock was held"
        );
        assert!(
            snapshot(&dir.join("repo")) == before,
            "repo-tool {args:?} changed the repository while the lock was held"
        );
        drop(held);
        let out = running.finish();
        assert!(out.success, "repo-tool {args:?} failed: {}", out.stderr);
        assert!(
            snapshot(&dir.join("repo")) != before,
            "repo-tool {args:?} changed nothing"
        );
    }
    let shown = ok(dir, &["root", "show", "repo/demo/x86_64/2.root.json"]);
    assert!(shown.starts_with("version 2,"), "{shown}");

    // Readers go on while a change is under way.
    let held = hold_lock(&dir.join("repo"));
    for args in [
        on_repo(&["validate"], &["--trusted-root", "root.json"]),
        on_repo(&["check-expirations"], &[]),
        on_repo(&["waves", "plot"], &["--version", "1.2.0"]),
    ] {
        let out = Running::start(dir, &args).finish_within(Duration::from_secs(60));
        assert!(out.success, "repo-tool {args:?} failed: {}", out.stderr);
        assert_eq!(out.stderr, "", "repo-tool {args:?}");
    }
    drop(held);
    validate_ok(dir);
}

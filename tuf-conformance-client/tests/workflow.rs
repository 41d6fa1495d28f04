//! The TUF client workflow (specification 5.1–5.7) and the conformance protocol, one test per
//! step, against repositories written with python-tuf's metadata API (`tests/repo_sim.py`)
//! and served over HTTP on loopback. Each test runs the real binary and looks at what the
//! suite looks at: exit codes, the metadata directory, the target directory and the requests.
//!
//! Needs python3 with `tuf` (`.ci/python-requirements.txt`) and, for the clock tests,
//! `faketime`; skipped with a message elsewhere, failed under CI.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use testsys::Fault;

fn world(ops: serde_json::Value) -> Option<World> {
    World::new(json!({"consistent_snapshot": true}), ops)
}

fn top_level() -> Vec<String> {
    [
        "root.json",
        "snapshot.json",
        "targets.json",
        "timestamp.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

// ---- The protocol ----

#[test]
fn protocol_init_stores_the_trusted_root_and_makes_no_request() {
    let Some(w) = world(json!([])) else { return };
    w.init().ok();
    assert_eq!(w.metadata_files(), ["root.json"]);
    assert_eq!(
        std::fs::read(w.metadata_dir().join("root.json")).unwrap(),
        std::fs::read(w.repo().join("metadata/1.root.json")).unwrap()
    );
    assert!(w.requested().is_empty(), "{:?}", w.requested());

    // Bad input: one line, exit 1, nothing written.
    let bad = w.work.path().join("bad.json");
    std::fs::write(&bad, b"not json").unwrap();
    let other = w.work.path().join("other");
    let md = other.to_str().unwrap();
    w.run(&[], &["--metadata-dir", md, "init", bad.to_str().unwrap()])
        .fails_with("bad.json");
    assert!(!other.exists());
    // A missing option is named, exit 1 (the protocol's failure code, not clap's 2).
    w.run(&[], &["init", bad.to_str().unwrap()])
        .fails_with("--metadata-dir is required");
    w.run(&[], &["--metadata-dir", md, "frobnicate"]);
    assert_eq!(w.run(&[], &["frobnicate"]).code, Some(1));
}

#[test]
fn protocol_refresh_keeps_only_the_role_files_with_the_bytes_served() {
    let Some(w) = world(json!([["add_target", "targets", "a.txt", "a"], ["commit"]])) else {
        return;
    };
    w.init().ok();
    w.refresh().ok();
    // Only the four role files: tough's datastore (latest_known_time.json) is elsewhere.
    assert_eq!(w.metadata_files(), top_level());
    for (file, served) in [
        ("root.json", "1.root.json"),
        ("timestamp.json", "timestamp.json"),
        ("snapshot.json", "2.snapshot.json"),
        ("targets.json", "2.targets.json"),
    ] {
        assert_eq!(
            std::fs::read(w.metadata_dir().join(file)).unwrap(),
            std::fs::read(w.repo().join("metadata").join(served)).unwrap(),
            "{file}"
        );
    }
    // Refresh again: nothing changes, still success.
    w.refresh().ok();
    assert_eq!(w.version("timestamp"), Some(2));

    // Without a trusted root, or with the repository gone, refresh fails with exit 1.
    std::fs::remove_file(w.metadata_dir().join("root.json")).unwrap();
    w.refresh().fails_with("run 'init' first");
    w.init().ok();
    w.server
        .inject("/metadata/timestamp.json", Fault::Status(404), None);
    w.refresh().fails_with("timestamp.json");
}

#[test]
fn protocol_download_stores_targets_skips_present_ones_and_stops_at_the_first_failure() {
    let Some(w) = world(json!([
        ["add_target", "targets", "a.txt", "content of a"],
        ["add_target", "targets", "dir/b.txt", "content of b"],
        ["add_target", "targets", "c.txt", "content of c"],
        ["add_target", "targets", "d.txt", "content of d"],
        ["commit"]
    ])) else {
        return;
    };
    w.init().ok();
    // download refreshes first (no refresh before it here).
    w.download(&["a.txt", "dir/b.txt"]).ok();
    assert_eq!(
        w.targets(),
        [
            ("a.txt".to_string(), "content of a".to_string()),
            ("dir%2Fb.txt".to_string(), "content of b".to_string())
        ]
    );
    assert_eq!(w.metadata_files(), top_level());

    // Already there with matching hashes: not fetched again.
    w.server.clear_requests();
    let run = w.download(&["a.txt"]);
    run.ok();
    assert!(run.stdout.contains("already present"), "{}", run.stdout);
    assert!(
        !w.requested().iter().any(|p| p.starts_with("/targets/")),
        "{:?}",
        w.requested()
    );
    // A stored file that no longer matches is fetched again and replaced.
    std::fs::write(w.target_dir().join("a.txt"), b"stale").unwrap();
    w.download(&["a.txt"]).ok();
    assert_eq!(
        std::fs::read(w.target_dir().join("a.txt")).unwrap(),
        b"content of a"
    );

    // c downloads, unknown fails, d is never tried.
    w.server.clear_requests();
    w.download(&["c.txt", "unknown.txt", "d.txt"])
        .fails_with("Failed to find the target 'unknown.txt'");
    let names: Vec<String> = w.targets().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a.txt", "c.txt", "dir%2Fb.txt"]);
    assert!(!w.requested().iter().any(|p| p.ends_with("d.txt")));
}

// ---- 5.2 / 5.3: the root ----

#[test]
fn step_5_3_root_rotation_chain_with_key_and_threshold_changes() {
    let Some(w) = world(json!([])) else { return };
    w.init().ok();
    w.refresh().ok();
    // v2: a second root key and threshold 2; v3: root-1 replaced by root-3, threshold 2, and a
    // new timestamp key. Each link is signed by the previous root's threshold and its own.
    w.sim(json!([
        ["add_key", "root", "root-2"],
        ["threshold", "root", 2],
        ["bump_root"],
        ["remove_key", "root", "root-1"],
        ["add_key", "root", "root-3"],
        ["remove_key", "timestamp", "timestamp-1"],
        ["add_key", "timestamp", "timestamp-2"],
        ["bump_root"],
        ["expires", "timestamp", 7],
        ["commit"]
    ]));
    w.refresh().ok();
    assert_eq!(w.version("root"), Some(3));
    assert_eq!(
        std::fs::read(w.metadata_dir().join("root.json")).unwrap(),
        std::fs::read(w.repo().join("metadata/3.root.json")).unwrap()
    );
    for n in ["2.root.json", "3.root.json", "4.root.json"] {
        assert!(w.requested().contains(&format!("/metadata/{n}")), "{n}");
    }

    // v4 signed by root-3 alone: below the threshold of 2 (5.3.4). Refused; v3 stays trusted.
    w.sim(json!([["bump_root", {"sign_with": ["root-3"]}]]));
    w.refresh().fails_with("root");
    assert_eq!(w.version("root"), Some(3));

    // v4 signed by the new keys only, which the trusted root (v3) does not know.
    w.sim(json!([
        ["remove_key", "root", "root-2"],
        ["remove_key", "root", "root-3"],
        ["add_key", "root", "root-4"],
        ["add_key", "root", "root-5"],
        ["version", "root", 3],
        ["bump_root", {"sign_with": ["root-4", "root-5"]}]
    ]));
    w.refresh().fails_with("root");
    assert_eq!(w.version("root"), Some(3));
}

#[test]
fn step_5_3_5_a_root_with_the_wrong_version_is_refused() {
    let Some(w) = world(json!([])) else { return };
    w.init().ok();
    w.sim(json!([["bump_root"]]));
    // 3.root.json holds version 2: not exactly N+1.
    std::fs::copy(
        w.repo().join("metadata/2.root.json"),
        w.repo().join("metadata/3.root.json"),
    )
    .unwrap();
    w.refresh().fails_with("root");
    assert_eq!(w.version("root"), Some(2));
}

#[test]
fn step_5_3_10_an_expired_root_is_trusted_then_the_refresh_stops() {
    let Some(w) = world(json!([])) else { return };
    w.init().ok();
    w.refresh().ok();
    w.sim(json!([
        ["expires", "root", -1],
        ["bump_root"],
        ["add_target", "targets", "new.txt", "new"],
        ["commit"]
    ]));
    w.refresh().fails_with("xpired");
    // The new root was verified and persisted (5.3.8) before the freeze check (5.3.10); the
    // other roles were not updated.
    assert_eq!(w.version("root"), Some(2));
    assert_eq!(w.version("timestamp"), Some(1));
    assert_eq!(w.version("snapshot"), Some(1));
    assert_eq!(w.version("targets"), Some(1));
}

#[test]
fn step_5_3_11_fast_forward_recovery_by_rotating_timestamp_and_snapshot_keys() {
    let Some(w) = world(json!([])) else { return };
    w.init().ok();
    // An attacker with the timestamp and snapshot keys fast-forwards the versions.
    w.sim(json!([
        ["version", "timestamp", 1000],
        ["version", "snapshot", 1000],
        ["commit"]
    ]));
    w.refresh().ok();
    assert_eq!(w.version("timestamp"), Some(1000));
    assert_eq!(w.version("snapshot"), Some(1000));
    // The repository goes back to sane versions: refused as a rollback.
    w.sim(json!([
        ["version", "timestamp", 3],
        ["version", "snapshot", 3],
        ["commit"]
    ]));
    w.refresh().fails_with("timestamp");
    assert_eq!(w.version("timestamp"), Some(1000));
    // Recovery: a new root rotates both keys; the old versions no longer count.
    w.sim(json!([
        ["remove_key", "timestamp", "timestamp-1"],
        ["add_key", "timestamp", "timestamp-2"],
        ["remove_key", "snapshot", "snapshot-1"],
        ["add_key", "snapshot", "snapshot-2"],
        ["bump_root"],
        ["version", "timestamp", 4],
        ["version", "snapshot", 4],
        ["commit"]
    ]));
    w.refresh().ok();
    assert_eq!(w.version("root"), Some(2));
    assert_eq!(w.version("timestamp"), Some(4));
    assert_eq!(w.version("snapshot"), Some(4));
}

// ---- 5.4: timestamp ----

#[test]
fn step_5_4_timestamp_bad_signature_rollback_and_expiry_are_refused() {
    let Some(w) = world(json!([])) else { return };
    w.init().ok();
    w.sim(json!([["expires", "timestamp", 7], ["commit"]]));
    w.refresh().ok();
    assert_eq!(w.version("timestamp"), Some(2));

    // 5.4.2: signed by a key the root does not list.
    w.sim(json!([
        ["sign_with", "timestamp", ["intruder"]],
        ["expires", "timestamp", 7],
        ["commit"]
    ]));
    w.refresh().fails_with("timestamp");
    assert_eq!(w.version("timestamp"), Some(2));

    // 5.4.3: a lower version.
    w.sim(json!([["version", "timestamp", 1], ["commit"]]));
    w.refresh().fails_with("timestamp");
    assert_eq!(w.version("timestamp"), Some(2));

    // 5.4.4: expired.
    w.sim(json!([
        ["version", "timestamp", 5],
        ["expires", "timestamp", -1],
        ["commit"]
    ]));
    w.refresh().fails_with("xpired");
    assert_eq!(w.version("timestamp"), Some(2));
    assert_eq!(w.metadata_files(), top_level());
}

#[test]
fn step_5_4_an_expired_local_timestamp_is_replaced_and_the_clock_is_not_kept() {
    let Some(w) = world(json!([["expires", "timestamp", 7], ["commit"]])) else {
        return;
    };
    let (Some(in_10_days), Some(in_18_days)) = (faketime(10), faketime(18)) else {
        return;
    };
    let in_10_days: Vec<&str> = in_10_days.iter().map(String::as_str).collect();
    let in_18_days: Vec<&str> = in_18_days.iter().map(String::as_str).collect();
    w.init().ok();
    w.refresh().ok();
    // Ten days on, the timestamp (7 days) has expired: a freeze attack.
    w.refresh_with(&in_10_days).fails_with("xpired");
    // The repository publishes a timestamp valid for 21 days; 18 days on, the expired local
    // timestamp is replaced.
    w.sim(json!([
        ["expires", "timestamp", 21],
        ["add_target", "targets", "t", "t"],
        ["commit"]
    ]));
    w.refresh_with(&in_18_days).ok();
    assert_eq!(w.version("timestamp"), Some(3));
    assert_eq!(w.version("targets"), Some(2));
    // Back to the real clock: works (no latest known time was kept from the faked run).
    w.refresh().ok();
}

// ---- 5.5: snapshot ----

#[test]
fn step_5_5_snapshot_hash_rollback_and_expiry_are_refused() {
    let Some(w) = world(json!([])) else { return };
    w.init().ok();
    w.sim(json!([["add_target", "targets", "a", "a"], ["commit"]]));
    w.refresh().ok();
    assert_eq!(w.version("snapshot"), Some(2));

    // 5.5.2: bytes that do not match the hashes in timestamp.
    w.sim(json!([["expires", "snapshot", 30], ["commit"]]));
    let tampered = std::fs::read(w.repo().join("metadata/3.snapshot.json"))
        .unwrap()
        .iter()
        .map(|b| if *b == b'0' { b'1' } else { *b })
        .collect::<Vec<u8>>();
    w.server
        .inject("/metadata/3.snapshot.json", Fault::Replace(tampered), None);
    w.refresh().fails_with("snapshot");
    assert_eq!(w.version("snapshot"), Some(2));
    // The timestamp passed its checks before the snapshot failed: it is trusted (5.4.5).
    assert_eq!(w.version("timestamp"), Some(3));
    w.server.clear_faults();
    w.refresh().ok();
    assert_eq!(w.version("snapshot"), Some(3));

    // 5.5.5 (caught as early as 5.4.3.2): a lower snapshot version.
    w.sim(json!([["version", "snapshot", 1], ["commit"]]));
    w.refresh().fails_with("Snapshot version 1");
    assert_eq!(w.version("snapshot"), Some(3));

    // 5.5.5: targets listed at a lower version than the trusted snapshot lists.
    w.sim(json!([
        ["version", "targets", 1],
        ["version", "snapshot", 9],
        ["commit"]
    ]));
    w.refresh().fails_with("targets");
    assert_eq!(w.version("snapshot"), Some(3));

    // 5.5.6: expired.
    w.sim(json!([
        ["version", "targets", 3],
        ["expires", "snapshot", -1],
        ["commit"]
    ]));
    w.refresh().fails_with("xpired");
    assert_eq!(w.version("snapshot"), Some(3));
}

// ---- 5.6: targets ----

#[test]
fn step_5_6_targets_hash_signature_and_expiry_are_refused() {
    let Some(w) = world(json!([])) else { return };
    w.init().ok();
    w.refresh().ok();

    // 5.6.2: a targets file that does not match snapshot's hashes.
    w.sim(json!([["add_target", "targets", "a", "a"], ["commit"]]));
    w.server.inject(
        "/metadata/2.targets.json",
        Fault::Replace(b"{}".to_vec()),
        None,
    );
    w.refresh().fails_with("targets");
    assert_eq!(w.version("targets"), Some(1));
    w.server.clear_faults();

    // 5.6.3: signed by a key the root does not list.
    w.sim(json!([
        ["sign_with", "targets", ["intruder"]],
        ["add_target", "targets", "b", "b"],
        ["commit"]
    ]));
    w.refresh().fails_with("targets");
    assert_eq!(w.version("targets"), Some(1));

    // 5.6.5: expired.
    w.sim(json!([["expires", "targets", -1], ["commit"]]));
    w.refresh().fails_with("xpired");
    assert_eq!(w.version("targets"), Some(1));

    w.sim(json!([["expires", "targets", 30], ["commit"]]));
    w.refresh().ok();
    assert_eq!(w.version("targets"), Some(5));
}

#[test]
fn step_5_6_7_delegations_are_searched_in_order_with_terminating_roles_and_patterns() {
    let Some(w) = world(json!([
        ["delegate", "targets", "first", {"paths": ["files/*"]}],
        ["delegate", "targets", "second", {"paths": ["files/*"]}],
        ["delegate", "targets", "third", {"paths": ["*"]}],
        ["delegate", "targets", "stop", {"paths": ["term/*"], "terminating": true}],
        ["delegate", "targets", "after-stop", {"paths": ["term/*", "other/*"]}],
        ["delegate", "targets", "hashed", {"path_hash_prefixes": []}],
        ["add_target", "first", "files/only-first.txt", "first"],
        ["add_target", "second", "files/x.txt", "from second"],
        ["add_target", "third", "files/x.txt", "from third"],
        ["add_target", "third", "top.txt", "top from third"],
        ["add_target", "after-stop", "term/y.txt", "after a terminating role"],
        ["add_target", "after-stop", "other/z.txt", "not below the terminating role"],
        ["commit"]
    ])) else {
        return;
    };
    w.init().ok();
    w.refresh().ok();
    // 5.6.7.1: every delegated role (tough loads them all) is in the metadata directory.
    let mut expected = top_level();
    expected.extend(
        [
            "after-stop.json",
            "first.json",
            "hashed.json",
            "second.json",
            "stop.json",
            "third.json",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    expected.sort();
    assert_eq!(w.metadata_files(), expected);

    // Ordered search: "first" matches the pattern but lacks the target, "second" has it.
    w.download(&["files/x.txt"]).ok();
    // A pattern "files/*" does not cover "top.txt"; "third" ("*") does.
    w.download(&["top.txt", "files/only-first.txt"]).ok();
    let got = w.targets();
    assert!(
        got.contains(&("files%2Fx.txt".into(), "from second".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("top.txt".into(), "top from third".into())),
        "{got:?}"
    );

    // A terminating role that does not list the target ends the search (5.6.7.2.1).
    w.download(&["term/y.txt"])
        .fails_with("Failed to find the target 'term/y.txt'");
    // Outside the terminating role's paths, the later role is consulted.
    w.download(&["other/z.txt"]).ok();
}

#[test]
fn step_5_6_7_path_hash_prefixes_select_the_role() {
    use sha2::Digest;
    let name = "bins/file.txt";
    let prefix = hex::encode(sha2::Sha256::digest(name.as_bytes()))[..2].to_string();
    let other = if prefix.starts_with('0') { "ff" } else { "00" };
    let Some(w) = world(json!([
        ["delegate", "targets", "wrong-bin", {"path_hash_prefixes": [other]}],
        ["delegate", "targets", "right-bin", {"path_hash_prefixes": [prefix]}],
        ["add_target", "wrong-bin", name, "from the wrong bin"],
        ["add_target", "right-bin", name, "from the right bin"],
        ["commit"]
    ])) else {
        return;
    };
    w.init().ok();
    w.download(&[name]).ok();
    assert_eq!(
        w.targets(),
        [(
            "bins%2Ffile.txt".to_string(),
            "from the right bin".to_string()
        )]
    );
}

// ---- 5.7: the target itself ----

#[test]
fn step_5_7_target_hash_and_length_mismatches_are_refused() {
    let Some(w) = world(json!([
        ["add_target", "targets", "same-length.txt", "genuine"],
        ["add_target", "targets", "longer.txt", "genuine"],
        ["add_target", "targets", "shorter.txt", "genuine"],
        ["commit"]
    ])) else {
        return;
    };
    w.init().ok();
    w.sim(json!([
        ["corrupt_target", "same-length.txt", "GENUINE"],
        [
            "corrupt_target",
            "longer.txt",
            "genuine plus an endless tail"
        ],
        ["corrupt_target", "shorter.txt", "gen"]
    ]));
    for name in ["same-length.txt", "longer.txt", "shorter.txt"] {
        w.download(&[name]).fails_with(name);
    }
    // Nothing that failed is kept, not even a temporary file.
    assert!(w.targets().is_empty(), "{:?}", w.targets());
}

// ---- 7: consistent snapshots ----

#[test]
fn step_7_consistent_snapshot_file_names_are_used_when_the_root_says_so() {
    for consistent in [true, false] {
        let Some(w) = World::new(
            json!({"consistent_snapshot": consistent}),
            json!([["add_target", "targets", "file.txt", "data"], ["commit"]]),
        ) else {
            return;
        };
        w.init().ok();
        w.download(&["file.txt"]).ok();
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(b"data"))
        };
        let expected: Vec<String> = if consistent {
            vec![
                "/metadata/2.root.json".into(),
                "/metadata/timestamp.json".into(),
                "/metadata/2.snapshot.json".into(),
                "/metadata/2.targets.json".into(),
                format!("/targets/{sha}.file.txt"),
            ]
        } else {
            vec![
                "/metadata/2.root.json".into(),
                "/metadata/timestamp.json".into(),
                "/metadata/snapshot.json".into(),
                "/metadata/targets.json".into(),
                "/targets/file.txt".into(),
            ]
        };
        assert_eq!(w.requested(), expected, "consistent_snapshot {consistent}");
        assert_eq!(w.targets(), [("file.txt".to_string(), "data".to_string())]);
        assert_eq!(w.metadata_files(), top_level());
    }
}

#[test]
fn step_5_6_7_wildcards_do_not_match_the_path_separator() {
    let Some(w) = world(json!([
        ["delegate", "targets", "loose", {"paths": ["*.txt"]}],
        ["delegate", "targets", "dirs", {"paths": ["dir/*"]}],
        ["add_target", "loose", "top.txt", "top"],
        ["add_target", "loose", "other/a.txt", "not delegated to loose"],
        ["add_target", "loose", "dir/b.txt", "not delegated to loose"],
        ["add_target", "dirs", "dir/b.txt", "from dirs"],
        ["commit"]
    ])) else {
        return;
    };
    w.init().ok();
    w.download(&["top.txt"]).ok();
    // "*.txt" does not cover "other/a.txt": no role may sign it.
    w.download(&["other/a.txt"])
        .fails_with("Failed to find the target 'other/a.txt'");
    // The specification's search takes "dir/b.txt" from "dirs"; tough's would take it from
    // "loose" (its `*` matches `/`), so the client refuses rather than check it against the
    // wrong role (docs/tuf-conformance.md).
    w.download(&["dir/b.txt"])
        .fails_with("not the one the specification's search selects");
    assert_eq!(w.targets(), [("top.txt".to_string(), "top".to_string())]);
}

#[test]
fn tough_departure_an_expired_delegated_role_fails_every_refresh() {
    // The specification would only refuse targets below "stale"; tough loads every delegated
    // role at refresh, so the whole refresh fails (docs/tuf-conformance.md, departure 1).
    let Some(w) = world(json!([
        ["delegate", "targets", "stale", {"paths": ["stale/*"]}],
        ["add_target", "targets", "top.txt", "top"],
        ["commit"]
    ])) else {
        return;
    };
    w.init().ok();
    w.refresh().ok();
    w.sim(json!([["expires", "stale", -1], ["commit"]]));
    w.refresh().fails_with("xpired");
    w.download(&["top.txt"]).fails_with("xpired");
    assert!(w.targets().is_empty());
}

#[test]
fn step_7_hash_prefixed_targets_below_a_directory_use_the_specifications_name() {
    let Some(w) = world(json!([
        ["add_target", "targets", "dir/sub/b.txt", "b"],
        ["commit"]
    ])) else {
        return;
    };
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"b"))
    };
    let spec = format!("/targets/dir/sub/{sha}.b.txt");
    let toughs = format!("/targets/{sha}.dir/sub/b.txt");
    w.init().ok();
    w.download(&["dir/sub/b.txt"]).ok();
    assert!(w.requested().contains(&spec), "{:?}", w.requested());
    assert!(!w.requested().contains(&toughs), "{:?}", w.requested());
    // A repository laid out as tough-based tools write it still works.
    std::fs::remove_file(w.repo().join(spec.trim_start_matches('/'))).unwrap();
    std::fs::remove_dir_all(w.target_dir()).unwrap();
    w.server.clear_requests();
    w.download(&["dir/sub/b.txt"]).ok();
    assert!(w.requested().contains(&toughs), "{:?}", w.requested());
    assert_eq!(
        w.targets(),
        [("dir%2Fsub%2Fb.txt".to_string(), "b".to_string())]
    );
}

#[test]
fn tough_departure_a_role_listing_a_target_outside_its_paths_fails_every_refresh() {
    // The specification would only ignore that entry (no search reaches it); tough checks
    // every listed target at load and refuses the repository (docs/tuf-conformance.md).
    let Some(w) = world(json!([
        ["delegate", "targets", "dirs", {"paths": ["dir/*"]}],
        ["add_target", "targets", "top.txt", "top"],
        ["add_target", "dirs", "dir/a.txt", "a"],
        ["commit"]
    ])) else {
        return;
    };
    w.init().ok();
    w.download(&["dir/a.txt"]).ok();
    w.sim(json!([
        ["add_target", "dirs", "elsewhere.txt", "outside dir/*"],
        ["commit"]
    ]));
    // tough's message does not name the target or the role.
    w.download(&["top.txt"])
        .fails_with("Failed to refresh the metadata")
        .fails_with("Invalid file permissions");
    assert_eq!(w.targets(), [("dir%2Fa.txt".to_string(), "a".to_string())]);
}

//! `repo-tool refresh --timestamp-only`: the daily job signs a new `timestamp.json` with the
//! timestamp key alone and changes nothing else; what it refuses is one line and changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use std::path::Path;

const META: &str = "repo/demo/x86_64";

/// The walkthrough's one timestamp key, as repo-tool arguments.
const TIMESTAMP_KEY: [&str; 2] = ["--key", "keys/timestamp.pem"];

fn timestamp_only(rest: &[&'static str]) -> Vec<&'static str> {
    let mut args = on_repo(&["refresh"], &["--timestamp-only"]);
    args.extend(rest);
    args
}

/// The version and expiry of the timestamp a client loads (expiry enforced), and the snapshot
/// meta it names.
fn loaded_timestamp(dir: &Path) -> (u64, Timestamp, String) {
    let repo = load_repo(dir);
    let signed = &repo.timestamp().signed;
    let meta = serde_json::to_string(&signed.meta["snapshot.json"]).unwrap();
    (signed.version.get(), signed.expires, meta)
}

#[test]
fn a_timestamp_only_refresh_needs_only_the_timestamp_key_and_changes_only_timestamp_json() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");

    // A full refresh still needs the targets and snapshot key, and says so as before.
    let line = refused(
        dir,
        &on_repo(&["refresh"], &["--key", "keys/timestamp.pem"]),
        "",
    );
    assert_eq!(
        line,
        "Threshold not met for role 'targets' in 1.root.json (keys given: 1): \
         0 valid signature(s) of 1 required"
    );

    let (version, expires, meta) = loaded_timestamp(dir);
    let snapshot_version = load_repo(dir).snapshot().signed.version;
    let before = snapshot(dir);
    let out = ok(
        dir,
        &timestamp_only(&[
            "--key",
            "keys/timestamp.pem",
            "--timestamp-expires",
            "10 days",
        ]),
    );
    let after = snapshot(dir);

    let (new_version, new_expires, new_meta) = loaded_timestamp(dir);
    assert_eq!(
        out,
        format!("timestamp version {new_version}, expires {new_expires}\n")
    );
    assert!(new_version > version, "{new_version} <= {version}");
    assert!(new_expires > expires, "{new_expires} <= {expires}");
    let ten_days = new_expires.duration_since(Timestamp::now());
    assert!(
        ten_days > SignedDuration::from_hours(24 * 10 - 1)
            && ten_days <= SignedDuration::from_hours(24 * 10),
        "{ten_days:?}"
    );
    assert_eq!(new_meta, meta, "the timestamp names another snapshot");
    assert!(new_meta.contains(&format!("\"version\":{snapshot_version}")));

    // timestamp.json changed and nothing else did; it has the mode of the other metadata.
    let timestamp = dir.join(META).join("timestamp.json");
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &before {
        if *path == timestamp {
            assert!(after[path] != *bytes, "timestamp.json is unchanged");
        } else {
            assert!(after[path] == *bytes, "{path:?} changed");
        }
    }
    let snapshot_file = dir
        .join(META)
        .join(format!("{snapshot_version}.snapshot.json"));
    assert_eq!(mode(&timestamp), mode(&snapshot_file));
    validate_ok(dir);

    // Again at once: the version still rises. A full refresh afterwards signs above it.
    ok(dir, &timestamp_only(&TIMESTAMP_KEY));
    let (again, _, _) = loaded_timestamp(dir);
    assert!(again > new_version, "{again} <= {new_version}");
    ok(dir, &on_repo(&["refresh"], &SIGN));
    assert!(loaded_timestamp(dir).0 > again);
    validate_ok(dir);
}

#[test]
fn a_timestamp_only_refresh_takes_timestamp_keys_only_and_enough_of_them() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // Timestamp needs two keys: keys/timestamp.pem and keys/timestamp-2.pem.
    keys_and_root(dir, "ecdsa-p256");
    second_timestamp_key(dir);
    ok(dir, &["key", "generate", "--out", "keys/stranger.pem"]);
    sign_root(dir);
    fake_images(dir, "1.0.0");
    let mut extra = vec!["--root", "root.json", "--no-waves"];
    extra.extend(SIGN);
    extra.extend(["--key", "keys/timestamp-2.pem"]);
    ok(dir, &strs(&publish_args("1.0.0", &extra)));

    let line = refused(dir, &timestamp_only(&TIMESTAMP_KEY), "");
    assert_eq!(
        line,
        "Threshold not met for role 'timestamp' in 1.root.json (keys given: 1): \
         1 valid signature(s) of 2 required"
    );
    // The same key twice is still one signature.
    refused(
        dir,
        &timestamp_only(&["--key", "keys/timestamp.pem", "--key", "keys/timestamp.pem"]),
        "Threshold not met for role 'timestamp' in 1.root.json (keys given: 2): \
         1 valid signature(s) of 2 required",
    );
    for other in ["keys/publish.pem", "keys/stranger.pem", "keys/root-1.pem"] {
        let line = refused(
            dir,
            &timestamp_only(&[
                "--key",
                "keys/timestamp.pem",
                "--key",
                "keys/timestamp-2.pem",
                "--key",
                other,
            ]),
            &format!("Failed to sign timestamp.json with key '{other}' (id "),
        );
        assert!(
            line.ends_with("): it is not a timestamp key of 1.root.json"),
            "{line}"
        );
    }
    refused(
        dir,
        &timestamp_only(&["--key", "keys/missing.pem"]),
        "Failed to read 'keys/missing.pem'",
    );

    let (version, _, _) = loaded_timestamp(dir);
    ok(
        dir,
        &timestamp_only(&[
            "--key",
            "keys/timestamp.pem",
            "--key",
            "keys/timestamp-2.pem",
        ]),
    );
    let repo = load_repo(dir);
    assert!(repo.timestamp().signed.version.get() > version);
    assert_eq!(repo.timestamp().signatures.len(), 2);
    validate_ok(dir);
}

#[test]
fn a_timestamp_only_refresh_never_outlives_snapshot_or_targets() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");

    for (role, flag) in [
        ("snapshot", "--snapshot-expires"),
        ("targets", "--targets-expires"),
    ] {
        let mut full = SIGN.to_vec();
        full.extend([flag, "3 days"]);
        ok(dir, &on_repo(&["refresh"], &full));
        let repo = load_repo(dir);
        let role_expires = match role {
            "snapshot" => repo.snapshot().signed.expires,
            _ => repo.targets().signed.expires,
        };
        // The default week is longer than the role has left.
        let line = refused(
            dir,
            &timestamp_only(&TIMESTAMP_KEY),
            &format!(
                "Failed to refresh '{META}/timestamp.json' alone: {role} expires {role_expires}, \
                 before the new timestamp would ("
            ),
        );
        assert!(line.ends_with("); run a full refresh"), "{line}");
        // A timestamp that expires no later than the role is fine.
        let mut shorter = TIMESTAMP_KEY.to_vec();
        shorter.extend(["--timestamp-expires", "2 days"]);
        ok(dir, &timestamp_only(&shorter));
        validate_ok(dir);
    }
    // After a full refresh with the default two weeks, the default week fits again.
    ok(dir, &on_repo(&["refresh"], &SIGN));
    ok(dir, &timestamp_only(&TIMESTAMP_KEY));
    validate_ok(dir);
}

#[test]
fn a_timestamp_only_refresh_refuses_a_version_that_cannot_rise_and_a_changed_snapshot() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    let meta = dir.join(META);

    // A snapshot file that no longer matches the length and hashes the timestamp names.
    let snapshot_version = load_repo(dir).snapshot().signed.version;
    let snapshot_file = meta.join(format!("{snapshot_version}.snapshot.json"));
    let original = std::fs::read(&snapshot_file).unwrap();
    std::fs::write(&snapshot_file, [&original[..], b" "].concat()).unwrap();
    let line = refused(
        dir,
        &timestamp_only(&TIMESTAMP_KEY),
        "Failed to load repository 'file://",
    );
    assert!(line.contains("snapshot.json"), "{line}");
    std::fs::write(&snapshot_file, original).unwrap();

    // A timestamp already at the highest version (signed here as repo-tool would).
    let root: tough::schema::Signed<tough::schema::Root> =
        serde_json::from_slice(&std::fs::read(meta.join("1.root.json")).unwrap()).unwrap();
    let current: tough::schema::Signed<tough::schema::Timestamp> =
        serde_json::from_slice(&std::fs::read(meta.join("timestamp.json")).unwrap()).unwrap();
    let mut highest = current.signed.clone();
    highest.version = std::num::NonZeroU64::MAX;
    let keys: Vec<Box<dyn tough::key_source::KeySource>> =
        vec![Box::new(repo_tools::keys::PemKeySource {
            path: dir.join("keys/timestamp.pem"),
        })];
    let signed = block_on(tough::editor::signed::SignedRole::new(
        highest,
        &tough::schema::KeyHolder::Root(root.signed),
        &keys,
        &aws_lc_rs::rand::SystemRandom::new(),
    ))
    .unwrap();
    std::fs::write(meta.join("timestamp.json"), signed.buffer()).unwrap();
    validate_ok(dir);
    let line = refused(
        dir,
        &timestamp_only(&TIMESTAMP_KEY),
        "Failed to raise the version of '",
    );
    assert!(
        line.ends_with(&format!(
            "timestamp.json': it is already {}, the highest there is",
            u64::MAX
        )),
        "{line}"
    );
}

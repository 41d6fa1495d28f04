//! What repo-tool refuses: each refusal is one line on stderr, exit 1, and nothing changed on
//! disk. And what it changes on a published repository (pull a release, pause its waves) stays
//! valid for a client, while a concurrent reader never sees a half-written publish.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use update_metadata::{SEED_COUNT, Seed, Waves};

fn ready_seeds(waves: &Waves, t: Timestamp) -> usize {
    (0..SEED_COUNT)
        .map(|s| Seed::new(u64::from(s)).unwrap())
        .filter(|s| waves.is_ready(*s, t))
        .count()
}

#[test]
fn bad_keys_are_refused_before_anything_is_written() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    fake_images(dir, "1.2.0");
    ok(dir, &["key", "generate", "--out", "keys/stranger.pem"]);

    let missing = publish_args(
        "1.2.0",
        &["--key", "keys/publish.pem", "--key", "keys/x.pem"],
    );
    refused(dir, &strs(&missing), "Failed to read 'keys/x.pem'");

    let stranger = publish_args(
        "1.2.0",
        &[
            "--key",
            "keys/publish.pem",
            "--key",
            "keys/timestamp.pem",
            "--key",
            "keys/stranger.pem",
        ],
    );
    let line = refused(dir, &strs(&stranger), "Key 'keys/stranger.pem' (id ");
    assert!(line.ends_with("is not in root.json for any role"), "{line}");

    // The same checks guard changes to a published release, refresh and rotation.
    refused(
        dir,
        &on_repo(
            &["release", "pull"],
            &["--version", "1.1.0", "--key", "keys/publish.pem"],
        ),
        "Threshold not met for role 'timestamp'",
    );
    refused(
        dir,
        &on_repo(
            &["refresh"],
            &["--key", "keys/publish.pem", "--key", "keys/stranger.pem"],
        ),
        "Key 'keys/stranger.pem' (id ",
    );
    validate_ok(dir);
}

/// Keys, a signed root whose timestamp role takes two keys of two (`keys/timestamp.pem` and
/// `keys/timestamp-2.pem`), and images for 1.0.0; nothing published yet.
fn two_timestamp_keys(dir: &Path) {
    keys_and_root(dir, "ed25519");
    fake_images(dir, "1.0.0");
    second_timestamp_key(dir);
    sign_root(dir);
}

#[test]
fn a_threshold_not_met_is_refused_before_the_repository_is_created() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_timestamp_keys(dir);
    let mut extra = vec!["--root", "root.json", "--no-waves"];
    extra.extend(SIGN);
    let line = refused(
        dir,
        &strs(&publish_args("1.0.0", &extra)),
        "Threshold not met for role 'timestamp'",
    );
    assert!(
        line.contains("1 valid signature(s) of 2 required"),
        "{line}"
    );
    assert!(!dir.join("repo/demo/x86_64/1.root.json").exists());

    extra.extend(["--key", "keys/timestamp-2.pem"]);
    // The first release has nothing to migrate from.
    std::fs::write(dir.join("add-motd.json"), b"{\"operations\": []}\n").unwrap();
    let mut with_migration = extra.clone();
    with_migration.extend(["--migration", "add-motd.json"]);
    refused(
        dir,
        &strs(&publish_args("1.0.0", &with_migration)),
        "Failed to publish 1.0.0: migrations were given but there is no earlier version",
    );
    assert!(!dir.join("repo/demo/x86_64/1.root.json").exists());

    ok(dir, &strs(&publish_args("1.0.0", &extra)));
    validate_ok(dir);
}

#[test]
fn one_key_given_twice_counts_once_toward_a_threshold() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_timestamp_keys(dir);
    let mut extra = vec!["--root", "root.json", "--no-waves"];
    extra.extend(SIGN);
    extra.extend(["--key", "keys/timestamp.pem"]);
    let line = refused(
        dir,
        &strs(&publish_args("1.0.0", &extra)),
        "Threshold not met for role 'timestamp'",
    );
    assert!(
        line.contains("1 valid signature(s) of 2 required"),
        "{line}"
    );
    assert!(!dir.join("repo/demo/x86_64/1.root.json").exists());

    let twice = ["--key", "keys/publish.pem", "--key", "keys/publish.pem"];
    let mut both = twice.to_vec();
    both.extend([
        "--key",
        "keys/timestamp.pem",
        "--key",
        "keys/timestamp-2.pem",
    ]);
    let mut first = vec!["--root", "root.json", "--no-waves"];
    first.extend(&both);
    ok(dir, &strs(&publish_args("1.0.0", &first)));

    let mut again = twice.to_vec();
    again.extend([
        "--key",
        "keys/timestamp-2.pem",
        "--key",
        "keys/timestamp-2.pem",
    ]);
    let line = refused(
        dir,
        &on_repo(&["refresh"], &again),
        "Threshold not met for role 'timestamp'",
    );
    assert!(
        line.contains("1 valid signature(s) of 2 required"),
        "{line}"
    );
    ok(dir, &on_repo(&["refresh"], &both));
    validate_ok(dir);
}

#[test]
fn bad_releases_are_refused_and_change_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");

    let again = publish_args("1.1.0", &SIGN);
    refused(
        dir,
        &strs(&again),
        "Version 1.1.0 of demo/x86_64 is already in manifest.json",
    );

    fake_images(dir, "1.2.0");
    std::fs::remove_file(dir.join("images/1.2.0/root.ext4.lz4")).unwrap();
    let line = refused(
        dir,
        &strs(&publish_args("1.2.0", &SIGN)),
        "Failed to publish: root image 'images/1.2.0/root.ext4.lz4' does not exist",
    );
    assert_eq!(
        line,
        "Failed to publish: root image 'images/1.2.0/root.ext4.lz4' does not exist"
    );

    // A wave policy whose second wave reaches less of the fleet than the first.
    std::fs::write(
        dir.join("bad-waves.toml"),
        "[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 50\n\
         [[waves]]\nstart_after = '1 day'\nfleet_percentage = 20\n",
    )
    .unwrap();
    fake_images(dir, "1.2.0");
    let mut extra = vec!["--wave-policy", "bad-waves.toml"];
    extra.extend(SIGN);
    let line = refused(dir, &strs(&publish_args("1.2.0", &extra)), "Failed to ");
    assert!(line.contains("bad-waves.toml"), "{line}");
    assert!(line.contains("waves[1].fleet_percentage"), "{line}");
    // And one whose first wave has no start.
    std::fs::write(
        dir.join("bad-waves.toml"),
        "[[waves]]\nfleet_percentage = 50\n",
    )
    .unwrap();
    let line = refused(dir, &strs(&publish_args("1.2.0", &extra)), "Failed to ");
    assert!(line.contains("waves[0].start_after"), "{line}");

    let line = refused(
        dir,
        &on_repo(
            &["release", "pull"],
            &["--version", "9.9.9", "--key", SIGN[1], "--key", SIGN[3]],
        ),
        "Version 9.9.9 of demo/x86_64 is not in manifest.json",
    );
    assert!(!line.contains('\n'));
    validate_ok(dir);
}

#[test]
fn a_new_root_signed_only_by_new_keys_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    ok(dir, &["key", "generate", "--out", "keys/root-3.pem"]);
    std::fs::copy(
        dir.join("repo/demo/x86_64/1.root.json"),
        dir.join("root-2.json"),
    )
    .unwrap();
    let old_ids = [
        ok(dir, &["key", "id", "keys/root-1.pem"]),
        ok(dir, &["key", "id", "keys/root-2.pem"]),
    ];
    ok(dir, &["root", "set-version", "root-2.json", "2"]);
    ok(
        dir,
        &[
            "root",
            "add-key",
            "root-2.json",
            "--key",
            "keys/root-3.pem",
            "--role",
            "root",
        ],
    );
    for id in &old_ids {
        ok(
            dir,
            &["root", "remove-key", "root-2.json", "--key-id", id.trim()],
        );
    }
    ok(dir, &["root", "set-threshold", "root-2.json", "root", "1"]);
    // Signing without --cross-sign meets the new root's own threshold...
    ok(
        dir,
        &["root", "sign", "root-2.json", "--key", "keys/root-3.pem"],
    );
    // ...but not the previous root's, so the rotation is refused and nothing is written.
    let mut args = on_repo(&["root", "rotate"], &["--new-root", "root-2.json"]);
    args.extend(SIGN);
    let line = refused(
        dir,
        &args,
        "Threshold not met for role 'root' in the previous root",
    );
    assert!(
        line.contains("0 valid signature(s) of 2 required"),
        "{line}"
    );
    assert!(!dir.join("repo/demo/x86_64/2.root.json").exists());
    validate_ok(dir);
}

#[test]
fn validate_names_a_corrupted_target_and_expired_metadata() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    validate_ok(dir);
    let validate = on_repo(&["validate"], &["--trusted-root", "root.json"]);

    let corrupted = "demo-x86_64-1.1.0-root.verity.lz4";
    let path = target_file(dir, corrupted);
    let original = std::fs::read(&path).unwrap();
    flip_byte(&path, 50);
    let line = refused(dir, &validate, "Repository '");
    assert!(line.contains("has 1 problem(s)"), "{line}");
    assert!(line.contains(corrupted), "{line}");
    std::fs::write(&path, original).unwrap();
    validate_ok(dir);

    // Publish with a timestamp that expired long ago: tough signs it, a client refuses it.
    fake_images(dir, "1.2.0");
    let mut extra = SIGN.to_vec();
    extra.extend(["--timestamp-expires", "2020-01-01T00:00:00Z"]);
    ok(dir, &strs(&publish_args("1.2.0", &extra)));
    let line = refused(dir, &validate, "Repository '");
    assert!(line.contains("timestamp metadata is expired"), "{line}");
    refresh(dir);
    validate_ok(dir);
}

fn refresh(dir: &Path) {
    ok(dir, &on_repo(&["refresh"], &SIGN));
}

#[test]
fn check_expirations_names_each_role_and_date() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    fn check(within: &str) -> Vec<&str> {
        on_repo(&["check-expirations"], &["--within", within])
    }
    let out = ok(dir, &check("3 days"));
    assert_eq!(out.lines().count(), 4, "{out}");

    let repo = load_repo(dir);
    let line = refused(dir, &check("30 days"), "role 'timestamp' expires ");
    let timestamp = repo.timestamp().signed.expires;
    assert!(
        line.contains(&format!("role 'timestamp' expires {timestamp}")),
        "{line}"
    );
    // The default week for timestamp, two weeks for snapshot and targets, and not root's year.
    assert!(line.contains("role 'snapshot' expires "), "{line}");
    assert!(line.contains("role 'targets' expires "), "{line}");
    assert!(!line.contains("role 'root'"), "{line}");
    let now = Timestamp::now();
    let week = timestamp.duration_since(now);
    assert!(
        week > SignedDuration::from_hours(24 * 7 - 1) && week <= SignedDuration::from_hours(24 * 7),
        "{week:?}"
    );
}

#[test]
fn check_expirations_can_watch_the_root_alone_with_its_own_window() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    let check = |within: &'static str| {
        on_repo(
            &["check-expirations"],
            &["--role", "root", "--within", within],
        )
    };
    // Sixty days trips every online role, not the root's year.
    refused(
        dir,
        &on_repo(&["check-expirations"], &["--within", "60 days"]),
        "role 'timestamp' expires ",
    );
    let out = ok(dir, &check("60 days"));
    let root = load_repo(dir).root().signed.expires;
    assert_eq!(out.trim_end(), format!("root      expires {root}"));
    let line = refused(dir, &check("400 days"), "role 'root' expires ");
    assert!(!line.contains("timestamp"), "{line}");
    // A role that does not exist is a usage error.
    let out = run(dir, &on_repo(&["check-expirations"], &["--role", "roots"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'roots' for '--role <ROLE>'"),
        "{stderr}"
    );
}

#[test]
fn pulling_a_release_lowers_max_version_and_stays_valid() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    let mut args = on_repo(&["release", "pull"], &["--version", "1.1.0"]);
    args.extend(SIGN);
    ok(dir, &args);
    validate_ok(dir);
    let manifest = read_manifest(dir);
    let updates: Vec<(String, String)> = manifest
        .updates()
        .iter()
        .map(|u| (u.version.to_string(), u.max_version.to_string()))
        .collect();
    assert_eq!(updates, [("1.0.0".to_string(), "1.0.0".to_string())]);
}

#[test]
fn pausing_waves_freezes_the_rollout_and_stays_valid() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // Waves counted from 30 hours ago: the 5 % wave is done, the 25 % wave under way.
    let start = Timestamp::now() - SignedDuration::from_hours(30);
    two_releases(dir, "ed25519", &start.to_string());
    validate_ok(dir);
    let ten_days = SignedDuration::from_hours(24 * 10);
    let waves = |dir: &Path| {
        read_manifest(dir)
            .update("demo", "x86_64", &"1.1.0".parse().unwrap())
            .unwrap()
            .waves
            .clone()
    };
    let before = waves(dir);
    let now = Timestamp::now();
    let ready = ready_seeds(&before, now);
    assert!(ready > 0 && ready < 2048, "{ready}");
    assert_eq!(ready_seeds(&before, now + ten_days), 2048);

    let mut args = on_repo(&["release", "waves"], &["--version", "1.1.0", "--pause"]);
    args.extend(SIGN);
    ok(dir, &args);
    validate_ok(dir);
    let paused = waves(dir);
    let now = Timestamp::now();
    let frozen = ready_seeds(&paused, now);
    assert!(
        frozen >= ready,
        "a pause took back seeds: {frozen} < {ready}"
    );
    assert!(frozen < 2048);
    assert_eq!(ready_seeds(&paused, now + ten_days), frozen);

    // Letting everyone in undoes the pause.
    let mut args = on_repo(&["release", "waves"], &["--version", "1.1.0", "--no-waves"]);
    args.extend(SIGN);
    ok(dir, &args);
    validate_ok(dir);
    assert_eq!(ready_seeds(&waves(dir), Timestamp::now()), 2048);
}

#[test]
fn a_reader_never_sees_a_half_written_publish() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_path_buf();
    two_releases(&dir, "ed25519", "now");
    let versions = ["1.2.0", "1.3.0", "1.4.0", "1.5.0"];
    for version in versions {
        fake_images(&dir, version);
    }

    let done = Arc::new(AtomicBool::new(false));
    let (started, first_load) = std::sync::mpsc::channel();
    let reader = {
        let (dir, done) = (dir.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let repo_dir = repo_tools::repo::RepoDir::new(dir.join("repo"), "demo", "x86_64");
            let root = dir.join("root.json");
            let mut loads = 0u32;
            let mut seen = std::collections::BTreeSet::new();
            let mut failures = Vec::new();
            block_on(async {
                loop {
                    // Read the flag before loading, so the last load sees the final state.
                    let last = done.load(Ordering::SeqCst);
                    match repo_tools::validate::validate_dir(&repo_dir, Some(&root)).await {
                        Ok(report) => {
                            seen.insert(report.updates);
                        }
                        Err(e) => failures.push(e.to_string()),
                    }
                    loads += 1;
                    if loads == 1 {
                        started.send(()).unwrap();
                    }
                    if last {
                        break;
                    }
                }
            });
            (loads, seen, failures)
        })
    };
    first_load.recv().unwrap();
    for version in versions {
        ok(&dir, &strs(&publish_args(version, &SIGN)));
    }
    done.store(true, Ordering::SeqCst);
    let (loads, seen, failures) = reader.join().unwrap();
    // Every load verified every target it was told about, from the two releases before the
    // publishes to the six after.
    assert!(
        failures.is_empty(),
        "{} of {loads} loads failed: {failures:?}",
        failures.len()
    );
    assert!(loads >= 2, "{loads}");
    assert_eq!(seen.first(), Some(&2), "{seen:?}");
    assert_eq!(seen.last(), Some(&6), "{seen:?}");
    eprintln!("{loads} consistent loads during 4 publishes, saw {seen:?} updates");
}

#[test]
fn a_variant_or_arch_that_is_not_a_plain_name_is_refused_by_every_verb() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    keys_and_root(dir, "ed25519");
    fake_images(dir, "1.0.0");
    let mut extra = vec!["--root", "root.json", "--no-waves"];
    extra.extend(SIGN);
    let publish = |variant: &str, arch: &str| publish_args_for(variant, arch, "1.0.0", &extra);
    for (variant, arch, flag, value) in [
        ("../escape", "x86_64", "--variant", "../escape"),
        ("", "x86_64", "--variant", ""),
        (".hidden", "x86_64", "--variant", ".hidden"),
        ("demo", "x86/64", "--arch", "x86/64"),
        ("demo", "..", "--arch", ".."),
        ("demo", "x86 64", "--arch", "x86 64"),
    ] {
        let line = refused(
            dir,
            &strs(&publish(variant, arch)),
            &format!("Failed to use {flag} '{value}': "),
        );
        assert!(line.contains("ASCII letters, digits"), "{line}");
    }
    assert!(!dir.join("escape").exists());
    assert!(!dir.join("repo").exists());

    // Every verb that takes them parses them the same way.
    ok(dir, &strs(&publish("demo", "x86_64")));
    let bad = ["--repo", "repo", "--variant", "../demo", "--arch", "x86_64"];
    for verb in [
        &["refresh"][..],
        &["validate"],
        &["check-expirations"],
        &["waves", "plot"],
        &["release", "pull", "--version", "1.0.0"],
        &["release", "set-max-version", "--max-version", "1.0.0"],
        &["release", "waves", "--version", "1.0.0", "--no-waves"],
        &["root", "rotate", "--new-root", "root.json"],
    ] {
        let mut args = verb.to_vec();
        args.extend(bad);
        if !["validate", "check-expirations", "waves"].contains(&verb[0]) {
            args.extend(SIGN);
        }
        refused(dir, &args, "Failed to use --variant '../demo': ");
    }
    validate_ok(dir);
}

#[test]
fn removing_a_key_the_root_does_not_hold_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    keys_and_root(dir, "ed25519");
    let unknown = "ab".repeat(32);
    let signed = std::fs::read_to_string(dir.join("root.json")).unwrap();
    for roles in [&[][..], &["--role", "targets"]] {
        let mut args = vec!["root", "remove-key", "root.json", "--key-id", &unknown];
        args.extend(roles);
        let line = refused(
            dir,
            &args,
            &format!("Failed to remove key id '{unknown}' from 'root.json': "),
        );
        assert!(line.contains("no key with that id"), "{line}");
    }
    // The signatures are still there: the root is as usable as before.
    assert_eq!(
        std::fs::read_to_string(dir.join("root.json")).unwrap(),
        signed
    );
    let shown = ok(dir, &["root", "show", "root.json"]);
    assert!(shown.contains("2 signature(s)"), "{shown}");
}

#[test]
fn images_that_are_not_whole_lz4_frames_are_refused_before_anything_is_written() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    let images = dir.join("images/1.2.0");
    let fresh = || fake_images(dir, "1.2.0");
    let publish = |extra: &[&str]| {
        let mut extra = extra.to_vec();
        extra.extend(SIGN);
        publish_args("1.2.0", &extra)
    };

    // A text file, with and without chunks.
    fresh();
    std::fs::write(images.join("boot.ext4.lz4"), "not an image\n".repeat(100)).unwrap();
    for extra in [&["--no-chunks"][..], &[]] {
        let line = refused(
            dir,
            &strs(&publish(extra)),
            "Failed to publish: boot image 'images/1.2.0/boot.ext4.lz4' is not an lz4 frame",
        );
        assert!(!line.contains("WrongMagicNumber"), "{line}");
    }
    // An empty file.
    fresh();
    std::fs::write(images.join("root.verity.lz4"), b"").unwrap();
    refused(
        dir,
        &strs(&publish(&[])),
        "Failed to publish: hash image 'images/1.2.0/root.verity.lz4' is not an lz4 frame: it is empty",
    );
    // Cut inside a block, and cut at a block boundary (its end mark missing): the frame decoder
    // alone would take the second for a whole image.
    for cut in [100, 4] {
        fresh();
        let path = images.join("root.ext4.lz4");
        let bytes = std::fs::read(&path).unwrap();
        let keep = if cut == 4 { bytes.len() - 4 } else { cut };
        std::fs::write(&path, &bytes[..keep]).unwrap();
        refused(
            dir,
            &strs(&publish(&["--no-chunks"])),
            "Failed to publish: root image 'images/1.2.0/root.ext4.lz4' is truncated: it ends inside an lz4 frame",
        );
    }
    // A damaged frame header, and bytes after the last frame.
    fresh();
    flip_byte(&images.join("root.ext4.lz4"), 4);
    refused(
        dir,
        &strs(&publish(&[])),
        "Failed to publish: root image 'images/1.2.0/root.ext4.lz4' is a corrupt lz4 frame: ",
    );
    fresh();
    let path = images.join("boot.ext4.lz4");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"trailing");
    std::fs::write(&path, bytes).unwrap();
    refused(
        dir,
        &strs(&publish(&[])),
        "Failed to publish: boot image 'images/1.2.0/boot.ext4.lz4' is a corrupt lz4 frame: ",
    );

    // A second frame: a node stops at the end of the first.
    fresh();
    let path = images.join("boot.ext4.lz4");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&bytes.clone());
    std::fs::write(&path, bytes).unwrap();
    let line = refused(
        dir,
        &strs(&publish(&[])),
        "Failed to publish: boot image 'images/1.2.0/boot.ext4.lz4' is a corrupt lz4 frame: ",
    );
    assert!(
        line.ends_with("more data follows the end of its lz4 frame"),
        "{line}"
    );

    fresh();
    ok(dir, &strs(&publish(&[])));
    validate_ok(dir);
}

#[test]
fn a_publish_refused_after_its_inputs_are_read_adds_no_targets() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    fake_images(dir, "1.2.0");
    // Names that pass every check on the inputs but not the manifest's: the boot image and
    // its chunks were copied into repo/targets/ before the root image's name was refused.
    std::fs::rename(
        dir.join("images/1.2.0/root.ext4.lz4"),
        dir.join("images/1.2.0/root..ext4.lz4"),
    )
    .unwrap();
    let mut args = publish_args("1.2.0", &SIGN);
    for arg in &mut args {
        if arg.ends_with("root.ext4.lz4") {
            *arg = "images/1.2.0/root..ext4.lz4".to_string();
        }
    }
    refused(dir, &strs(&args), "Failed to name image ");
    std::fs::rename(
        dir.join("images/1.2.0/root..ext4.lz4"),
        dir.join("images/1.2.0/root.ext4.lz4"),
    )
    .unwrap();
    // And a migration's, after all three images were copied.
    std::fs::write(
        dir.join("migrations/add..motd.json"),
        b"{\"operations\": []}\n",
    )
    .unwrap();
    let mut extra = vec!["--migration", "migrations/add..motd.json"];
    extra.extend(SIGN);
    refused(
        dir,
        &strs(&publish_args("1.2.0", &extra)),
        "Failed to name migration ",
    );
    ok(dir, &strs(&publish_args("1.2.0", &SIGN)));
    validate_ok(dir);
}

#[test]
fn a_declarative_migration_that_does_not_parse_is_refused_at_publish() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    fake_images(dir, "1.2.0");
    let lz4 = |bytes: &[u8]| {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut enc, bytes).unwrap();
        enc.finish().unwrap()
    };
    let unknown_field = b"{\"operations\": [], \"descripton\": \"typo\"}\n";
    std::fs::write(dir.join("migrations/typo.json"), unknown_field).unwrap();
    std::fs::write(dir.join("migrations/typo.json.lz4"), lz4(unknown_field)).unwrap();
    std::fs::write(
        dir.join("migrations/same.json"),
        b"{\"operations\": [{\"op\": \"replace\", \"key\": \"settings.motd\", \"new\": 1, \"old\": 1}]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("migrations/bad.json.lz4"),
        b"{\"operations\": []}\n",
    )
    .unwrap();
    for (file, starts, has) in [
        (
            "migrations/typo.json",
            "Failed to parse declarative migration 'migrations/typo.json': ",
            "unknown field `descripton`",
        ),
        (
            "migrations/typo.json.lz4",
            "Failed to parse declarative migration 'migrations/typo.json.lz4': ",
            "unknown field `descripton`",
        ),
        (
            "migrations/same.json",
            "Failed to validate declarative migration 'migrations/same.json': ",
            "operation 1",
        ),
        (
            "migrations/bad.json.lz4",
            "Failed to publish: migration 'migrations/bad.json.lz4' is not an lz4 frame",
            "",
        ),
    ] {
        // After a migration that is fine, so the refusal is not just of the first one.
        let mut extra = vec![
            "--migration",
            "migrations/add-motd.json",
            "--migration",
            file,
        ];
        extra.extend(SIGN);
        let line = refused(dir, &strs(&publish_args("1.2.0", &extra)), starts);
        assert!(line.contains(has), "{line}");
    }
    // An executable migration is the node's to run: its bytes are not read as a document.
    std::fs::write(dir.join("migrations/rename-ntp"), b"#!/bin/sh\nexit 0\n").unwrap();
    let mut extra = vec!["--migration", "migrations/rename-ntp"];
    extra.extend(SIGN);
    ok(dir, &strs(&publish_args("1.2.0", &extra)));
    validate_ok(dir);
}

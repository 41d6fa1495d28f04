//! Failures leave `current` untouched: a failing migration (forward and backward), a tampered
//! or missing migration target (refused before it runs).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// 1.0.0 -> 1.1.0 with one executable migration whose behaviour the test picks.
fn setup(forward: &str, backward: &str) -> (tempfile::TempDir, Node, std::path::PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("runs.log");
    let publisher = Publisher::new(work.path());
    publisher.publish("1.0.0", &[]);
    let exe = shell_migration(&work.path().join("m"), "fragile", &log, forward, backward);
    publisher.publish("1.1.0", &[exe]);
    let node = Node::new(work.path(), &publisher, "1.0.0");
    migrator::migrate(&node.options()).unwrap();
    seed_settings(&node.current());
    (work, node, log)
}

fn assert_one_line_failure(out: &std::process::Output, wants: &[&str]) -> String {
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    for want in wants {
        assert!(stderr.contains(want), "'{want}' missing from: {stderr}");
    }
    stderr
}

#[test]
fn a_failing_forward_migration_leaves_current_untouched_and_removes_its_output() {
    let (_work, node, log) = setup(
        "echo 'partial' > \"$dst/live/half-written\"\necho 'boom: settings.ntp is not a list' >&2\nexit 3",
        "",
    );
    let before_dir = node.current_dir();
    let before = live_files(&before_dir);
    let entries = root_entries(&node.datastore());
    node.boot("1.1.0");
    let out = node.run_binary(&[]);
    let stderr = assert_one_line_failure(
        &out,
        &[
            "migrate_v1.1.0_fragile.lz4",
            "forward",
            "boom: settings.ntp is not a list",
        ],
    );
    assert!(stderr.starts_with("Failed to run migration"), "{stderr}");
    assert_eq!(runs(&log), ["fragile forward"]);
    assert_eq!(node.current_dir(), before_dir);
    assert_eq!(live_files(&before_dir), before);
    assert_eq!(
        root_entries(&node.datastore()),
        entries,
        "the partial output must be gone"
    );
}

#[test]
fn a_failing_backward_migration_leaves_current_untouched_and_removes_its_output() {
    let (_work, node, log) = setup("", "echo 'cannot go back' >&2\nexit 1");
    node.boot("1.1.0");
    migrator::migrate(&node.options()).unwrap();
    migrator::confirm(&node.datastore()).unwrap();
    let before_dir = node.current_dir();
    let before = live_files(&before_dir);
    let entries = root_entries(&node.datastore());

    node.boot("1.0.0");
    let out = node.run_binary(&[]);
    assert_one_line_failure(&out, &["fragile", "backward", "cannot go back"]);
    assert_eq!(runs(&log), ["fragile forward", "fragile backward"]);
    assert_eq!(node.current_dir(), before_dir);
    assert_eq!(live_files(&before_dir), before);
    assert_eq!(root_entries(&node.datastore()), entries);
}

fn cached_target(node: &Node, suffix: &str) -> std::path::PathBuf {
    std::fs::read_dir(node.targets())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap()
}

#[test]
fn a_tampered_migration_is_refused_before_it_runs() {
    let (_work, node, log) = setup("", "");
    let target = cached_target(&node, "fragile.lz4");
    // Same length, different bytes: only the hash can tell.
    let mut bytes = std::fs::read(&target).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&target, bytes).unwrap();
    let before_dir = node.current_dir();
    let entries = root_entries(&node.datastore());

    node.boot("1.1.0");
    let out = node.run_binary(&[]);
    assert_one_line_failure(
        &out,
        &["Failed to read target 'migrate_v1.1.0_fragile.lz4'"],
    );
    assert!(runs(&log).is_empty(), "the tampered migration ran");
    assert_eq!(node.current_dir(), before_dir);
    assert_eq!(root_entries(&node.datastore()), entries);
}

#[test]
fn a_missing_migration_is_refused_before_anything_runs() {
    let (_work, node, log) = setup("", "");
    std::fs::remove_file(cached_target(&node, "fragile.lz4")).unwrap();
    let before_dir = node.current_dir();
    node.boot("1.1.0");
    let err = migrator::migrate(&node.options()).unwrap_err().to_string();
    assert!(err.contains("migrate_v1.1.0_fragile.lz4"), "{err}");
    assert!(runs(&log).is_empty());
    assert_eq!(node.current_dir(), before_dir);
}

#[test]
fn a_tampered_manifest_or_metadata_is_refused() {
    let (_work, node, log) = setup("", "");
    let metadata = node.sysroot.join(migrator::CACHE_METADATA);
    let targets_json = std::fs::read_dir(&metadata)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".targets.json"))
        .max()
        .unwrap();
    let text = std::fs::read_to_string(&targets_json).unwrap();
    std::fs::write(&targets_json, text.replace("fragile", "frAgile")).unwrap();
    node.boot("1.1.0");
    let err = migrator::migrate(&node.options()).unwrap_err().to_string();
    assert!(
        err.starts_with("Failed to load the cached repository"),
        "{err}"
    );
    assert!(runs(&log).is_empty());
}

#[test]
fn an_executable_that_exits_0_without_writing_live_fails_the_run() {
    let (_work, node, log) = setup(r#"rm -rf "$dst/live""#, "");
    let before_dir = node.current_dir();
    let before = live_files(&before_dir);
    let entries = root_entries(&node.datastore());
    node.boot("1.1.0");
    let out = node.run_binary(&[]);
    let stderr = assert_one_line_failure(&out, &[]);
    // The output directory's name ends in 16 random characters.
    let prefix = format!(
        "Failed to run migration 'migrate_v1.1.0_fragile.lz4' forward: it exited 0 but wrote \
         no '{}/v1.1.0_",
        node.datastore().display()
    );
    let random = stderr
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("/live' directory"))
        .unwrap_or_else(|| panic!("unexpected message: {stderr}"));
    assert!(
        random.len() == 16 && random.chars().all(|c| c.is_ascii_alphanumeric()),
        "{stderr}"
    );
    assert_eq!(runs(&log), ["fragile forward"]);
    assert_eq!(node.current_dir(), before_dir);
    assert_eq!(live_files(&before_dir), before);
    assert_eq!(root_entries(&node.datastore()), entries);
}

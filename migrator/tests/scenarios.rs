//! Whole runs against a published repository: first boot, the round trip
//! 1.0.0 -> 1.1.0 -> 1.2.0 -> 1.0.0, a fallback from an unconfirmed version, and the binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use migrator::{Key, Outcome};
use serde_json::json;

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

/// A node at 1.0.0 under `work` with the scenario published, and the log its executable
/// migrations append their runs to.
fn scenario_node(work: &std::path::Path) -> (std::path::PathBuf, Node) {
    let log = work.join("runs.log");
    let publisher = Publisher::new(work);
    publish_scenario(&publisher, work, &log);
    (log, Node::new(work, &publisher, "1.0.0"))
}

#[test]
fn round_trip_through_executable_and_declarative_migrations_restores_live_byte_for_byte() {
    let work = tempfile::tempdir().unwrap();
    let (log, node) = scenario_node(work.path());

    // First boot: an empty datastore at the booted version.
    let outcome = migrator::migrate(&node.options()).unwrap();
    assert_eq!(
        outcome,
        Outcome::Created {
            version: "1.0.0".parse().unwrap()
        }
    );
    seed_settings(&node.current());
    let original = live_files(&node.current_dir());

    node.boot("1.1.0");
    let outcome = migrator::migrate(&node.options()).unwrap();
    let Outcome::Migrated { migrations, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(migrations.len(), 2);
    let ds = node.current();
    assert_eq!(
        ds.get(&key("settings.exe-added")).unwrap(),
        Some(json!("yes"))
    );
    assert_eq!(ds.get(&key("settings.ntp.servers")).unwrap(), None);
    assert_eq!(
        ds.get(&key("settings.ntp.time-servers")).unwrap(),
        Some(json!(["a.example.com", "b.example.com"]))
    );
    assert_eq!(
        ds.get(&key("settings.motd")).unwrap(),
        Some(json!("Welcome to 1.1"))
    );
    assert!(
        !migrator::status(&node.datastore())
            .unwrap()
            .unwrap()
            .confirmed
    );
    migrator::confirm(&node.datastore()).unwrap();

    node.boot("1.2.0");
    migrator::migrate(&node.options()).unwrap();
    let ds = node.current();
    assert_eq!(ds.get(&key("settings.legacy-flag")).unwrap(), None);
    assert_eq!(
        ds.get(&key("settings.hostname")).unwrap(),
        Some(json!("managed"))
    );
    migrator::confirm(&node.datastore()).unwrap();
    // Pruned to current and previous.
    let status = migrator::status(&node.datastore()).unwrap().unwrap();
    assert_eq!(status.previous.as_ref().unwrap().0.to_string(), "1.1.0");
    let dirs: Vec<String> = root_entries(&node.datastore())
        .into_iter()
        .filter(|n| n.contains('_'))
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");

    // A deliberate rollback of a confirmed version runs every migration backward.
    node.boot("1.0.0");
    let outcome = migrator::migrate(&node.options()).unwrap();
    let Outcome::Migrated {
        direction,
        migrations,
        ..
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(*direction, migrator::Direction::Backward);
    assert_eq!(migrations.len(), 3);
    assert_eq!(live_files(&node.current_dir()), original);
    assert_eq!(
        runs(&log),
        ["add-exe-flag forward", "add-exe-flag backward"]
    );
}

#[test]
fn a_fallback_from_an_unconfirmed_version_flips_back_without_running_anything() {
    let work = tempfile::tempdir().unwrap();
    let (log, node) = scenario_node(work.path());
    migrator::migrate(&node.options()).unwrap();
    seed_settings(&node.current());
    let original_dir = node.current_dir();
    let original = live_files(&original_dir);

    node.boot("1.1.0");
    migrator::migrate(&node.options()).unwrap();
    assert_eq!(runs(&log), ["add-exe-flag forward"]);
    // The 1.1.0 boot is never marked successful; the bootloader falls back to 1.0.0.
    node.boot("1.0.0");
    let outcome = migrator::migrate(&node.options()).unwrap();
    assert_eq!(
        outcome,
        Outcome::FellBack {
            from: "1.1.0".parse().unwrap(),
            to: "1.0.0".parse().unwrap()
        }
    );
    assert_eq!(node.current_dir(), original_dir);
    assert_eq!(live_files(&original_dir), original);
    assert_eq!(
        runs(&log),
        ["add-exe-flag forward"],
        "no migration may run on a fallback"
    );
    let status = migrator::status(&node.datastore()).unwrap().unwrap();
    assert!(status.confirmed && status.previous.is_none());
    // Only the kept directory is left.
    let dirs: Vec<String> = root_entries(&node.datastore())
        .into_iter()
        .filter(|n| n.contains('_'))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");

    // Updating again works as the first time.
    node.boot("1.1.0");
    migrator::migrate(&node.options()).unwrap();
    assert_eq!(runs(&log), ["add-exe-flag forward", "add-exe-flag forward"]);
}

#[test]
fn the_binary_creates_migrates_confirms_and_reports() {
    let work = tempfile::tempdir().unwrap();
    let (_, node) = scenario_node(work.path());

    let out = node.run_binary(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created an empty datastore at 1.0.0"));
    seed_settings(&node.current());

    node.boot("1.1.0");
    let out = node.run_binary(&["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["outcome"], "migrated");
    assert_eq!(outcome["to"], "1.1.0");

    let out = node.run_binary(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["confirmed"], false);
    let out = node.run_binary(&["confirm"]);
    assert!(out.status.success());
    let out = node.run_binary(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("version 1.1.0 (confirmed), previous 1.0.0"),
        "{text}"
    );

    let out = node.run_binary(&[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("at 1.1.0 already"));

    // Usage errors exit 2; failures exit 1 with one line.
    assert_eq!(node.run_binary(&["--no-such-flag"]).status.code(), Some(2));
    let out = node.run_binary(&["--os-release", "/nonexistent/os-release"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("Failed to read '/nonexistent/os-release'"),
        "{stderr}"
    );
}

/// The executable gets absolute paths whatever the flags say: it runs in `/`, where a path
/// relative to the migrator's working directory names nothing.
#[test]
fn an_executable_migration_runs_with_a_relative_sysroot_or_datastore() {
    let work = tempfile::tempdir().unwrap();
    let (log, node) = scenario_node(work.path());
    assert_eq!(node.sysroot, work.path().join("node"));
    migrator::migrate(&node.options()).unwrap();
    seed_settings(&node.current());
    let succeeded = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    };

    node.boot("1.1.0");
    let out = node.run_binary_in(work.path(), &["--sysroot", "node"]);
    assert_eq!(
        succeeded(&out),
        "Migrated the datastore from 1.0.0 to 1.1.0 (2 migration(s) forward)"
    );
    assert_eq!(runs(&log), ["add-exe-flag forward"]);
    assert_eq!(
        node.current().get(&key("settings.exe-added")).unwrap(),
        Some(json!("yes"))
    );
    succeeded(&node.run_binary_in(work.path(), &["--sysroot", "node", "confirm"]));

    node.boot("1.0.0");
    let sysroot = node.sysroot.display().to_string();
    let out = node.run_binary_in(
        work.path(),
        &[
            "--sysroot",
            &sysroot,
            "--datastore",
            "node/var/lib/datastore",
        ],
    );
    assert_eq!(
        succeeded(&out),
        "Migrated the datastore from 1.1.0 to 1.0.0 (2 migration(s) backward)"
    );
    assert_eq!(
        runs(&log),
        ["add-exe-flag forward", "add-exe-flag backward"]
    );
    assert_eq!(
        node.current().get(&key("settings.exe-added")).unwrap(),
        None
    );
}

#[test]
fn a_rollback_restores_a_value_one_document_renamed_and_the_next_removed() {
    let work = tempfile::tempdir().unwrap();
    let publisher = Publisher::new(work.path());
    let src = work.path().join("migrations");
    publisher.publish("1.0.0", &[]);
    let rename = declarative_migration(
        &src,
        "a-rename.json",
        json!({"operations": [
            {"op": "rename", "from": "settings.ntp.servers", "to": "settings.ntp.pool"}
        ]}),
    );
    let remove = declarative_migration(
        &src,
        "b-remove.json",
        json!({"operations": [
            {"op": "remove", "key": "settings.ntp.pool", "default": ["fallback.example.com"]}
        ]}),
    );
    publisher.publish("1.1.0", &[rename, remove]);
    let node = Node::new(work.path(), &publisher, "1.0.0");
    migrator::migrate(&node.options()).unwrap();
    seed_settings(&node.current());
    let original = live_files(&node.current_dir());

    node.boot("1.1.0");
    migrator::migrate(&node.options()).unwrap();
    assert_eq!(node.current().get(&key("settings.ntp.pool")).unwrap(), None);
    migrator::confirm(&node.datastore()).unwrap();

    // Back to 1.0.0, whose directory is kept: the servers come back from it under their 1.0.0
    // name, not as the default, and not lost.
    node.boot("1.0.0");
    let outcome = migrator::migrate(&node.options()).unwrap();
    assert!(
        matches!(&outcome, Outcome::Migrated { migrations, .. } if migrations.len() == 2),
        "{outcome:?}"
    );
    assert_eq!(
        node.current().get(&key("settings.ntp.servers")).unwrap(),
        Some(json!(["a.example.com", "b.example.com"]))
    );
    assert_eq!(live_files(&node.current_dir()), original);
}

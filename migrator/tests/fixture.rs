//! The hand-written Bottlerocket datastore in tests/data/bottlerocket-layout/ reads back.
#![allow(clippy::unwrap_used)]

use migrator::{Datastore, Key, MetadataKey};
use serde_json::json;
use std::path::Path;

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bottlerocket-layout/datastore"
    ))
}

#[test]
fn a_bottlerocket_datastore_reads_back() {
    let status = migrator::status(fixture()).unwrap().unwrap();
    assert_eq!(status.version.to_string(), "1.15.0");
    assert!(
        status.confirmed,
        "a datastore without a state file is confirmed"
    );
    assert!(status.directory.ends_with("v1.15.0_Qm9ZcHJ0UnNhSnVk"));

    let ds = Datastore::open_current(fixture()).unwrap();
    let all = ds.list(None).unwrap();
    let names: Vec<String> = all.keys().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "services.ntp.restart-commands",
            "settings.host-containers.admin.enabled",
            "settings.kubernetes.node-labels.\"example.com/role\"",
            "settings.motd",
            "settings.ntp.time-servers",
        ]
    );
    let role = Key::new("settings.kubernetes.node-labels.\"example.com/role\"").unwrap();
    assert_eq!(ds.get(&role).unwrap(), Some(json!("web")));
    assert_eq!(
        ds.get_metadata(&role, &MetadataKey::new("setting-generator").unwrap())
            .unwrap(),
        Some(json!("pluto"))
    );
    let ntp = Key::new("settings.ntp").unwrap();
    assert_eq!(
        ds.get_metadata(&ntp, &MetadataKey::new("affected-services").unwrap())
            .unwrap(),
        Some(json!(["chronyd"]))
    );
    assert_eq!(ds.list_metadata(None).unwrap().len(), 2);
    assert_eq!(
        ds.to_value(Some(&Key::new("settings.ntp").unwrap()))
            .unwrap(),
        json!({"settings": {"ntp": {"time-servers": ["169.254.169.123", "2.pool.ntp.org"]}}})
    );
    let pending = ds.transaction("apply-1").unwrap().list().unwrap();
    assert_eq!(
        pending.get(&Key::new("settings.timezone").unwrap()),
        Some(&json!("UTC"))
    );
}

#[test]
fn confirming_a_copy_of_it_adds_the_state_file_and_keeps_everything() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("datastore");
    std::process::Command::new("cp")
        .arg("-a")
        .arg(fixture())
        .arg(&root)
        .status()
        .unwrap();
    let before = Datastore::open_current(&root).unwrap().list(None).unwrap();
    migrator::confirm(&root).unwrap();
    let state: migrator::state::State =
        serde_json::from_slice(&std::fs::read(root.join("migration-state.json")).unwrap()).unwrap();
    assert_eq!(state.current, "v1.15.0_Qm9ZcHJ0UnNhSnVk");
    assert!(state.confirmed && state.previous.is_none());
    assert_eq!(
        Datastore::open_current(&root).unwrap().list(None).unwrap(),
        before
    );
}

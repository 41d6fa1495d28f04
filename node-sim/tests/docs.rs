//! The examples of docs/operations.md are what the node writes and reads.

#![allow(clippy::unwrap_used)]

use node_sim::{BootRecord, Outcome};
use test_tools::{markdown_block, read_doc};

#[test]
fn the_documented_health_checks_parse() {
    let doc = read_doc("operations.md");
    let checks =
        node_sim::health::parse(&markdown_block(&doc, "health-checks.toml").unwrap(), "docs")
            .unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0].timeout_secs, 120);
}

#[test]
fn the_documented_records_parse() {
    let doc = read_doc("operations.md");
    let record: BootRecord =
        serde_json::from_str(&markdown_block(&doc, "last-boot.json").unwrap()).unwrap();
    assert_eq!(record.outcome, Outcome::HealthFailed);
    assert!(record.outcome.needs_reboot());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(node_sim::record::FAILED_VERSIONS);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, markdown_block(&doc, "failed-versions.json").unwrap()).unwrap();
    assert_eq!(
        node_sim::record::failed_versions(dir.path()).unwrap(),
        ["1.2.0"]
    );
}

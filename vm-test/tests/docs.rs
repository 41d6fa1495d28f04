//! The serial log examples of docs/vm-test.md, read the way the scenarios read a real log.

#![allow(clippy::unwrap_used)]

use node_sim::{BootRecord, Outcome};
use std::path::PathBuf;
use test_tools::{markdown_block, read_doc};
use vm_test::Boot;

fn example(name: &str) -> Boot {
    Boot {
        log: PathBuf::from("docs/vm-test.md"),
        serial: markdown_block(&read_doc("vm-test.md"), name)
            .unwrap_or_else(|| panic!("docs/vm-test.md has no block '{name}'")),
        cut: false,
    }
}

#[test]
fn the_healthy_boot_example_reads_as_a_real_log() {
    let boot = example("serial-healthy");
    let markers = boot.markers();
    let (_, chosen) = markers[0].split_once("firmware: boot-select ").unwrap();
    let chosen: serde_json::Value = serde_json::from_str(chosen).unwrap();
    assert_eq!(
        (chosen["set"].as_str(), chosen["tries_left"].as_u64()),
        (Some("B"), Some(0))
    );
    assert!(boot.has("verity 1 /dev/vda6 /dev/vda7 4096 4096"));
    assert!(boot.has("1 restart_on_corruption"));
    assert!(boot.has("root: version 1.1.0 running"));
    assert!(boot.has("services: exit 0"));
    assert!(boot.has("power off"));
    let record = boot
        .serial
        .lines()
        .find(|l| l.contains("\"outcome\""))
        .unwrap();
    let records: Vec<BootRecord> = serde_json::from_str(record).unwrap();
    assert_eq!(
        (records[0].set.as_str(), records[0].outcome),
        ("B", Outcome::Marked)
    );
    // The example shows every field a record has, as `node-sim services --json` prints it.
    let shown: Vec<serde_json::Value> = serde_json::from_str(record).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&shown[0]),
        keys(&serde_json::to_value(&records[0]).unwrap())
    );
}

#[test]
fn the_corrupted_root_example_shows_the_kernel_refusing_it() {
    let boot = example("serial-corrupted");
    assert!(boot.has("firmware: switching to the verified root"));
    assert!(boot.serial.contains("is corrupted"));
    assert!(boot.serial.contains("dm-verity device corrupted"));
    assert!(!boot.has("root: version"));
}

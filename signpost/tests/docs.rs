//! The examples of docs/formats.md match what signpost writes.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::process::Command;
use test_tools::{markdown_block, read_doc};

/// The shape of a JSON value: its keys, recursively, and the type of each leaf.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::String(_) => Value::String("string".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Null => Value::Null,
    }
}

#[test]
fn the_documented_status_has_the_shape_and_values_of_a_fresh_disk() {
    let doc = read_doc("formats.md");
    let documented: Value =
        serde_json::from_str(&markdown_block(&doc, "signpost-status").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let signpost = env!("CARGO_BIN_EXE_signpost");
    let run = |args: &[&str]| {
        let out = Command::new(signpost)
            .current_dir(dir.path())
            .args(["--disk", "disk.img", "--sysroot"])
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&["create-disk", "--size-mib", "96"]);
    let actual: Value =
        serde_json::from_slice(&run(&["--active-set", "A", "status", "--json"])).unwrap();
    assert_eq!(shape(&actual), shape(&documented));
    for set in ["A", "B"] {
        for field in ["priority", "tries_left", "successful", "bootable"] {
            assert_eq!(actual[set][field], documented[set][field], "{set}.{field}");
        }
        assert_eq!(
            actual[set]["boot"]["first_lba"],
            documented[set]["boot"]["first_lba"]
        );
    }
}

#[test]
fn the_documented_marker_is_a_guid() {
    let doc = read_doc("formats.md");
    let marker = markdown_block(&doc, "booted-set").unwrap();
    assert!(uuid::Uuid::parse_str(marker.trim()).is_ok());
}

//! Declarative migration documents (the JSON inside a `.json.lz4` migration target).

use migrator::{Datastore, Direction, Document, Key, MetadataKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Documents with more operations than this are only parsed: applying them teaches the fuzzer
/// nothing more and slows every run.
const MAX_APPLIED_OPERATIONS: usize = 16;

/// Parses `data` as a declarative migration. An error is one line; a document that parses
/// serialises and parses back equal (floats to
/// within their last bits). Applied forward to a sample datastore it either refuses,
/// leaving the input untouched, or succeeds, and then backward (with the input as the kept
/// directory) gives back `live/` byte for byte.
pub fn migration(data: &[u8]) {
    let document = match Document::from_slice("fuzz.json", data) {
        Ok(document) => document,
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n'),
                "a migration error spans lines: {message:?}"
            );
            return;
        }
    };
    let json = serde_json::to_vec(&document).unwrap();
    let again = Document::from_slice("fuzz.json", &json).expect("a serialised document parses");
    let (a, b) = (
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&document).unwrap(),
    );
    // Exactly: the workspace's serde_json reads every number it wrote back to the same double
    // (`float_roundtrip`; `regressions/migration/float-one-ulp-off`).
    assert_eq!(a, b, "the document changed through JSON");
    if document.operations.len() > MAX_APPLIED_OPERATIONS {
        return;
    }

    let scratch = crate::scratch::dir();
    let (input, forward, backward) = (
        scratch.path().join("in"),
        scratch.path().join("fwd"),
        scratch.path().join("back"),
    );
    sample(&input);
    let original = live_files(&input);
    let ran = document.migrate_dir("fuzz.json", &input, &forward, Direction::Forward, None);
    assert_eq!(live_files(&input), original, "forward changed its input");
    if let Err(e) = ran {
        assert!(!e.to_string().contains('\n'), "a refusal spans lines: {e}");
        return;
    }
    document
        .migrate_dir(
            "fuzz.json",
            &forward,
            &backward,
            Direction::Backward,
            Some(&input),
        )
        .expect("backward undoes what forward accepted");
    assert_eq!(
        live_files(&backward),
        original,
        "forward then backward lost data"
    );
    assert_eq!(
        live_files(&input),
        original,
        "backward changed the kept directory"
    );
}

/// A datastore with values at several depths, a quoted segment and metadata: the keys the
/// seed documents touch.
fn sample(dir: &Path) {
    let ds = Datastore::new(dir);
    std::fs::create_dir_all(dir.join("live")).unwrap();
    let values = [
        ("settings.motd", json!("hello")),
        ("settings.a.b", json!(1)),
        ("settings.a.z", json!([true, null])),
        ("settings.c", json!(1)),
        ("settings.d", json!("d")),
        ("settings.e.f", json!({"g": 2})),
        ("settings.ntp.servers", json!(["a.example.com"])),
        ("settings.other.\"dot.ted\"", json!(false)),
        ("services.s.restart-commands", json!(["/bin/true"])),
    ];
    for (key, value) in values {
        ds.set(&Key::new(key).unwrap(), &value).unwrap();
    }
    for (key, meta) in [
        ("settings.motd", "affected-services"),
        ("settings.c", "old"),
    ] {
        ds.set_metadata(
            &Key::new(key).unwrap(),
            &MetadataKey::new(meta).unwrap(),
            &Value::from("m"),
        )
        .unwrap();
    }
}

/// Every file under `live/` with its bytes.
fn live_files(version_dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let live = version_dir.join("live");
    let mut stack = vec![live.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(&live).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

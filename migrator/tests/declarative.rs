//! Declarative migrations: forward then backward gives back `live/` byte for byte for any
//! datastore the forward step accepts; refusals say why.
#![allow(clippy::unwrap_used)]

mod common;

use common::live_files;
use migrator::{Datastore, Direction, Document, Key, MetadataKey};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::path::Path;

/// The error of `doc`, named `name`, run forward from `input` into `output`.
fn forward_error(doc: &Document, name: &str, input: &Path, output: &Path) -> String {
    doc.migrate_dir(name, input, output, Direction::Forward, None)
        .unwrap_err()
        .to_string()
}

/// A document using every operation, dropping ones included.
fn document() -> Document {
    Document::from_slice(
        "every-op.json",
        json!({"operations": [
            {"op": "rename", "from": "settings.a", "to": "settings.moved"},
            {"op": "add", "key": "settings.new", "value": {"x": 1, "y": [true]}},
            {"op": "remove", "key": "settings.moved.b", "default": "gone"},
            {"op": "replace", "key": "settings.c", "old": 1, "new": 2},
            {"op": "replace", "key": "settings.d", "new": "fixed", "default": "d-default"},
            {"op": "add-metadata", "key": "settings.c", "metadata": "added", "value": "m"},
            {"op": "remove-metadata", "key": "settings.e", "metadata": "old", "default": 0}
        ]})
        .to_string()
        .as_bytes(),
    )
    .unwrap()
}

/// A document whose operations lose nothing: no kept directory needed backward.
fn lossless() -> Document {
    Document::from_slice(
        "lossless.json",
        br#"{"operations": [
            {"op": "rename", "from": "settings.a", "to": "settings.moved"},
            {"op": "add", "key": "settings.new", "value": "v"},
            {"op": "replace", "key": "settings.c", "old": 1, "new": 2},
            {"op": "add-metadata", "key": "settings.c", "metadata": "added", "value": "m"}
        ]}"#,
    )
    .unwrap()
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(1)),
        Just(json!(2)),
        any::<bool>().prop_map(Value::from),
        "[a-z ]{0,6}".prop_map(Value::from),
        prop::collection::vec(any::<i8>(), 0..3).prop_map(|v| json!(v)),
        // Any finite double, written in its shortest form: it must be read back exactly.
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
    ]
}

/// Keys in the areas the documents touch, with values and some metadata.
type Store = (Vec<(String, Value)>, Vec<(String, String, Value)>);

fn datastore() -> impl Strategy<Value = Store> {
    let names = prop::sample::select(vec![
        "settings.a",
        "settings.a.b",
        "settings.a.z",
        "settings.a.b.q",
        "settings.moved",
        "settings.moved.b",
        "settings.c",
        "settings.d",
        "settings.e",
        "settings.e.f",
        "settings.new",
        "settings.new.x",
        "settings.other.\"dot.ted\"",
        "services.s",
    ]);
    let metas = prop::sample::select(vec!["old", "added", "affected-services"]);
    (
        prop::collection::vec((names.clone(), scalar()), 0..8),
        prop::collection::vec((names, metas, scalar()), 0..4),
    )
        .prop_map(|(values, metadata)| {
            (
                values
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                metadata
                    .into_iter()
                    .map(|(k, m, v)| (k.to_string(), m.to_string(), v))
                    .collect(),
            )
        })
}

fn write(dir: &Path, values: &[(String, Value)], metadata: &[(String, String, Value)]) {
    let ds = Datastore::new(dir);
    std::fs::create_dir_all(dir.join("live")).unwrap();
    for (key, value) in values {
        // A key that would need a value and a subtree at once is skipped, as a datastore
        // cannot hold it.
        let _ = ds.set(&Key::new(key).unwrap(), value);
    }
    for (key, meta, value) in metadata {
        let _ = ds.set_metadata(
            &Key::new(key).unwrap(),
            &MetadataKey::new(meta).unwrap(),
            value,
        );
    }
}

fn round_trip(
    doc: &Document,
    values: &[(String, Value)],
    metadata: &[(String, String, Value)],
    keep: bool,
) -> Result<(), TestCaseError> {
    let work = tempfile::tempdir().unwrap();
    let (input, forward, backward) = (
        work.path().join("in"),
        work.path().join("fwd"),
        work.path().join("back"),
    );
    write(&input, values, metadata);
    let original = live_files(&input);
    if doc
        .migrate_dir("doc", &input, &forward, Direction::Forward, None)
        .is_err()
    {
        return Ok(()); // refused: nothing to undo
    }
    let kept = keep.then_some(input.as_path());
    doc.migrate_dir("doc", &forward, &backward, Direction::Backward, kept)
        .unwrap();
    prop_assert_eq!(live_files(&backward), original.clone());
    // The input was never changed (outputs share files with it).
    prop_assert_eq!(live_files(&input), original);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn forward_then_backward_restores_live_byte_for_byte((values, metadata) in datastore()) {
        round_trip(&document(), &values, &metadata, true)?;
    }

    #[test]
    fn lossless_operations_need_no_kept_directory((values, metadata) in datastore()) {
        round_trip(&lossless(), &values, &metadata, false)?;
    }
}

#[test]
fn settings_holding_long_decimals_come_back_bit_for_bit() {
    // Doubles whose shortest decimal form a parser that is not correctly rounded reads one unit
    // in the last place off (serde_json does unless its `float_roundtrip` feature is on).
    let values: Vec<(String, Value)> = [
        ("settings.a.b", 2.0173847075682887e-17),
        ("settings.a.z", 123456789012345.67),
        ("settings.c", 5.448184794357964e-29),
        ("settings.e.f", 1e-301),
    ]
    .into_iter()
    .map(|(k, f)| (k.to_string(), Value::from(f)))
    .collect();
    let work = tempfile::tempdir().unwrap();
    let (input, forward, backward) = (
        work.path().join("in"),
        work.path().join("fwd"),
        work.path().join("back"),
    );
    write(&input, &values, &[]);
    assert_eq!(
        std::fs::read_to_string(input.join("live/settings/a/b")).unwrap(),
        "2.0173847075682887e-17"
    );
    let doc = document();
    doc.migrate_dir("doc", &input, &forward, Direction::Forward, None)
        .unwrap();
    // Moved by the rename: settings.a.z is now settings.moved.z, and reads as it was written.
    let ds = Datastore::new(&forward);
    assert_eq!(
        ds.get(&Key::new("settings.moved.z").unwrap()).unwrap(),
        Some(Value::from(123456789012345.67))
    );
    doc.migrate_dir(
        "doc",
        &forward,
        &backward,
        Direction::Backward,
        Some(&input),
    )
    .unwrap();
    assert_eq!(live_files(&backward), live_files(&input));
}

#[test]
fn without_a_kept_directory_dropped_values_come_back_as_the_declared_defaults() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    let ds = Datastore::new(&input);
    ds.set(&Key::new("settings.a.b").unwrap(), &json!("precious"))
        .unwrap();
    ds.set(&Key::new("settings.d").unwrap(), &json!("mine"))
        .unwrap();
    let doc = document();
    doc.migrate_dir(
        "doc",
        &input,
        &work.path().join("f"),
        Direction::Forward,
        None,
    )
    .unwrap();
    doc.migrate_dir(
        "doc",
        &work.path().join("f"),
        &work.path().join("b"),
        Direction::Backward,
        None,
    )
    .unwrap();
    let back = Datastore::new(work.path().join("b"));
    assert_eq!(
        back.get(&Key::new("settings.a.b").unwrap()).unwrap(),
        Some(json!("gone"))
    );
    assert_eq!(
        back.get(&Key::new("settings.d").unwrap()).unwrap(),
        Some(json!("d-default"))
    );
}

#[test]
fn refusals_and_invalid_documents_say_why() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    let ds = Datastore::new(&input);
    ds.set(&Key::new("settings.new").unwrap(), &json!("already"))
        .unwrap();
    let err = forward_error(&document(), "every-op.json", &input, &work.path().join("f"));
    assert_eq!(
        err,
        "Failed to apply migration 'every-op.json' forward, operation 2 (add 'settings.new'): \
         'settings.new' already exists, so removing it backward would lose its value"
    );
    for (doc, want) in [
        (
            r#"{"operations": [{"op": "remove", "key": "settings.x"}]}"#,
            "missing field `default`",
        ),
        (
            r#"{"operations": [{"op": "replace", "key": "a", "new": 1}]}"#,
            "exactly one of 'old'",
        ),
        (
            r#"{"operations": [{"op": "rename", "from": "a", "to": "a.b"}]}"#,
            "contain one another",
        ),
        (
            r#"{"operations": [{"op": "explode", "key": "a"}]}"#,
            "unknown variant `explode`",
        ),
        (
            r#"{"operations": [{"op": "add", "key": "a..b", "value": 1}]}"#,
            "Invalid key",
        ),
        (r#"{"operations": [], "extra": 1}"#, "unknown field `extra`"),
    ] {
        let err = Document::from_slice("m.json", doc.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{doc}: {err}");
        assert!(err.starts_with("Failed to"), "{err}");
    }
}

/// Found by fuzzing (`fuzz/regressions/migration/`): serde's message quotes an unknown field or
/// operation as it was, and a JSON string can hold a newline, so the error spanned lines.
#[test]
fn a_document_quoting_a_newline_still_fails_on_one_line() {
    for (doc, want) in [
        (
            r#"{"operations": [{"op": "re\name", "key": "a"}]}"#,
            "Failed to parse declarative migration 'nl.json': unknown variant `re\\name`, \
             expected one of `add`, `remove`, `rename`, `replace`, `add-metadata`, \
             `remove-metadata` at line 1 column 32",
        ),
        (
            r#"{"operatio\ns\r": []}"#,
            "Failed to parse declarative migration 'nl.json': unknown field `operatio\\ns\\r`, \
             expected `description` or `operations` at line 1 column 16",
        ),
    ] {
        let err = Document::from_slice("nl.json", doc.as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(err, want);
    }
}

/// A failure of the datastore under an operation (not a refusal) names the migration, the
/// direction and the operation like a refusal does.
#[test]
fn a_datastore_error_under_an_operation_names_the_migration_and_the_operation() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    Datastore::new(&input)
        .set(&Key::new("settings.hostname").unwrap(), &json!("node-1"))
        .unwrap();
    let output = work.path().join("out");
    let doc = Document::from_slice(
        "leaf.json",
        br#"{"operations": [{"op": "add", "key": "settings.hostname.sub", "value": 1}]}"#,
    )
    .unwrap();
    let err = forward_error(&doc, "leaf.json", &input, &output);
    assert_eq!(
        err,
        format!(
            "Failed to apply migration 'leaf.json' forward, operation 1 \
             (add 'settings.hostname.sub'): Failed to store 'settings.hostname.sub': \
             '{}' holds a value, not a subtree",
            output.join("live/settings/hostname").display()
        )
    );

    // A document deserialised without `Document::from_slice`'s checks fails at the member.
    let doc: Document = serde_json::from_value(json!({"operations": [
        {"op": "add", "key": "settings.labels", "value": {"say \"hi\"": 1}}
    ]}))
    .unwrap();
    let err = forward_error(&doc, "labels.json", &input, &work.path().join("out2"));
    assert_eq!(
        err,
        "Failed to apply migration 'labels.json' forward, operation 1 (add 'settings.labels'): \
         Invalid key 'settings.labels.say \"hi\"': segment 'say \"hi\"' contains '\"'"
    );
}

/// An object value whose member names cannot be key segments is refused when the document is
/// parsed, not when it is applied at boot (or, for a `default`, at a rollback).
#[test]
fn an_object_value_with_a_member_that_cannot_be_a_key_is_refused_at_parse_time() {
    for (doc, want) in [
        (
            r#"{"operations": [{"op": "add", "key": "settings.labels", "value": {"say \"hi\"": 1}}]}"#,
            "Failed to validate declarative migration 'labels.json': operation 1 \
             (add 'settings.labels'): its value would write the key \
             'settings.labels.say \"hi\"': segment 'say \"hi\"' contains '\"'",
        ),
        (
            r#"{"operations": [
                {"op": "add", "key": "settings.motd", "value": "hi"},
                {"op": "add", "key": "settings.labels", "value": {"a": {"x.y": 1, "": 2}}}
            ]}"#,
            "Failed to validate declarative migration 'labels.json': operation 2 \
             (add 'settings.labels'): its value would write the key \
             'settings.labels.a.': it has an empty segment",
        ),
        (
            r#"{"operations": [{"op": "remove", "key": "settings.labels", "default": {"a\u0007": 1}}]}"#,
            "Failed to validate declarative migration 'labels.json': operation 1 \
             (remove 'settings.labels'): its default would write the key \
             'settings.labels.a\\u{7}': a segment contains a control character",
        ),
    ] {
        let err = Document::from_slice("labels.json", doc.as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(err, want, "{doc}");
    }
}

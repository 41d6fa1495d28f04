//! Datastore keys and the value files under `live/`.

use migrator::datastore::layout;
use migrator::{Datastore, Key, MetadataKey};
use std::path::Component;

/// Splits the input into three parts: a key name (up to the first newline), a metadata key
/// name (up to the second) and the bytes of a value file (the rest).
fn split(data: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

/// A key that parses round-trips through its display form and through its on-disk path: one
/// plain path component per segment (never `.`, `..`, a `/` or a raw `.` that would read as a
/// metadata suffix), each decoding back to its segment. The value file, written under the key's
/// path, reads back as the JSON it holds or as an error; a value set through the datastore
/// lists back under the same key.
pub fn datastore(data: &[u8]) {
    let (name, meta, value) = split(data);
    let (Ok(name), Ok(meta)) = (std::str::from_utf8(name), std::str::from_utf8(meta)) else {
        return;
    };
    let key = match Key::new(name) {
        Ok(key) => key,
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "a key error spans lines");
            return;
        }
    };
    let shown = key.to_string();
    assert_eq!(
        Key::new(&shown).unwrap(),
        key,
        "'{shown}' parses to another key"
    );
    let json = serde_json::to_string(&key).unwrap();
    assert_eq!(serde_json::from_str::<Key>(&json).unwrap(), key);

    let path = layout::key_path(&key);
    let components: Vec<Component<'_>> = path.components().collect();
    assert_eq!(
        components.len(),
        key.segments().len(),
        "{shown} -> {path:?}"
    );
    for (component, segment) in components.iter().zip(key.segments()) {
        let Component::Normal(file) = component else {
            panic!("key '{shown}' maps to the path component {component:?}");
        };
        let file = file.to_str().unwrap();
        assert!(!file.contains('.') && !file.contains('/'), "{file}");
        assert!(file.len() <= 190, "{file} is too long a file name");
        assert_eq!(
            layout::decode_segment(file).as_deref(),
            Some(segment.as_str())
        );
    }
    let meta = MetadataKey::new(meta).ok();
    if let Some(meta) = &meta {
        let meta_path = layout::metadata_path(&key, meta);
        assert_eq!(meta_path.parent(), path.parent());
        let file = meta_path.file_name().unwrap().to_str().unwrap();
        let (encoded, suffix) = file.split_once('.').unwrap();
        assert_eq!(Some(encoded), path.file_name().and_then(|f| f.to_str()));
        assert_eq!(suffix, meta.as_str());
    }

    if path.as_os_str().len() > 2048 {
        return; // deeper than a file system takes; nothing more to check on disk
    }
    // The value file, as the datastore reads it.
    let scratch = crate::scratch::dir();
    let ds = Datastore::new(scratch.path().join("v1"));
    let file = scratch.path().join("v1/live").join(&path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, value).unwrap();
    let parsed = serde_json::from_slice::<serde_json::Value>(value);
    match ds.get(&key) {
        Ok(got) => assert_eq!(got, parsed.ok(), "{shown}"),
        Err(e) => {
            assert!(parsed.is_err(), "a JSON value file was refused: {e}");
            assert!(!e.to_string().contains('\n'), "a value error spans lines");
        }
    }
    if let Ok(listed) = ds.list(None) {
        let parsed = serde_json::from_slice::<serde_json::Value>(value).unwrap();
        assert_eq!(
            listed.into_iter().collect::<Vec<_>>(),
            vec![(key.clone(), parsed)]
        );
    }

    // A value set through the datastore lists back under the same key.
    let ds = Datastore::new(scratch.path().join("v2"));
    let leaf = serde_json::Value::String(shown.clone());
    if ds.set(&key, &leaf).is_ok() {
        let listed = ds.list(None).unwrap();
        assert_eq!(
            listed.into_iter().collect::<Vec<_>>(),
            vec![(key.clone(), leaf)]
        );
        if let Some(meta) = &meta {
            ds.set_metadata(&key, meta, &serde_json::Value::Bool(true))
                .unwrap();
            let listed = ds.list_metadata(None).unwrap();
            assert_eq!(
                listed.into_keys().collect::<Vec<_>>(),
                vec![(key, meta.clone())]
            );
        }
    }
}

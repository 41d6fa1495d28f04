//! The examples of docs/formats.md parse, and mean what the page says.

#![allow(clippy::unwrap_used)]

use test_tools::{markdown_block, read_doc};
use update_metadata::{Manifest, Seed, WavePolicy};

#[test]
fn the_documented_manifest_parses_and_round_trips() {
    let doc = read_doc("formats.md");
    let text = markdown_block(&doc, "manifest.json").unwrap();
    let manifest = Manifest::from_json(text.as_bytes()).unwrap();
    assert_eq!(manifest.updates().len(), 2);
    assert_eq!(
        manifest.to_json().unwrap(),
        text,
        "the example is in canonical form"
    );
    let path = manifest
        .migration_path(&"1.1.0".parse().unwrap(), &"1.0.0".parse().unwrap())
        .unwrap();
    assert_eq!(path.migrations.len(), 1);
    // Seed 51 is half-way through the first wave (0..102): ready half-way between its start
    // and the next wave's.
    let waves = &manifest.updates()[1].waves;
    let ready = waves.ready_time(Seed::new(51).unwrap()).unwrap();
    assert_eq!(ready.to_string(), "2026-12-01T12:30:00Z");
}

#[test]
fn the_documented_wave_policy_parses() {
    let doc = read_doc("formats.md");
    let policy = WavePolicy::from_toml(&markdown_block(&doc, "waves.toml").unwrap()).unwrap();
    let percentages: Vec<u32> = policy
        .waves()
        .iter()
        .map(|w| w.fleet_percentage())
        .collect();
    assert_eq!(percentages, [5, 25, 100]);
}

#[test]
fn the_documented_chunk_index_parses_and_is_canonical() {
    let doc = read_doc("formats.md");
    let text = markdown_block(&doc, "chunks.json").unwrap();
    let index = update_metadata::ChunkIndex::from_json(text.as_bytes()).unwrap();
    assert_eq!(index.chunks().len(), 3);
    assert_eq!(index.range(2), 2097152..2621440);
    assert!(matches!(
        index.chunks()[1].data,
        update_metadata::chunks::ChunkData::Zero
    ));
    assert_eq!(index.to_json(), text, "the example is in canonical form");
    let manifest =
        Manifest::from_json(markdown_block(&doc, "manifest.json").unwrap().as_bytes()).unwrap();
    let indexes = manifest.updates()[1].chunk_indexes.as_ref().unwrap();
    assert_eq!(
        indexes.root.as_ref().unwrap().as_str(),
        "demo-x86_64-1.1.0-root.ext4.lz4.chunks.json"
    );
    assert!(manifest.updates()[0].chunk_indexes.is_none());
}

//! The examples in docs/migrations.md and docs/datastore.md parse.
#![allow(clippy::unwrap_used)]

use test_tools::{fenced_blocks, read_doc};

#[test]
fn the_migration_examples_are_valid_documents() {
    let blocks = fenced_blocks(&read_doc("migrations.md"), "json");
    assert_eq!(blocks.len(), 3);
    let mut ops = 0;
    for block in &blocks {
        ops += migrator::Document::from_slice("example.json", block.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{block}"))
            .operations
            .len();
    }
    assert_eq!(ops, 7);
}

#[test]
fn the_state_file_example_parses() {
    let blocks = fenced_blocks(&read_doc("datastore.md"), "json");
    assert_eq!(blocks.len(), 1);
    let state: migrator::state::State = serde_json::from_str(&blocks[0]).unwrap();
    assert_eq!(state.previous.as_deref(), Some("v1.0.0_Hq2mW7cN4sYd1EoP"));
    assert!(!state.confirmed);
}

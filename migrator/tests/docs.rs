//! The examples in docs/migrations.md and docs/datastore.md parse.
#![allow(clippy::unwrap_used)]

fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn doc(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn the_migration_examples_are_valid_documents() {
    let blocks = json_blocks(&doc("migrations.md"));
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
    let blocks = json_blocks(&doc("datastore.md"));
    assert_eq!(blocks.len(), 1);
    let state: migrator::state::State = serde_json::from_str(&blocks[0]).unwrap();
    assert_eq!(state.previous.as_deref(), Some("v1.0.0_Hq2mW7cN4sYd1EoP"));
    assert!(!state.confirmed);
}

//! The verity.params example of docs/formats.md parses.

#![allow(clippy::unwrap_used)]

use test_tools::{markdown_block, read_doc};

#[test]
fn the_documented_params_parse_and_print_back() {
    let doc = read_doc("formats.md");
    let text = markdown_block(&doc, "verity.params").unwrap();
    let params: verity::VerityParams = text.parse().unwrap();
    assert_eq!(params.data_blocks(), 256);
    assert_eq!(params.hash_start_block(), 1);
    let again: verity::VerityParams = params.to_string().parse().unwrap();
    assert_eq!(again, params);
}

//! The example `verity.params` (made with veritysetup, see tests/data/params-example/README.md).

mod common;

use std::io::Cursor;
use verity::{Salt, TreeOptions, VerityParams};

#[test]
fn example_parses_and_matches_a_tree_we_build() {
    let text = include_str!("data/params-example/verity.params");
    let params: VerityParams = text.parse().unwrap();
    assert_eq!(params.data_blocks(), 256);
    assert_eq!(params.hash_start_block(), 1);
    assert_eq!(
        params.uuid().unwrap().to_string(),
        "0e7c1e4c-63ad-4d4a-9a51-2f3b7e8d9f10"
    );

    let mut options = TreeOptions::new(Salt::clone(params.salt()));
    options.uuid = params.uuid();
    let zeros = vec![0u8; 1 << 20];
    let (ours, hash) = common::build(&zeros, &options);
    assert_eq!(ours, params);
    assert_eq!(
        hash.len(),
        4 * 4096,
        "superblock and 3 hash blocks, as veritysetup said"
    );
    verity::read_superblock(&params, Cursor::new(&hash)).unwrap();
    common::verify(&params, &zeros, &hash).unwrap();
}

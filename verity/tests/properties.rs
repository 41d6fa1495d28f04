//! Property tests: a tree we build verifies, and any one flipped byte of the data or the tree is
//! found and named.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions unwrap too.

mod common;

use proptest::prelude::*;
use verity::{Error, TreeOptions};

fn options(block_size: u32, superblock: bool, salt: Vec<u8>) -> TreeOptions {
    let mut options = TreeOptions::new(verity::Salt::new(salt).unwrap());
    options.data_block_size = block_size;
    options.hash_block_size = block_size;
    options.superblock = superblock;
    options
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Block sizes of 512 give 16 hashes per block, so a few hundred blocks make three levels;
    /// 4096 exercises the real size with one or two levels.
    #[test]
    fn build_verify_and_any_flipped_byte_is_named(
        block_size in prop::sample::select(vec![512u32, 1024, 4096]),
        blocks in prop_oneof![Just(1usize), 1usize..=300],
        superblock in any::<bool>(),
        salt in prop::collection::vec(any::<u8>(), 0..=64),
        seed in any::<u64>(),
        flip_in_tree in any::<bool>(),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let data = common::random_data(seed, blocks * block_size as usize);
        let (params, hash) = common::build(&data, &options(block_size, superblock, salt));
        prop_assert_eq!(params.data_blocks(), blocks as u64);
        prop_assert_eq!(params.hash_image_size(), hash.len() as u64);
        common::verify(&params, &data, &hash).unwrap();
        let text = params.to_string();
        prop_assert_eq!(&text.parse::<verity::VerityParams>().unwrap(), &params);

        let tree_start = params.hash_offset() as usize;
        if flip_in_tree && hash.len() > tree_start {
            let at = tree_start + position.index(hash.len() - tree_start);
            let mut bad = hash.clone();
            bad[at] ^= 1 << bit;
            match common::verify(&params, &data, &bad) {
                Err(Error::HashBlockMismatch { hash_block, .. }) => {
                    prop_assert_eq!(hash_block, (at / block_size as usize) as u64)
                }
                other => prop_assert!(false, "flip at hash byte {} gave {:?}", at, other),
            }
        } else {
            let at = position.index(data.len());
            let mut bad = data.clone();
            bad[at] ^= 1 << bit;
            match common::verify(&params, &bad, &hash) {
                Err(Error::DataBlockMismatch { block, .. }) => {
                    prop_assert_eq!(block, (at / block_size as usize) as u64)
                }
                Err(Error::SingleBlockMismatch) => prop_assert_eq!(blocks, 1),
                other => prop_assert!(false, "flip at data byte {} gave {:?}", at, other),
            }
        }
    }
}

#[test]
fn short_data_is_an_error_naming_the_block_count() {
    let data = common::random_data(1, 10 * 4096);
    let (params, hash) = common::build(&data, &options(4096, true, vec![1; 32]));
    let err = common::verify(&params, &data[..9 * 4096], &hash).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to verify data: it ends after 9 of 10 data blocks"
    );
}

#[test]
fn a_wrong_salt_or_root_hash_fails() {
    let data = common::random_data(2, 300 * 4096);
    let (params, hash) = common::build(&data, &options(4096, false, vec![1; 32]));
    let text = params.to_string();
    let other_salt = text.replace(&"01".repeat(32), &"02".repeat(32));
    let err = common::verify(&other_salt.parse().unwrap(), &data, &hash).unwrap_err();
    assert!(err.to_string().contains("the root hash"), "{err}");
}

#[test]
fn superblock_is_checked_against_params() {
    let data = common::random_data(3, 4 * 4096);
    let (params, hash) = common::build(&data, &options(4096, true, vec![1; 32]));
    verity::read_superblock(&params, std::io::Cursor::new(&hash)).unwrap();
    let mut bad = hash.clone();
    bad[72] ^= 1; // data_blocks
    let err = verity::read_superblock(&params, std::io::Cursor::new(&bad)).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

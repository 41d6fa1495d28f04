//! Cross-checks with cryptsetup's `veritysetup` (skipped with a message where it is missing,
//! failing under CI=true): the same root hash and the same hash image bytes, and each side
//! accepts the other's tree.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions unwrap too.

mod common;

use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use verity::{RootHash, TreeOptions, Uuid, VerityParams};

const UUID: &str = "3b6a0f0e-8d2c-4f4e-a1b2-c3d4e5f60718";

/// 1 block (empty tree), 200 blocks (two levels) and 16 500 blocks, about 64 MiB (three levels).
const SIZES: [usize; 3] = [1, 200, 16_500];

fn root_hash_from(output: &str) -> RootHash {
    let line = output
        .lines()
        .find(|l| l.starts_with("Root hash:"))
        .unwrap_or_else(|| panic!("no root hash in {output}"));
    line["Root hash:".len()..].trim().parse().unwrap()
}

fn options(seed: u64) -> TreeOptions {
    let mut options = TreeOptions::new(common::salt(seed));
    options.uuid = Some(Uuid::parse_str(UUID).unwrap());
    options
}

fn write_data(dir: &Path, seed: u64, blocks: usize) -> (std::path::PathBuf, Vec<u8>) {
    let data = common::random_data(seed, blocks * 4096);
    let path = dir.join(format!("data-{blocks}.img"));
    fs::write(&path, &data).unwrap();
    (path, data)
}

#[test]
fn veritysetup_format_matches_our_root_hash_and_bytes() {
    let Some(veritysetup) = test_tools::require_tool("veritysetup") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (seed, blocks) in SIZES.into_iter().enumerate() {
        let seed = seed as u64;
        let (data_path, data) = write_data(dir.path(), seed, blocks);
        let hash_path = dir.path().join(format!("theirs-{blocks}.hash"));
        let opts = options(seed);
        let out = test_tools::run(
            Command::new(&veritysetup)
                .arg("format")
                .arg(format!("--salt={}", opts.salt))
                .arg(format!("--uuid={UUID}"))
                .arg(&data_path)
                .arg(&hash_path),
        );
        let theirs = root_hash_from(&out);
        let (ours, our_hash) = common::build(&data, &opts);
        assert_eq!(ours.root_hash(), &theirs, "root hash for {blocks} blocks");
        let their_hash = fs::read(&hash_path).unwrap();
        assert_eq!(
            their_hash.len(),
            our_hash.len(),
            "hash image size, {blocks} blocks"
        );
        assert!(
            their_hash == our_hash,
            "hash image bytes differ for {blocks} blocks"
        );

        // Our verification accepts their tree, and finds a flipped byte.
        let params = VerityParams::new(
            theirs,
            opts.salt.clone(),
            blocks as u64,
            4096,
            4096,
            4096,
            None,
        )
        .unwrap();
        verity::read_superblock(&params, Cursor::new(&their_hash)).unwrap();
        common::verify(&params, &data, &their_hash).unwrap();
        let mut bad = data.clone();
        let at = data.len() - 100;
        bad[at] ^= 0x80;
        let err = common::verify(&params, &bad, &their_hash).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("data block {}", blocks - 1)),
            "{err}"
        );
    }
}

#[test]
fn veritysetup_verify_accepts_our_trees_with_and_without_superblock() {
    let Some(veritysetup) = test_tools::require_tool("veritysetup") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (seed, blocks) in SIZES.into_iter().enumerate() {
        let seed = 100 + seed as u64;
        let (data_path, data) = write_data(dir.path(), seed, blocks);

        let opts = options(seed);
        let (params, hash) = common::build(&data, &opts);
        let with_sb = dir.path().join(format!("ours-{blocks}.hash"));
        fs::write(&with_sb, &hash).unwrap();
        test_tools::run(
            Command::new(&veritysetup)
                .arg("verify")
                .arg(&data_path)
                .arg(&with_sb)
                .arg(params.root_hash().to_string()),
        );

        let mut bare = opts.clone();
        bare.superblock = false;
        let (bare_params, bare_hash) = common::build(&data, &bare);
        assert_eq!(bare_params.root_hash(), params.root_hash());
        assert_eq!(&hash[4096..], &bare_hash[..]);
        let no_sb = dir.path().join(format!("ours-{blocks}.bare"));
        fs::write(&no_sb, &bare_hash).unwrap();
        let bare_verify = |data: &Path| {
            Command::new(&veritysetup)
                .args(["verify", "--no-superblock", "--hash-offset=0"])
                .arg(format!("--data-blocks={blocks}"))
                .arg(format!("--salt={}", bare.salt))
                .arg(data)
                .arg(&no_sb)
                .arg(params.root_hash().to_string())
                .output()
                .unwrap()
        };
        let ok = bare_verify(&data_path);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );

        // And veritysetup finds a flipped byte too: the check is not vacuous.
        let mut bad = data.clone();
        bad[17] ^= 1;
        fs::write(&data_path, &bad).unwrap();
        assert!(!bare_verify(&data_path).status.success());
    }
}

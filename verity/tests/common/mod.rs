//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use rand::{Rng, SeedableRng, rngs::StdRng};
use std::io::Cursor;
use verity::{Salt, TreeOptions, VerityParams, build_tree};

/// `len` bytes of seeded random data.
pub fn random_data(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill(&mut data[..]);
    data
}

/// A 32-byte salt from a seed, as hex.
pub fn salt(seed: u64) -> Salt {
    Salt::new(random_data(seed ^ 0x5a5a, 32)).unwrap()
}

/// Builds a tree into memory.
pub fn build(data: &[u8], options: &TreeOptions) -> (VerityParams, Vec<u8>) {
    let mut hash = Vec::new();
    let params = build_tree(data, &mut hash, options).unwrap();
    (params, hash)
}

/// Verifies in-memory data against an in-memory hash image.
pub fn verify(params: &VerityParams, data: &[u8], hash: &[u8]) -> verity::Result<()> {
    verity::verify(params, data, Cursor::new(hash))
}

//! Verifying a written set on disk, by reading it back: BOOT's `verity.params` from the BOOT
//! partition, ROOT against HASH with them, and BOOT and HASH against the sha256 of the bytes
//! written (which came from targets whose hashes tough checked).

use crate::error::{self, Result};
use crate::install::stream::Written;
use image_builder::ImageRegion;
use sha2::{Digest, Sha256};
use signpost::{PartitionInfo, SetPartitions};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// What was written into each partition of the set.
#[derive(Debug, Clone)]
pub(crate) struct WrittenSet {
    pub boot: Written,
    pub root: Written,
    pub hash: Written,
}

/// Reads the set back from `disk` and checks it.
pub(crate) fn verify_set(disk: &Path, parts: &SetPartitions, written: &WrittenSet) -> Result<()> {
    let open = |part: &PartitionInfo| {
        File::open(disk).map_err(|e| error::Error::Verify {
            partition: part.label.clone(),
            reason: format!("cannot open '{}': {e}", disk.display()),
        })
    };
    let fail = |part: &PartitionInfo, reason: String| error::Error::Verify {
        partition: part.label.clone(),
        reason,
    };
    // BOOT and HASH first: the parameters and the tree must be the ones published.
    for (part, w) in [(&parts.boot, &written.boot), (&parts.hash, &written.hash)] {
        if let Some(expected) = w.sha256 {
            let actual = hash_prefix(open(part)?, part.byte_range().start, w.len)
                .map_err(|e| fail(part, format!("cannot read it back: {e}")))?;
            if actual != expected {
                return Err(fail(
                    part,
                    format!(
                        "the {} bytes read back have sha256 {}, but {} were written",
                        w.len,
                        hex::encode(actual),
                        hex::encode(expected)
                    ),
                ));
            }
        }
    }
    let boot = &parts.boot;
    let params = image_builder::read_boot_params(ImageRegion::new(
        open(boot)?,
        boot.byte_range().start,
        boot.size_bytes(),
    ))
    .map_err(|e| fail(boot, format!("cannot read verity.params: {e}")))?;
    if params.data_size() > written.root.len {
        return Err(fail(
            &parts.root,
            format!(
                "verity.params covers {} bytes but the ROOT image has {}",
                params.data_size(),
                written.root.len
            ),
        ));
    }
    if params.hash_image_size() > written.hash.len {
        return Err(fail(
            &parts.hash,
            format!(
                "verity.params needs a {}-byte hash image but the HASH image has {}",
                params.hash_image_size(),
                written.hash.len
            ),
        ));
    }
    let region = |part: &PartitionInfo| -> Result<verity::Region<File>> {
        verity::Region::new(open(part)?, part.byte_range().start, part.size_bytes())
            .map_err(|e| fail(part, format!("cannot read it back: {e}")))
    };
    verity::verify(&params, region(&parts.root)?, region(&parts.hash)?)
        .map_err(|e| fail(&parts.root, format!("ROOT does not match HASH: {e}")))?;
    Ok(())
}

fn hash_prefix(file: File, start: u64, len: u64) -> std::io::Result<[u8; 32]> {
    let mut region = verity::Region::new(file, start, len)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = region.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the partition ended early",
            ));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.finalize().into())
}

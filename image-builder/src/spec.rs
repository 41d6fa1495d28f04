//! [`ReleaseSpec`]: the inputs of a release build.

use crate::error::{self, Result};
use snafu::ensure;
use std::path::PathBuf;

/// The default build time of every inode and filesystem: 1980-01-01T00:00:00Z.
pub const DEFAULT_EPOCH: u64 = 315_532_800;

/// Maximum sizes in bytes: the partitions the images must fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeLimits {
    /// The ROOT partition.
    pub root: Option<u64>,
    /// The HASH partition.
    pub hash: Option<u64>,
    /// The BOOT partition.
    pub boot: Option<u64>,
}

/// Everything a release build takes. Same spec and same tree contents, same image bytes.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    /// The release version (`VERSION_ID`).
    pub version: semver::Version,
    /// The variant (`VARIANT_ID`): letters, digits, `.`, `_`, `-`.
    pub variant: String,
    /// The architecture, e.g. `x86_64` or `aarch64`: same characters as the variant.
    pub arch: String,
    /// Extra files of the root filesystem, copied in as they are (modes kept; owners become root).
    pub root_tree: Option<PathBuf>,
    /// The trusted TUF `root.json`, installed as `usr/share/updog/root.json`.
    pub root_json: Vec<u8>,
    /// A kernel to place in BOOT as `vmlinuz`.
    pub kernel: Option<PathBuf>,
    /// ROOT size in bytes (a multiple of 4096); computed from the content when `None`.
    pub root_size: Option<u64>,
    /// BOOT size in bytes (a multiple of 4096); computed from the content when `None` (4 MiB
    /// at least).
    pub boot_size: Option<u64>,
    /// Sizes the images must not pass.
    pub limits: SizeLimits,
    /// Seconds since the epoch for every timestamp in the images (like `SOURCE_DATE_EPOCH`; not 0).
    pub source_date_epoch: u64,
    /// `BUILD_ID` in os-release (e.g. a commit); derived from version, variant and arch if `None`.
    pub build_id: Option<String>,
    /// Derive ROOT's filesystem UUID and ext4 directory hash seed from this text instead of from
    /// the version. Releases built with the same text lay out unchanged files and directories in
    /// the same blocks with the same metadata checksums, so a chunked update between them
    /// downloads little more than what changed (docs/benchmarks.md). `None`: a new UUID per
    /// version.
    pub root_uuid_seed: Option<String>,
}

impl ReleaseSpec {
    /// A spec with no extra files, no kernel, computed sizes, no limits and [`DEFAULT_EPOCH`].
    pub fn new(version: semver::Version, variant: &str, arch: &str, root_json: Vec<u8>) -> Self {
        ReleaseSpec {
            version,
            variant: variant.to_string(),
            arch: arch.to_string(),
            root_tree: None,
            root_json,
            kernel: None,
            root_size: None,
            boot_size: None,
            limits: SizeLimits::default(),
            source_date_epoch: DEFAULT_EPOCH,
            build_id: None,
            root_uuid_seed: None,
        }
    }

    /// Checks the fields that the types do not.
    pub(crate) fn validate(&self) -> Result<()> {
        check_ident("variant", &self.variant)?;
        check_ident("arch", &self.arch)?;
        if let Some(build_id) = &self.build_id {
            check_ident("build_id", build_id)?;
        }
        let json = String::from_utf8_lossy(&self.root_json);
        ensure!(
            json.trim_start().starts_with('{'),
            error::InvalidSpecSnafu {
                field: "root_json",
                value: json.chars().take(20).collect::<String>(),
                reason: "a TUF root.json is a JSON object",
            }
        );
        ensure!(
            self.source_date_epoch > 0,
            error::InvalidSpecSnafu {
                field: "source_date_epoch",
                value: "0",
                reason: "must be after the epoch (mke2fs reads 0 as 'now')",
            }
        );
        for (field, size) in [("root_size", self.root_size), ("boot_size", self.boot_size)] {
            if let Some(size) = size {
                ensure!(
                    size % 4096 == 0 && size >= 1 << 20,
                    error::InvalidSpecSnafu {
                        field,
                        value: size.to_string(),
                        reason: "must be a multiple of 4096 and at least 1 MiB",
                    }
                );
            }
        }
        Ok(())
    }
}

fn check_ident(field: &'static str, value: &str) -> Result<()> {
    ensure!(
        !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
        error::InvalidSpecSnafu {
            field,
            value,
            reason: "must be 1 to 64 of A-Z a-z 0-9 . _ -",
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ReleaseSpec {
        ReleaseSpec::new(
            semver::Version::new(1, 0, 0),
            "dev",
            "x86_64",
            b"{}".to_vec(),
        )
    }

    #[test]
    fn validates_fields() {
        assert!(spec().validate().is_ok());
        let mut bad = spec();
        bad.variant = "a b".into();
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("variant 'a b'"), "{err}");
        let mut bad = spec();
        bad.root_json = b"not json".to_vec();
        assert!(bad.validate().is_err());
        let mut bad = spec();
        bad.root_size = Some(4097);
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("root_size")
        );
        let mut bad = spec();
        bad.source_date_epoch = 0;
        assert!(bad.validate().is_err());
    }
}

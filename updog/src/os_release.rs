//! What the booted image is: `VERSION_ID`, `VARIANT_ID` and the architecture from
//! `etc/os-release`.

use crate::error::{self, Result};
use semver::Version;
use snafu::ResultExt;
use std::path::Path;

/// The booted image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// `VERSION_ID`.
    pub version: Version,
    /// `VARIANT_ID`.
    pub variant: String,
    /// `VARIANT_ARCH` if present, else the architecture updog was built for.
    pub arch: String,
}

impl Running {
    /// Reads and parses `path` (an os-release file).
    pub fn read(path: &Path) -> Result<Running> {
        let text = std::fs::read_to_string(path).context(error::IoSnafu { verb: "read", path })?;
        Running::parse(&text, path)
    }

    /// Parses os-release text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Running> {
        let os: image_builder::OsRelease = text.parse().context(error::OsReleaseSnafu { path })?;
        Ok(Running {
            version: os.version_id().clone(),
            variant: os.variant_id().to_string(),
            arch: os
                .get("VARIANT_ARCH")
                .unwrap_or(std::env::consts::ARCH)
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_variant_and_arch_are_read() {
        let text = "NAME=Twinset\nVERSION_ID=1.2.3\nVARIANT_ID=\"dev\"\nVARIANT_ARCH=aarch64\n";
        let running = Running::parse(text, Path::new("os-release")).unwrap();
        assert_eq!(running.version, Version::new(1, 2, 3));
        assert_eq!(running.variant, "dev");
        assert_eq!(running.arch, "aarch64");
        let text = "VERSION_ID=1.2.3\nVARIANT_ID=dev\n";
        let running = Running::parse(text, Path::new("os-release")).unwrap();
        assert_eq!(running.arch, std::env::consts::ARCH);
        let err = Running::parse("VARIANT_ID=dev\n", Path::new("x")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Failed to read the running version from 'x'")
        );
    }
}

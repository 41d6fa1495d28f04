//! `GET /os`: the booted image, with the field names of Bottlerocket's `BottlerocketRelease`
//! (brupop reads `version_id`).
//!
//! ```json
//! {"pretty_name": "Twinset OS 1.0.0 (demo)", "variant_id": "demo", "version_id": "1.0.0", "build_id": "0a1b2c3d", "arch": "x86_64"}
//! ```

use crate::error::{self, Result};
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::path::Path;

/// The booted image's release information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `PRETTY_NAME` (else `NAME VERSION_ID`).
    pub pretty_name: String,
    /// `VARIANT_ID`.
    pub variant_id: String,
    /// `VERSION_ID`.
    pub version_id: semver::Version,
    /// `BUILD_ID` (empty when absent).
    pub build_id: String,
    /// `VARIANT_ARCH`, else the architecture this was built for.
    pub arch: String,
}

impl OsInfo {
    /// Reads `os-release`.
    pub fn read(path: &Path) -> Result<OsInfo> {
        let text = std::fs::read_to_string(path).context(error::IoSnafu { verb: "read", path })?;
        let running = updog::os_release::Running::parse(&text, path)
            .context(error::OsReleaseSnafu { path })?;
        let os: image_builder::OsRelease =
            text.parse().context(error::ParseOsReleaseSnafu { path })?;
        let name = os.get("NAME").unwrap_or("Linux");
        Ok(OsInfo {
            pretty_name: os
                .get("PRETTY_NAME")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{name} {}", running.version)),
            variant_id: running.variant,
            version_id: running.version,
            build_id: os.get("BUILD_ID").unwrap_or_default().to_string(),
            arch: running.arch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_from_os_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("os-release");
        std::fs::write(
            &path,
            "NAME=Twinset\nPRETTY_NAME=\"Twinset OS 1.2.3 (dev)\"\nVERSION_ID=1.2.3\nVARIANT_ID=dev\nBUILD_ID=abc\nVARIANT_ARCH=aarch64\n",
        )
        .unwrap();
        let os = OsInfo::read(&path).unwrap();
        let json = serde_json::to_value(&os).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"pretty_name": "Twinset OS 1.2.3 (dev)", "variant_id": "dev",
                "version_id": "1.2.3", "build_id": "abc", "arch": "aarch64"})
        );
        let err = OsInfo::read(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().starts_with("Failed to read '"), "{err}");
    }
}

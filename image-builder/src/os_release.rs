//! `etc/os-release`: written into ROOT, read back to learn the booted version and variant.

use crate::error::{self, Result};
use snafu::{OptionExt, ensure};
use std::str::FromStr;

/// The `NAME` written to os-release.
pub const OS_NAME: &str = "Twinset";
/// The `ID` written to os-release.
pub const OS_ID: &str = "twinset";

/// The key/value pairs of an os-release file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    text: String,
    entries: Vec<(String, String)>,
    version: semver::Version,
    variant: String,
}

impl OsRelease {
    /// The value of `key`, unquoted, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The file's text, as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// All entries, in file order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// `VERSION_ID`, the image's version.
    pub fn version_id(&self) -> &semver::Version {
        &self.version
    }

    /// `VARIANT_ID`, the image's variant.
    pub fn variant_id(&self) -> &str {
        &self.variant
    }
}

impl FromStr for OsRelease {
    type Err = error::Error;

    /// Parses `KEY=value` lines (values optionally in double or single quotes, with backslash
    /// escapes in double quotes); blank lines and `#` comments are skipped. `VERSION_ID` (a
    /// semver version) and `VARIANT_ID` are required.
    fn from_str(text: &str) -> Result<Self> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').context(error::OsReleaseSnafu {
                reason: format!("line {} is not KEY=value", index + 1),
            })?;
            entries.push((key.to_string(), unquote(value)));
        }
        let find = |key: &str| {
            entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .context(error::OsReleaseSnafu {
                    reason: format!("{key} is missing"),
                })
        };
        let version_text = find("VERSION_ID")?;
        let version = version_text.parse().map_err(|e| error::Error::OsRelease {
            reason: format!("VERSION_ID '{version_text}' is not a version: {e}"),
        })?;
        let variant = find("VARIANT_ID")?;
        ensure!(
            !variant.is_empty(),
            error::OsReleaseSnafu {
                reason: "VARIANT_ID is empty"
            }
        );
        Ok(OsRelease {
            text: text.to_string(),
            entries,
            version,
            variant,
        })
    }
}

fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The os-release text of a release, with Bottlerocket's fields.
pub(crate) fn render(
    version: &semver::Version,
    variant: &str,
    arch: &str,
    build_id: &str,
) -> String {
    format!(
        "NAME={OS_NAME}\n\
         ID={OS_ID}\n\
         VERSION=\"{version} ({variant})\"\n\
         PRETTY_NAME=\"{OS_NAME} OS {version} ({variant})\"\n\
         VARIANT_ID={variant}\n\
         VERSION_ID={version}\n\
         BUILD_ID={build_id}\n\
         VARIANT_ARCH={arch}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_text_parses_back() {
        let version = semver::Version::new(1, 2, 3);
        let text = render(&version, "aws-k8s-1.30", "x86_64", "0a1b2c3d");
        let parsed: OsRelease = text.parse().unwrap();
        assert_eq!(parsed.version_id(), &version);
        assert_eq!(parsed.variant_id(), "aws-k8s-1.30");
        assert_eq!(
            parsed.get("PRETTY_NAME"),
            Some("Twinset OS 1.2.3 (aws-k8s-1.30)")
        );
        assert_eq!(parsed.get("BUILD_ID"), Some("0a1b2c3d"));
    }

    #[test]
    fn quotes_and_errors() {
        let parsed: OsRelease = "# c\nVERSION_ID='1.0.0'\nVARIANT_ID=\"a\\\"b\"\n"
            .parse()
            .unwrap();
        assert_eq!(parsed.variant_id(), "a\"b");
        let err = "VERSION_ID=1.0.0\n".parse::<OsRelease>().unwrap_err();
        assert!(err.to_string().contains("VARIANT_ID is missing"), "{err}");
        let err = "VERSION_ID=one\nVARIANT_ID=x\n"
            .parse::<OsRelease>()
            .unwrap_err();
        assert!(err.to_string().contains("'one'"), "{err}");
        let err = "VERSION_ID\n".parse::<OsRelease>().unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}

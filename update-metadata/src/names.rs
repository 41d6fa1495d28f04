//! Validated names of TUF targets and migrations.
//!
//! A name is used as a file name in the TUF repository's flat `targets/` directory and in the
//! node's caches, so it must not be able to reach outside them: it is non-empty, has no `/`, no
//! `..`, and no control characters. Both newtypes go through [`validate`].

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Checks a name; returns why it is refused.
fn validate(kind: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.contains("..") {
        Some("it contains '..'")
    } else if name == "." {
        Some("it is '.'")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            kind,
            name: name.escape_debug().to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `name` (non-empty, no `/`, no `..`, no control characters).
            pub fn new(name: impl Into<String>) -> Result<Self> {
                let name = name.into();
                validate($kind, &name)?;
                Ok(Self(name))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// The name of a TUF target, e.g. an image `bottlerocket-aws-k8s-1.29-x86_64-1.20.0-root.ext4.lz4`.
    TargetName,
    "target"
);

name_type!(
    /// The name of a migration target, e.g. `migrate_v1.20.0_kubelet-settings.lz4`.
    MigrationName,
    "migration"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["a", "root.ext4.lz4", "migrate_v1.1.0_x.lz4", "x.y", "-_ ~"] {
            assert_eq!(TargetName::new(name).unwrap().as_str(), name);
            assert_eq!(MigrationName::new(name).unwrap().to_string(), name);
        }
    }

    #[test]
    fn refuses_names_that_escape_or_hide() {
        for (name, reason) in [
            ("", "empty"),
            ("a/b", "'/'"),
            ("/abs", "'/'"),
            ("..", "'..'"),
            ("a..b", "'..'"),
            (".", "'.'"),
            ("a\nb", "control"),
            ("a\u{7f}", "control"),
        ] {
            let err = TargetName::new(name).unwrap_err().to_string();
            assert!(err.starts_with("invalid target name"), "{err}");
            assert!(err.contains(reason), "{name:?}: {err}");
            let err = name.parse::<MigrationName>().unwrap_err().to_string();
            assert!(err.starts_with("invalid migration name"), "{err}");
        }
    }

    #[test]
    fn serde_goes_through_validation() {
        let name: TargetName = serde_json::from_str("\"boot.ext4.lz4\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"boot.ext4.lz4\"");
        let err = serde_json::from_str::<TargetName>("\"../etc/passwd\"").unwrap_err();
        assert!(err.to_string().contains("invalid target name"), "{err}");
    }
}

//! Key names: `settings.motd`, `settings.kubernetes.node-labels."example.com/role"`.
//!
//! A key is a list of segments joined by `.`; a segment holding a `.` is written in double
//! quotes, as Bottlerocket does. [`Key::new`] is the one validating constructor: every other way
//! of making a key goes through it or through `check_segment`.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Longest encoded segment: a file name is at most 255 bytes, and metadata files add
/// `.<metadata key>` to it.
const MAX_ENCODED_SEGMENT: usize = 190;

/// A validated data key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    segments: Vec<String>,
}

/// Checks one segment; returns why it is refused.
pub(crate) fn check_segment(segment: &str) -> std::result::Result<(), String> {
    if segment.is_empty() {
        return Err("it has an empty segment".into());
    }
    if segment.contains('"') {
        return Err(format!(
            "segment '{}' contains '\"'",
            crate::error::one_line(&segment)
        ));
    }
    if segment.chars().any(char::is_control) {
        return Err("a segment contains a control character".into());
    }
    if super::layout::encode_segment(segment).len() > MAX_ENCODED_SEGMENT {
        return Err(format!(
            "a segment is longer than {MAX_ENCODED_SEGMENT} bytes once encoded"
        ));
    }
    Ok(())
}

impl Key {
    /// Parses and validates a key name: non-empty segments separated by `.`, a segment with a
    /// `.` in double quotes, no control characters, no `"` inside a segment.
    pub fn new(name: &str) -> Result<Key> {
        let invalid = |reason: String| Error::InvalidKey {
            key: name.escape_debug().to_string(),
            reason,
        };
        let mut segments = Vec::new();
        let mut chars = name.chars().peekable();
        loop {
            let mut segment = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => segment.push(c),
                        None => return Err(invalid("a quoted segment is not closed".into())),
                    }
                }
                match chars.next() {
                    None | Some('.') => {}
                    Some(c) => {
                        return Err(invalid(format!("'{c}' follows a quoted segment")));
                    }
                }
                check_segment(&segment).map_err(invalid)?;
                segments.push(segment);
                if chars.peek().is_none() && name.ends_with('.') {
                    return Err(invalid("it has an empty segment".into()));
                }
            } else {
                let mut ended = true;
                for c in chars.by_ref() {
                    if c == '.' {
                        ended = false;
                        break;
                    }
                    segment.push(c);
                }
                check_segment(&segment).map_err(invalid)?;
                segments.push(segment);
                if ended {
                    break;
                }
                if chars.peek().is_none() {
                    return Err(invalid("it has an empty segment".into()));
                }
            }
            if chars.peek().is_none() {
                break;
            }
        }
        Ok(Key { segments })
    }

    /// Builds a key from segments, validating each.
    pub fn from_segments<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Result<Key> {
        let segments: Vec<String> = segments.into_iter().map(Into::into).collect();
        let key = Key { segments };
        if key.segments.is_empty() {
            return Err(Error::InvalidKey {
                key: String::new(),
                reason: "it is empty".into(),
            });
        }
        for segment in &key.segments {
            check_segment(segment).map_err(|reason| Error::InvalidKey {
                key: crate::error::one_line(&key),
                reason,
            })?;
        }
        Ok(key)
    }

    /// The segments, unquoted.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether `prefix` is this key or one of its ancestors (segment-wise).
    pub fn starts_with(&self, prefix: &Key) -> bool {
        self.segments.starts_with(&prefix.segments)
    }

    /// This key with `segment` appended (validated).
    pub fn join(&self, segment: &str) -> Result<Key> {
        let mut segments = self.segments.clone();
        segments.push(segment.to_string());
        Key::from_segments(segments)
    }

    /// This key with its leading `from` replaced by `to`; `None` when `from` is no prefix.
    pub fn with_prefix_replaced(&self, from: &Key, to: &Key) -> Option<Key> {
        if !self.starts_with(from) {
            return None;
        }
        let mut segments = to.segments.clone();
        segments.extend_from_slice(&self.segments[from.segments.len()..]);
        Some(Key { segments })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if segment.contains('.') {
                write!(f, "\"{segment}\"")?;
            } else {
                f.write_str(segment)?;
            }
        }
        Ok(())
    }
}

impl FromStr for Key {
    type Err = Error;
    fn from_str(s: &str) -> Result<Key> {
        Key::new(s)
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Key, D::Error> {
        let name = String::deserialize(d)?;
        Key::new(&name).map_err(serde::de::Error::custom)
    }
}

/// A validated metadata key (`affected-services`, `setting-generator`): `[A-Za-z0-9_-]+`, so its
/// file suffix needs no encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetadataKey(String);

impl MetadataKey {
    /// Validates a metadata key name.
    pub fn new(name: &str) -> Result<MetadataKey> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > 64 {
            Some("it is longer than 64 bytes")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Some("only A-Z, a-z, 0-9, '_' and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidMetadataKey {
                name: name.escape_debug().to_string(),
                reason: reason.into(),
            }),
            None => Ok(MetadataKey(name.to_string())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MetadataKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<MetadataKey> {
        MetadataKey::new(s)
    }
}

impl serde::Serialize for MetadataKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for MetadataKey {
    fn deserialize<D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<MetadataKey, D::Error> {
        let name = String::deserialize(d)?;
        MetadataKey::new(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by fuzzing (`fuzz/regressions/migration/`): an object added by a migration whose
    /// member name holds a newline was refused with the key written raw, on two lines.
    #[test]
    fn a_segment_with_a_control_character_is_refused_on_one_line() {
        let err = Key::new("settings")
            .unwrap()
            .join("new\nline")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Invalid key 'settings.new\\nline': a segment contains a control character"
        );
        let err = Key::from_segments(["a\"b\n"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "Invalid key 'a\"b\\n': segment 'a\"b\\n' contains '\"'"
        );
    }

    #[test]
    fn parses_plain_and_quoted_segments() {
        let key = Key::new("settings.kubernetes.node-labels.\"example.com/role\"").unwrap();
        assert_eq!(
            key.segments(),
            ["settings", "kubernetes", "node-labels", "example.com/role"]
        );
        assert_eq!(
            key.to_string(),
            "settings.kubernetes.node-labels.\"example.com/role\""
        );
        assert_eq!(Key::new("a").unwrap().segments(), ["a"]);
        assert_eq!(Key::new("\"a.b\"").unwrap().segments(), ["a.b"]);
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        for (name, reason) in [
            ("", "empty segment"),
            ("a..b", "empty segment"),
            ("a.", "empty segment"),
            (".a", "empty segment"),
            ("a.\"b", "not closed"),
            ("a.\"b\"c", "follows a quoted segment"),
            ("a.\"b\".", "empty segment"),
            ("a\nb", "control character"),
            ("a\"b", "contains '\"'"),
        ] {
            let err = Key::new(name).unwrap_err().to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
            assert!(err.starts_with("Invalid key '"), "{err}");
        }
        assert!(Key::new(&"x".repeat(191)).is_err());
        assert!(MetadataKey::new("affected-services").is_ok());
        assert!(MetadataKey::new("a.b").is_err());
        assert!(MetadataKey::new("").is_err());
    }

    proptest! {
        #[test]
        fn display_parses_back(segments in prop::collection::vec("[a-z0-9._/ -]{1,12}", 1..5)) {
            let key = Key::from_segments(segments.clone()).unwrap();
            prop_assert_eq!(Key::new(&key.to_string()).unwrap(), key);
        }
    }
}

//! Where things are on disk (design section 8, Bottlerocket's `FilesystemDataStore`).
//!
//! Key `a.b.c` is the file `live/a/b/c` holding one JSON value. Each path segment is
//! percent-encoded except `[A-Za-z0-9_-]`, so a `.` in a segment is `%2E` and a raw `.` in a
//! file name can only start a metadata suffix: metadata `m` of key `a.b` is `live/a/b.m`.
//! Version directories are `vM.m.p_<random>`, reached through `current -> vM -> vM.m -> vM.m.p`.

use super::key::{Key, MetadataKey};
use crate::error::{Error, Result};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use semver::Version;
use std::path::{Path, PathBuf};

/// Everything but `[A-Za-z0-9_-]` is encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-');

/// The directory of committed settings inside a version directory.
pub const LIVE: &str = "live";
/// The directory of pending transactions inside a version directory.
pub const PENDING: &str = "pending";
/// The link that names the current version, in the datastore root.
pub const CURRENT: &str = "current";

/// A key segment as a file name.
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, ENCODE).to_string()
}

/// A file name back to a key segment; `None` if it is not an encoding we would write.
pub fn decode_segment(name: &str) -> Option<String> {
    let decoded = percent_decode_str(name).decode_utf8().ok()?.into_owned();
    (encode_segment(&decoded) == name).then_some(decoded)
}

/// The path of a key's file relative to an area (`live/` or `pending/<tx>/`).
pub fn key_path(key: &Key) -> PathBuf {
    key.segments().iter().map(|s| encode_segment(s)).collect()
}

/// The path of a key's metadata file relative to an area.
pub fn metadata_path(key: &Key, metadata: &MetadataKey) -> PathBuf {
    let mut path = key_path(key);
    let mut name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.push('.');
    name.push_str(metadata.as_str());
    path.set_file_name(name);
    path
}

/// Checks that a version can name datastore directories (plain `M.m.p`, as Bottlerocket's).
pub fn check_version(version: &Version) -> Result<()> {
    if version.pre.is_empty() && version.build.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidVersion {
            version: version.to_string(),
            reason: "pre-release and build parts are not allowed".into(),
        })
    }
}

/// The links from the leaf up to `current`, as (link name, target), in the order a flip writes
/// them (leaf first).
pub fn chain_links(version: &Version, dir_name: &str) -> [(String, String); 4] {
    let (major, minor, patch) = (version.major, version.minor, version.patch);
    [
        (format!("v{major}.{minor}.{patch}"), dir_name.to_string()),
        (
            format!("v{major}.{minor}"),
            format!("v{major}.{minor}.{patch}"),
        ),
        (format!("v{major}"), format!("v{major}.{minor}")),
        (CURRENT.to_string(), format!("v{major}")),
    ]
}

/// The version a directory name `vM.m.p_<random>` stands for.
pub fn parse_dir_name(name: &str) -> Option<Version> {
    let (version, random) = name.strip_prefix('v')?.split_once('_')?;
    if random.is_empty() || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let version = Version::parse(version).ok()?;
    check_version(&version).ok()?;
    Some(version)
}

/// Whether a name in the datastore root is a version link (`vM`, `vM.m`, `vM.m.p`).
pub fn is_version_link_name(name: &str) -> bool {
    name.strip_prefix('v').is_some_and(|rest| {
        !rest.is_empty()
            && rest.split('.').count() <= 3
            && rest
                .split('.')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A fresh directory name for `version`: `vM.m.p_` and 16 random alphanumerics, as Bottlerocket
/// names them. Unique, not secret: the datastore root is private to root.
pub fn new_dir_name(version: &Version) -> String {
    format!(
        "v{}.{}.{}_{}",
        version.major,
        version.minor,
        version.patch,
        random_suffix()
    )
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(16);
    let state = std::collections::hash_map::RandomState::new();
    let mut round = 0u64;
    while out.len() < 16 {
        let mut hasher = state.build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u64(round);
        hasher.write_u32(std::process::id());
        if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(now.as_nanos());
        }
        let mut bits = hasher.finish();
        for _ in 0..8 {
            out.push(char::from(
                ALPHABET[(bits % ALPHABET.len() as u64) as usize],
            ));
            bits /= ALPHABET.len() as u64;
        }
        round += 1;
    }
    out
}

/// The area directory of a version directory: `live/` or `pending/<transaction>/`.
pub fn live_dir(version_dir: &Path) -> PathBuf {
    version_dir.join(LIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_bottlerocket() {
        assert_eq!(encode_segment("node-labels"), "node-labels");
        assert_eq!(encode_segment("example.com/role"), "example%2Ecom%2Frole");
        assert_eq!(encode_segment("a b_c"), "a%20b_c");
        assert_eq!(
            decode_segment("example%2Ecom%2Frole").unwrap(),
            "example.com/role"
        );
        // Not how we would write it: refused rather than guessed.
        assert_eq!(decode_segment("a.b"), None);
        assert_eq!(decode_segment("%61"), None);
        let key = Key::new("settings.\"a.b\".c").unwrap();
        assert_eq!(key_path(&key), PathBuf::from("settings/a%2Eb/c"));
        let meta = MetadataKey::new("affected-services").unwrap();
        assert_eq!(
            metadata_path(&key, &meta),
            PathBuf::from("settings/a%2Eb/c.affected-services")
        );
    }

    #[test]
    fn names_version_directories_and_links() {
        let v = Version::new(1, 20, 3);
        let name = new_dir_name(&v);
        assert!(name.starts_with("v1.20.3_") && name.len() == "v1.20.3_".len() + 16);
        assert_ne!(name, new_dir_name(&v));
        assert_eq!(parse_dir_name(&name), Some(v.clone()));
        assert_eq!(parse_dir_name("v1.2_abc"), None);
        assert_eq!(parse_dir_name("v1.2.3_"), None);
        assert_eq!(parse_dir_name("v1.2.3-rc1_abc"), None);
        let links = chain_links(&v, &name);
        assert_eq!(links[0], ("v1.20.3".to_string(), name));
        assert_eq!(links[3], ("current".to_string(), "v1".to_string()));
        assert!(is_version_link_name("v1.20") && !is_version_link_name("v1.2.3_x"));
        assert!(check_version(&"1.0.0-rc1".parse().unwrap()).is_err());
    }
}

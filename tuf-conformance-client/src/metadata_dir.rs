//! The metadata directory of the protocol: the trusted role files and nothing else ending in
//! `.json` — `root.json`, `timestamp.json`, `snapshot.json`, `targets.json` and one
//! `<role>.json` per delegated role (the role name percent-encoded as python-tuf does).

use crate::error::{self, Result};
use crate::recording::FetchLog;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use snafu::ResultExt;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use tough::Repository;
use tough::schema::{DelegatedRole, Delegations};

/// The top-level roles, in the order the client workflow trusts them.
pub const TOP_LEVEL: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

/// Characters escaped in file names: everything but letters, digits and `_.-~`
/// (Python's `urllib.parse.quote(name, safe="")`, which python-tuf and tough use).
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `name` as one safe file name component.
pub fn encode_name(name: &str) -> String {
    utf8_percent_encode(name, ESCAPE).to_string()
}

/// The metadata directory.
#[derive(Debug, Clone)]
pub struct MetadataDir {
    path: PathBuf,
}

impl MetadataDir {
    /// The directory at `path` (not created).
    pub fn new(path: &Path) -> MetadataDir {
        MetadataDir {
            path: path.to_path_buf(),
        }
    }

    /// The path of `<role>.json`.
    pub fn file(&self, role: &str) -> PathBuf {
        self.path.join(format!("{}.json", encode_name(role)))
    }

    /// The bytes of `<role>.json`, `None` when there is none.
    pub fn read(&self, role: &str) -> Result<Option<Vec<u8>>> {
        let path = self.file(role);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(source).context(error::IoSnafu { verb: "read", path }),
        }
    }

    /// Writes `<role>.json` atomically (a hidden temporary file renamed over it).
    pub fn write(&self, role: &str, bytes: &[u8]) -> Result<()> {
        let path = self.file(role);
        write_atomic(&path, bytes)
    }

    /// Removes `<role>.json` if it is there.
    pub fn remove(&self, role: &str) -> Result<()> {
        let path = self.file(role);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).context(error::IoSnafu {
                verb: "remove",
                path,
            }),
            _ => Ok(()),
        }
    }

    /// The version in `<role>.json`, if the file is there and has one.
    pub fn version(&self, role: &str) -> Result<Option<u64>> {
        let Some(bytes) = self.read(role)? else {
            return Ok(None);
        };
        let value = parse(&bytes, &self.file(role))?;
        Ok(version_of(&value))
    }

    /// After a load (passed or not): makes each top-level role file what tough trusted, as
    /// tough's datastore `datastore` says, with the bytes the repository served (from `log`).
    /// A role tough dropped (its keys rotated) is removed; a role tough did not touch is kept.
    pub fn take_top_level(&self, datastore: &Path, log: &FetchLog) -> Result<()> {
        for role in TOP_LEVEL {
            let path = datastore.join(format!("{role}.json"));
            let trusted = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if role != "root" {
                        self.remove(role)?;
                    }
                    continue;
                }
                Err(source) => {
                    return Err(source).context(error::IoSnafu { verb: "read", path });
                }
            };
            let trusted = parse(&trusted, &path)?;
            if let Some(current) = self.read(role)? {
                let current = parse(&current, &self.file(role))?;
                // tough rewrites root.json on every load, even when no newer root came.
                if same_document(&current, &trusted)
                    || (role == "root" && version_of(&current) == version_of(&trusted))
                {
                    continue;
                }
            }
            // tough rewrote it, so it fetched it in this run; its own (re-serialised) copy
            // stands in should the served body be missing from the log.
            let bytes = match served_bytes(log, role, &trusted) {
                Some(bytes) => bytes,
                None => std::fs::read(&path).context(error::IoSnafu { verb: "read", path })?,
            };
            self.write(role, &bytes)?;
        }
        Ok(())
    }

    /// After a load that passed: writes every delegated role tough loaded (with the bytes
    /// served) and removes role files of delegations that are gone.
    pub fn take_delegated(&self, repo: &Repository, log: &FetchLog) -> Result<()> {
        let mut keep: BTreeSet<String> = TOP_LEVEL.iter().map(|r| format!("{r}.json")).collect();
        let mut roles = Vec::new();
        if let Some(delegations) = &repo.targets().signed.delegations {
            collect(delegations, &mut roles);
        }
        for role in roles {
            let Some(targets) = &role.targets else {
                continue;
            };
            let value = serde_json::to_value(targets).unwrap_or(Value::Null);
            if let Some(bytes) = served_bytes(log, &role.name, &value) {
                self.write(&role.name, &bytes)?;
                keep.insert(format!("{}.json", encode_name(&role.name)));
            }
        }
        let entries = std::fs::read_dir(&self.path).context(error::IoSnafu {
            verb: "list",
            path: &self.path,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !keep.contains(&name) && entry.path().is_file() {
                let path = entry.path();
                std::fs::remove_file(&path).context(error::IoSnafu {
                    verb: "remove",
                    path,
                })?;
            }
        }
        Ok(())
    }
}

/// Every delegated role under `delegations`, depth first in listed order.
fn collect<'a>(delegations: &'a Delegations, out: &mut Vec<&'a DelegatedRole>) {
    for role in &delegations.roles {
        if out.iter().any(|r| r.name == role.name) {
            continue;
        }
        out.push(role);
        if let Some(child) = role
            .targets
            .as_ref()
            .and_then(|t| t.signed.delegations.as_ref())
        {
            collect(child, out);
        }
    }
}

/// The last body fetched for `role` (`<role>.json` or `<N>.<role>.json`) with the version of
/// `trusted` (tough verified what it fetched; one body per role and version is fetched in a run).
fn served_bytes(log: &FetchLog, role: &str, trusted: &Value) -> Option<Vec<u8>> {
    let file = format!("{}.json", encode_name(role));
    let log = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    log.iter()
        .rev()
        .filter(|(url, _)| {
            let last = url.path_segments().and_then(|mut s| s.next_back());
            last.is_some_and(|last| {
                last == file
                    || last.split_once('.').is_some_and(|(n, rest)| {
                        rest == file && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                    })
            })
        })
        .find(|(_, bytes)| {
            serde_json::from_slice::<Value>(bytes)
                .is_ok_and(|v| version_of(&v).is_some() && version_of(&v) == version_of(trusted))
        })
        .map(|(_, bytes)| bytes.clone())
}

/// Same version and same signatures: the same signed document, whatever its formatting.
fn same_document(a: &Value, b: &Value) -> bool {
    version_of(a) == version_of(b) && a.get("signatures") == b.get("signatures")
}

/// `signed.version` of a metadata document.
pub fn version_of(value: &Value) -> Option<u64> {
    value.get("signed")?.get("version")?.as_u64()
}

/// Parses metadata bytes read from `path` as JSON.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| error::Error::ParseMetadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes `bytes` to `path` through a hidden temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .context(error::IoSnafu {
            verb: "create a temporary file in",
            path: dir,
        })?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .context(error::IoSnafu {
            verb: "write",
            path: tmp.path().to_path_buf(),
        })?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .context(error::IoSnafu {
            verb: "write",
            path,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn role_names_are_encoded_as_python_tuf_does() {
        assert_eq!(encode_name("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_name("../x"), "..%2Fx");
        assert_eq!(encode_name("role-1_a.b~"), "role-1_a.b~");
    }

    #[test]
    fn served_bytes_finds_versioned_and_plain_names() {
        let log = FetchLog::default();
        let doc = br#"{"signed": {"version": 3}, "signatures": [{"keyid": "a", "sig": "b"}]}"#;
        let other = br#"{"signed": {"version": 4}, "signatures": []}"#;
        log.lock().unwrap().push((
            url::Url::parse("http://h/m/3.snapshot.json").unwrap(),
            doc.to_vec(),
        ));
        log.lock().unwrap().push((
            url::Url::parse("http://h/m/x.snapshot.json").unwrap(),
            other.to_vec(),
        ));
        let trusted: Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(
            served_bytes(&log, "snapshot", &trusted).unwrap(),
            doc.to_vec()
        );
        let newer: Value = serde_json::from_slice(other).unwrap();
        assert!(served_bytes(&log, "snapshot", &newer).is_none());
        assert!(served_bytes(&log, "timestamp", &trusted).is_none());
    }
}

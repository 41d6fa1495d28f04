//! The file operations behind keys, on one area: `live/` or `pending/<transaction>/`.

use super::key::{Key, MetadataKey};
use super::layout::{decode_segment, encode_segment, key_path, metadata_path};
use crate::error::{self, Error, Result};
use crate::fsutil;
use snafu::ResultExt;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Data keys and their raw file contents.
pub(crate) type RawValues = BTreeMap<Key, Vec<u8>>;
/// Metadata of keys and their raw file contents.
pub(crate) type RawMetadata = BTreeMap<(Key, MetadataKey), Vec<u8>>;

/// One area of a version directory.
#[derive(Debug, Clone)]
pub(crate) struct Area {
    pub(crate) dir: PathBuf,
    /// Sync each write (operator writes); migrations sync the whole output once instead.
    pub(crate) durable: bool,
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => Ok(None),
        Err(e) if e.raw_os_error() == Some(20) => Ok(None), // ENOTDIR: a parent is a value
        Err(e) => Err(e).context(error::ReadSnafu { path }),
    }
}

impl Area {
    pub(crate) fn new(dir: PathBuf, durable: bool) -> Area {
        Area { dir, durable }
    }

    fn file(&self, key: &Key) -> PathBuf {
        self.dir.join(key_path(key))
    }

    /// The raw bytes of a key's value.
    pub(crate) fn read_raw(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        read_opt(&self.file(key))
    }

    /// Whether a key holds a value or has keys below it.
    pub(crate) fn exists(&self, key: &Key) -> bool {
        std::fs::symlink_metadata(self.file(key)).is_ok()
    }

    fn make_parent(&self, key: &Key, path: &Path) -> Result<()> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        if parent.is_dir() {
            return Ok(());
        }
        // A parent that exists as a file is a value, which cannot also be a subtree.
        let mut walk = self.dir.clone();
        for segment in &key.segments()[..key.segments().len() - 1] {
            walk.push(encode_segment(segment));
            if walk.is_file() {
                return Err(Error::InvalidValue {
                    key: key.to_string(),
                    reason: format!("'{}' holds a value, not a subtree", walk.display()),
                });
            }
        }
        std::fs::create_dir_all(parent).context(error::WriteSnafu { path: parent })
    }

    /// Writes the raw bytes of a key's value.
    pub(crate) fn write_raw(&self, key: &Key, bytes: &[u8]) -> Result<()> {
        let path = self.file(key);
        self.make_parent(key, &path)?;
        if path.is_dir() {
            return Err(Error::InvalidValue {
                key: key.to_string(),
                reason: "it has keys below it, so it cannot hold a value".into(),
            });
        }
        fsutil::write_atomic(&path, bytes, self.durable)
    }

    /// The raw bytes of a key's metadata.
    pub(crate) fn read_metadata_raw(
        &self,
        key: &Key,
        meta: &MetadataKey,
    ) -> Result<Option<Vec<u8>>> {
        read_opt(&self.dir.join(metadata_path(key, meta)))
    }

    /// Writes the raw bytes of a key's metadata.
    pub(crate) fn write_metadata_raw(
        &self,
        key: &Key,
        meta: &MetadataKey,
        bytes: &[u8],
    ) -> Result<()> {
        let path = self.dir.join(metadata_path(key, meta));
        self.make_parent(key, &path)?;
        fsutil::write_atomic(&path, bytes, self.durable)
    }

    /// Removes a key's metadata; whether it was there.
    pub(crate) fn remove_metadata(&self, key: &Key, meta: &MetadataKey) -> Result<bool> {
        let path = self.dir.join(metadata_path(key, meta));
        let existed = path.is_file();
        fsutil::remove_any(&path)?;
        self.prune_empty_parents(&path)?;
        Ok(existed)
    }

    /// The key's file, its subtree and its metadata files: every path that belongs to it.
    fn owned_paths(&self, key: &Key) -> Result<Vec<PathBuf>> {
        let path = self.file(key);
        let mut out = Vec::new();
        if std::fs::symlink_metadata(&path).is_ok() {
            out.push(path.clone());
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(out);
        };
        let prefix = format!("{}.", name.to_string_lossy());
        match std::fs::read_dir(parent) {
            Err(e) if matches!(e.kind(), ErrorKind::NotFound) || e.raw_os_error() == Some(20) => {}
            Err(e) => return Err(e).context(error::ReadSnafu { path: parent }),
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.context(error::ReadSnafu { path: parent })?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if file
                        .strip_prefix(&prefix)
                        .is_some_and(|m| MetadataKey::new(m).is_ok())
                    {
                        out.push(entry.path());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a key, every key below it and their metadata; whether anything was there.
    pub(crate) fn remove_subtree(&self, key: &Key) -> Result<bool> {
        let paths = self.owned_paths(key)?;
        for path in &paths {
            fsutil::remove_any(path)?;
        }
        self.prune_empty_parents(&self.file(key))?;
        Ok(!paths.is_empty())
    }

    /// Whether a key has a value, keys below it or metadata.
    pub(crate) fn owns_anything(&self, key: &Key) -> Result<bool> {
        Ok(!self.owned_paths(key)?.is_empty())
    }

    /// Removes a key's value and every key below it, but not the key's own metadata.
    pub(crate) fn remove_value_and_subtree(&self, key: &Key) -> Result<()> {
        let path = self.file(key);
        fsutil::remove_any(&path)?;
        self.prune_empty_parents(&path)
    }

    /// Moves a key with everything below it and their metadata to `to`; whether anything moved.
    pub(crate) fn move_subtree(&self, from: &Key, to: &Key) -> Result<bool> {
        let paths = self.owned_paths(from)?;
        if paths.is_empty() {
            return Ok(false);
        }
        let from_file = self.file(from);
        let to_file = self.file(to);
        self.make_parent(to, &to_file)?;
        let (from_name, to_name) = (file_name(&from_file), file_name(&to_file));
        for path in &paths {
            let suffix = &file_name(path)[from_name.len()..];
            let dst = to_file.with_file_name(format!("{to_name}{suffix}"));
            std::fs::rename(path, &dst).context(error::RenameSnafu {
                from: path,
                to: &dst,
            })?;
        }
        self.prune_empty_parents(&from_file)?;
        Ok(true)
    }

    /// Makes `key` (with its subtree and metadata) here exactly what `source_key` is in
    /// `source`: absent if it is absent there.
    pub(crate) fn restore_subtree(&self, source: &Area, source_key: &Key, key: &Key) -> Result<()> {
        self.remove_subtree(key)?;
        let paths = source.owned_paths(source_key)?;
        if paths.is_empty() {
            return Ok(());
        }
        let to_file = self.file(key);
        self.make_parent(key, &to_file)?;
        let from_name = file_name(&source.file(source_key));
        let to_name = file_name(&to_file);
        for path in &paths {
            let suffix = &file_name(path)[from_name.len()..];
            let dst = to_file.with_file_name(format!("{to_name}{suffix}"));
            if path.is_dir() {
                fsutil::link_tree(path, &dst)?;
            } else {
                let bytes = std::fs::read(path).context(error::ReadSnafu { path })?;
                fsutil::write_atomic(&dst, &bytes, self.durable)?;
            }
        }
        Ok(())
    }

    /// Removes directories left empty below the area, from `path`'s parent up.
    fn prune_empty_parents(&self, path: &Path) -> Result<()> {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.dir || !d.starts_with(&self.dir) {
                break;
            }
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) =>
                {
                    break;
                }
                Err(e) if e.raw_os_error() == Some(20) => break,
                Err(e) => return Err(e).context(error::RemoveSnafu { path: d }),
            }
            dir = d.parent();
        }
        Ok(())
    }

    /// Every value (and, separately, every metadata file) at or below `prefix`.
    pub(crate) fn list(&self, prefix: Option<&Key>) -> Result<(RawValues, RawMetadata)> {
        let mut values = RawValues::new();
        let mut metadata = RawMetadata::new();
        if !self.dir.is_dir() {
            return Ok((values, metadata));
        }
        walk(&self.dir, &mut Vec::new(), &mut values, &mut metadata)?;
        if let Some(prefix) = prefix {
            values.retain(|k, _| k.starts_with(prefix));
            metadata.retain(|(k, _), _| k.starts_with(prefix));
        }
        Ok((values, metadata))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn walk(
    dir: &Path,
    segments: &mut Vec<String>,
    values: &mut RawValues,
    metadata: &mut RawMetadata,
) -> Result<()> {
    for entry in std::fs::read_dir(dir).context(error::ReadSnafu { path: dir })? {
        let entry = entry.context(error::ReadSnafu { path: dir })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // an interrupted write's temporary file
        }
        let invalid = |reason: &str| Error::InvalidFileName {
            path: path.clone(),
            reason: reason.into(),
        };
        let kind = entry
            .file_type()
            .context(error::ReadSnafu { path: &path })?;
        let (encoded, meta) = match name.split_once('.') {
            Some((encoded, meta)) => (encoded, Some(meta)),
            None => (name.as_str(), None),
        };
        let segment =
            decode_segment(encoded).ok_or_else(|| invalid("not a percent-encoded key segment"))?;
        segments.push(segment);
        let key = Key::from_segments(segments.clone());
        let result = match (kind.is_dir(), meta) {
            (true, None) => walk(&path, segments, values, metadata),
            (true, Some(_)) => Err(invalid("a directory cannot be metadata")),
            (false, meta) => {
                let key = key?;
                let bytes = std::fs::read(&path).context(error::ReadSnafu { path: &path })?;
                match meta {
                    None => {
                        values.insert(key, bytes);
                    }
                    Some(meta) => {
                        let meta = MetadataKey::new(meta)?;
                        metadata.insert((key, meta), bytes);
                    }
                }
                Ok(())
            }
        };
        segments.pop();
        result?;
    }
    Ok(())
}

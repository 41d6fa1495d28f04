//! Small file-system helpers: atomic writes, directory syncs, tree copies.

use crate::error::{self, Result};
use snafu::ResultExt;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` by a temporary sibling and a rename, so a reader sees the old or the
/// new contents. With `durable`, the file and its directory are synced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading '.' can never be a key file (segments are non-empty), so this cannot collide.
    let tmp = dir.join(format!(".tmp-{name}"));
    {
        // Never truncate in place: a stale temporary file may share its inode with another
        // version's tree (see `link_tree`).
        remove_any(&tmp)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .context(error::WriteSnafu { path: &tmp })?;
        file.write_all(bytes)
            .context(error::WriteSnafu { path: &tmp })?;
        if durable {
            file.sync_all().context(error::SyncSnafu { path: &tmp })?;
        }
    }
    std::fs::rename(&tmp, path).context(error::RenameSnafu {
        from: &tmp,
        to: path,
    })?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Syncs a directory, making the renames and links inside it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .context(error::SyncSnafu { path: dir })
}

/// Syncs the whole file system holding `path` (one call instead of one per file of a tree).
pub(crate) fn sync_fs(path: &Path) -> Result<()> {
    let dir = std::fs::File::open(path).context(error::SyncSnafu { path })?;
    rustix::fs::syncfs(&dir)
        .map_err(std::io::Error::from)
        .context(error::SyncSnafu { path })
}

/// Removes a file, link or directory tree; nothing if it is not there.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).context(error::RemoveSnafu { path })
        }
        _ => Ok(()),
    }
}

/// Copies the tree `from` to `to` (which must not exist): directories are made, files are hard
/// links where the file system allows (the datastore never writes a file in place: every write
/// is a new file renamed over the old name, so sharing inodes between versions is safe), copies
/// otherwise. Symlinks are copied as links.
pub(crate) fn link_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir(to).context(error::WriteSnafu { path: to })?;
    let entries = std::fs::read_dir(from).context(error::ReadSnafu { path: from })?;
    for entry in entries {
        let entry = entry.context(error::ReadSnafu { path: from })?;
        let src = entry.path();
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            continue; // an interrupted write's leftover
        }
        let dst = to.join(entry.file_name());
        let kind = entry.file_type().context(error::ReadSnafu { path: &src })?;
        if kind.is_dir() {
            link_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src).context(error::ReadSnafu { path: &src })?;
            std::os::unix::fs::symlink(target, &dst).context(error::WriteSnafu { path: &dst })?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).context(error::WriteSnafu { path: &dst })?;
        }
    }
    Ok(())
}

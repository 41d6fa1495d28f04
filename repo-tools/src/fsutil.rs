//! Durable file writes: a file appears whole under its name or not at all.

use crate::error::{self, Result};
use snafu::{ResultExt, ensure};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// A temporary file in `dir` that becomes a published file: created with mode 0666 less the
/// umask, as any other new file is, so that a web server running as another user can read it
/// (tempfile's own default is 0600).
fn temp_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, fsyncs it, renames
/// it over `path` and fsyncs the directory. The file gets mode 0666 less the umask.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent(path);
    std::fs::create_dir_all(dir).context(error::WriteFileSnafu { path: dir })?;
    let mut tmp = temp_in(dir).context(error::WriteFileSnafu { path })?;
    tmp.write_all(bytes)
        .context(error::WriteFileSnafu { path })?;
    tmp.as_file()
        .sync_all()
        .context(error::WriteFileSnafu { path })?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .context(error::WriteFileSnafu { path })?;
    sync_dir(dir)
}

/// Copies `src` to `dst` the same way as [`write_atomic`], streaming.
pub(crate) fn copy_atomic(src: &Path, dst: &Path) -> Result<()> {
    let dir = parent(dst);
    std::fs::create_dir_all(dir).context(error::WriteFileSnafu { path: dir })?;
    let mut input = File::open(src).context(error::ReadFileSnafu { path: src })?;
    let mut tmp = temp_in(dir).context(error::WriteFileSnafu { path: dst })?;
    std::io::copy(&mut input, tmp.as_file_mut()).context(error::WriteFileSnafu { path: dst })?;
    tmp.as_file()
        .sync_all()
        .context(error::WriteFileSnafu { path: dst })?;
    tmp.persist(dst)
        .map_err(|e| e.error)
        .context(error::WriteFileSnafu { path: dst })?;
    sync_dir(dir)
}

/// A new `.staging.*` directory in `dir`, removed when dropped, for files a command makes and
/// then moves into place; first removes those a killed command left (the caller holds the
/// repository's lock, so no other command is using one).
pub(crate) fn staging_dir(dir: &Path) -> Result<tempfile::TempDir> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let staging = entry.file_name().to_string_lossy().starts_with(".staging.");
            if staging && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(".staging.")
        .tempdir_in(dir)
        .context(error::WriteFileSnafu { path: dir })
}

/// Moves `src`, a file this command made, to `dst` with its bytes on disk first; copies it
/// ([`copy_atomic`]) when the two are on different filesystems.
pub(crate) fn move_durable(src: &Path, dst: &Path) -> Result<()> {
    let dir = parent(dst);
    std::fs::create_dir_all(dir).context(error::WriteFileSnafu { path: dir })?;
    File::open(src)
        .and_then(|f| f.sync_all())
        .context(error::WriteFileSnafu { path: src })?;
    match std::fs::rename(src, dst) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => copy_atomic(src, dst),
        Err(e) => Err(e).context(error::WriteFileSnafu { path: dst }),
    }
}

/// Moves `src` over `dst` (same filesystem) and fsyncs the destination directory.
pub(crate) fn rename_durable(src: &Path, dst: &Path) -> Result<()> {
    std::fs::rename(src, dst).context(error::WriteFileSnafu { path: dst })?;
    sync_dir(parent(dst))
}

/// Creates a new file readable by its owner only; refuses to overwrite.
pub(crate) fn create_private(path: &Path, bytes: &[u8]) -> Result<()> {
    ensure!(!path.exists(), error::ExistsSnafu { path });
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).context(error::WriteFileSnafu { path: dir })?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .context(error::WriteFileSnafu { path })?;
    file.write_all(bytes)
        .context(error::WriteFileSnafu { path })?;
    file.sync_all().context(error::WriteFileSnafu { path })
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context(error::WriteFileSnafu { path: dir })
}

/// The directory a file is in; `.` for a bare file name.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

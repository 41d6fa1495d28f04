//! Scratch directories for targets that need a filesystem.

use std::path::PathBuf;

/// A fresh empty directory, removed when dropped: in `/dev/shm` when there is one (each run
/// touches files, and memory is faster than a disk), else in the system's temp directory.
pub(crate) fn dir() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    tempfile::Builder::new()
        .prefix("fuzz-targets-")
        .tempdir_in(base)
        .or_else(|_| tempfile::tempdir())
        .expect("a scratch directory can be made")
}

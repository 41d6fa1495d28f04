//! The update lock `run/updog.lock` under the sysroot: an exclusive `flock` held for the whole
//! of a command that changes the partition table or the inactive set. updog, the update API and
//! signpost's verbs that write the table all take this one lock, so an install in progress can
//! never be made bootable (or cleared) behind its back.
//!
//! The file holds one JSON line naming the holder, `{"pid":1234,"command":"updog update-image"}`;
//! a second taker reads it to say who holds the lock, and gives up at once. The kernel releases
//! the lock when the holder exits, however it exits, so a stale file never blocks anyone.
//!
//! The file is mode 0600, also when it was left with another mode: `flock` needs only an open
//! descriptor, so a file that other users could open for reading would let any local user hold
//! the lock and keep every update from starting.
//!
//! ```
//! use signpost::lock::{UpdateLock, lock_path};
//!
//! let sysroot = tempfile::tempdir()?;
//! let path = lock_path(sysroot.path());
//! let held = UpdateLock::acquire(&path, "updog update-image")?;
//! let err = UpdateLock::acquire(&path, "signpost upgrade-to-inactive").unwrap_err();
//! assert!(err.to_string().contains("(updog update-image)"));
//! drop(held);
//! UpdateLock::acquire(&path, "signpost upgrade-to-inactive")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{self, Result};
use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The lock file, relative to the sysroot.
pub const LOCK_FILE: &str = "run/updog.lock";

/// The lock file under `sysroot`.
pub fn lock_path(sysroot: &Path) -> PathBuf {
    sysroot.join(LOCK_FILE)
}

/// Who holds the lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// What it is doing.
    pub command: String,
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct UpdateLock {
    file: File,
    path: PathBuf,
}

impl UpdateLock {
    /// Takes the lock at `path` for `command`, or fails at once with
    /// [`Error::Locked`](crate::Error::Locked) naming the holder.
    pub fn acquire(path: &Path, command: &str) -> Result<UpdateLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).context(error::LockIoSnafu {
                verb: "create directory",
                path: dir,
            })?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .context(error::LockIoSnafu {
                verb: "open lock file",
                path,
            })?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .context(error::LockIoSnafu {
                verb: "set permissions of lock file",
                path,
            })?;
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match serde_json::from_str::<Holder>(text.trim()) {
                    Ok(h) => format!("pid {} ({})", h.pid, h.command),
                    Err(_) => "another process (the lock file does not say which)".to_string(),
                };
                return error::LockedSnafu { path, holder }.fail();
            }
            return Err(std::io::Error::from(e)).context(error::LockIoSnafu { verb: "lock", path });
        }
        let line = format!(
            "{}\n",
            serde_json::json!({ "pid": std::process::id(), "command": command })
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(line.as_bytes()))
            .context(error::LockIoSnafu {
                verb: "write lock file",
                path,
            })?;
        Ok(UpdateLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UpdateLock {
    fn drop(&mut self) {
        // Say nobody holds it before the kernel releases it with the descriptor.
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_who_holds_it_and_may_take_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path());
        let held = UpdateLock::acquire(&path, "updog update-image").unwrap();
        let err = UpdateLock::acquire(&path, "signpost clear-inactive").unwrap_err();
        assert!(matches!(err, crate::Error::Locked { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "Failed to take the update lock '{}': it is held by pid {} (updog update-image)",
                path.display(),
                std::process::id()
            )
        );
        drop(held);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let again = UpdateLock::acquire(&path, "signpost clear-inactive").unwrap();
        assert_eq!(again.path(), path);
        let holder: Holder =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(holder.command, "signpost clear-inactive");
    }

    #[test]
    fn only_its_owner_may_open_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        drop(UpdateLock::acquire(&path, "x").unwrap());
        assert_eq!(mode(&path), 0o600);
        // A file left readable by others (an older version, a hand-made one) is closed up.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let held = UpdateLock::acquire(&path, "x").unwrap();
        assert_eq!(mode(&path), 0o600);
        drop(held);
    }

    #[test]
    fn a_lock_file_that_names_nobody_still_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path());
        let held = UpdateLock::acquire(&path, "x").unwrap();
        std::fs::write(&path, "garbage").unwrap();
        let err = UpdateLock::acquire(&path, "y").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("held by another process (the lock file does not say which)"),
            "{err}"
        );
        drop(held);
    }
}
